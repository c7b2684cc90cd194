"""Write side of runs: creation, status transitions, scores. Views, tasks and commands call
these; they hold no logic of their own."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from catalog.models import Backbone, Method, Task
from tracking.models import ProvenanceTier, Run, RunTransition, Score, Tag, Visibility
from tracking.status import FINAL_STATUSES, InvalidTransition, RunStatus, can_transition


class RunInputError(ValueError):
    """Input that cannot make a valid run; the message says which field and why."""


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """A stable hash of a config: equal hyperparameters give equal systems, whatever the order."""
    if "seed" in config:
        raise RunInputError("config must not contain 'seed': the seed is a field of its own.")
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def eval_split_fields(*, task: Task, split: str = "") -> dict[str, Any]:
    """The run fields that say which split its scores come from."""
    official = str(task.definition.get("eval_split", ""))
    chosen = split or official
    return {"eval_split": chosen, "on_official_split": chosen == official}


def _set_tags(*, run: Run, tags: Iterable[str]) -> None:
    names = sorted({t.strip().lower() for t in tags if t.strip()})
    run.tags.set([Tag.objects.get_or_create(name=name)[0] for name in names])


def record_transition(*, run: Run, from_status: str, reason: str) -> None:
    RunTransition.objects.create(
        run=run, from_status=from_status, to_status=run.status, reason=reason
    )


@transaction.atomic
def run_create_external(
    *,
    owner: User,
    method: Method,
    backbone: Backbone,
    task: Task,
    config: Mapping[str, Any],
    seed: int,
    scores: Mapping[str, float],
    spreads: Mapping[str, float] | None = None,
    visibility: str = Visibility.PUBLIC,
    tags: Iterable[str] = (),
    description: str = "",
    provenance: Mapping[str, Any] | None = None,
    provenance_tier: str = ProvenanceTier.SELF_REPORTED,
    eval_split: str = "",
) -> Run:
    """Record a run made outside Podium: it is finished on arrival, with its scores."""
    metrics = {m.key: m for m in task.metrics.all()}
    unknown = sorted(set(scores) - set(metrics))
    if unknown:
        raise RunInputError(
            f"scores: {', '.join(unknown)} not a metric of {task}; "
            f"expected {', '.join(sorted(metrics))}."
        )
    missing = sorted(set(metrics) - set(scores))
    if missing:
        raise RunInputError(f"scores: missing {', '.join(missing)} for {task}.")
    for key, value in scores.items():
        if (
            not isinstance(value, int | float)
            or value != value
            or value
            in (
                float("inf"),
                float("-inf"),
            )
        ):
            raise RunInputError(f"scores.{key}: {value!r} is not a finite number.")
    if provenance_tier == ProvenanceTier.EXECUTED:
        raise RunInputError("provenance_tier: only Podium's own workers record executed runs.")

    now = timezone.now()
    run = Run.objects.create(
        owner=owner,
        method=method,
        backbone=backbone,
        task=task,
        config=dict(config),
        config_hash=config_fingerprint(config),
        seed=seed,
        **eval_split_fields(task=task, split=eval_split),
        status=RunStatus.SUCCEEDED,
        visibility=visibility,
        provenance_tier=provenance_tier,
        provenance=dict(provenance or {}),
        description=description,
        started_at=now,
        finished_at=now,
    )
    record_transition(run=run, from_status="", reason="external run recorded")
    Score.objects.bulk_create(
        Score(
            run=run,
            metric=metrics[key],
            value=float(value),
            spread=(spreads or {}).get(key),
        )
        for key, value in scores.items()
    )
    _set_tags(run=run, tags=tags)
    return run


@dataclass(frozen=True, kw_only=True)
class TransitionResult:
    run: Run
    changed: bool


@transaction.atomic
def run_transition(*, run_id: int, to: str, reason: str = "") -> TransitionResult:
    """Move a run to `to` under a row lock; refused transitions raise InvalidTransition.

    Asking for the state the run is already in is a no-op (`changed=False`), so a
    redelivered message that repeats a transition does no harm.
    """
    run = Run.objects.select_for_update().get(pk=run_id)
    if run.status == to:
        return TransitionResult(run=run, changed=False)
    if not can_transition(current=run.status, requested=to):
        raise InvalidTransition(current=run.status, requested=to)
    previous = run.status
    run.status = to
    run.status_reason = reason
    now = timezone.now()
    if to == RunStatus.RUNNING and run.started_at is None:
        run.started_at = now
    if to in FINAL_STATUSES:
        run.finished_at = now
    run.save(update_fields=["status", "status_reason", "started_at", "finished_at", "updated_at"])
    record_transition(run=run, from_status=previous, reason=reason)
    return TransitionResult(run=run, changed=True)
