"""Write side of runs: creation, status transitions, scores. Views, tasks and commands call
these; they hold no logic of their own."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Backbone, Method, Suite, SuiteTask, SuiteVersionStatus, Task, TaskMetric
from tracking.models import (
    AuditAction,
    AuditEvent,
    BoardStamp,
    ProvenanceTier,
    ReviewStatus,
    Run,
    RunTransition,
    Score,
    Tag,
    Visibility,
)
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


def _tag_names(tags: Iterable[str]) -> list[str]:
    return sorted({t.strip().lower() for t in tags if t.strip()})


def set_tags(*, run: Run, tags: Iterable[str]) -> None:
    run.tags.set([Tag.objects.get_or_create(name=name)[0] for name in _tag_names(tags)])


def record_transition(*, run: Run, from_status: str, reason: str) -> None:
    RunTransition.objects.create(
        run=run, from_status=from_status, to_status=run.status, reason=reason
    )


def scores_validate(*, task: Task, scores: Mapping[str, float]) -> dict[str, TaskMetric]:
    """Check scores as an external run's are: every metric of the task, nothing else, all
    finite; returns the task's metrics by key."""
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
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise RunInputError(f"scores.{key}: {value!r} is not a finite number.")
    return metrics


# --- Leaderboard stamps -----------------------------------------------------------------------


def board_stamps_bump(*, task_ids: Iterable[int]) -> None:
    """Move the leaderboard stamps of these tasks on, so every cached board over them is
    recomputed. Call it in the transaction that makes the change: the stamp's row lock
    orders concurrent writers, and a reader that sees the new stamp sees the change too.
    (A stamp moved in an earlier transaction than the change could let a board computed
    from the old data be cached under the new stamp.)"""
    ids = sorted(set(task_ids))  # one lock order for every writer: no deadlocks
    if not ids:
        return
    table = connection.ops.quote_name(BoardStamp._meta.db_table)
    task = connection.ops.quote_name(BoardStamp._meta.get_field("task").column)
    with connection.cursor() as cursor:
        # An upsert, atomic on PostgreSQL and SQLite alike: the first bump creates the row.
        cursor.execute(
            f"INSERT INTO {table} ({task}, revision) VALUES "
            + ", ".join(["(%s, 1)"] * len(ids))
            + f" ON CONFLICT ({task}) DO UPDATE SET revision = {table}.revision + 1",
            ids,
        )


def board_stamps_bump_all() -> None:
    """Move every task's stamp on: for catalog changes every board may show (a method's or
    backbone's name)."""
    board_stamps_bump(task_ids=Task.objects.values_list("pk", flat=True))


def board_stamps_bump_run(*, run: Run) -> None:
    """After a change to a run or its scores: only succeeded runs are on leaderboards
    (succeeded is final), so only then can a board have changed."""
    if run.status == RunStatus.SUCCEEDED:
        board_stamps_bump(task_ids=[run.task_id])


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
    extra_scores: Mapping[str, float] | None = None,
) -> Run:
    """Record a run made outside Podium: it is finished on arrival, with its scores (and
    figures beyond the task's metrics, such as per-class F1, in extra_scores)."""
    metrics = scores_validate(task=task, scores=scores)
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
        extra_scores=dict(extra_scores or {}),
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
    board_stamps_bump_run(run=run)
    set_tags(run=run, tags=tags)
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


# --- Owner edits, withdrawal and review, each recorded as an AuditEvent --------------------


class RunConflict(Exception):
    """A change the run's current state refuses (withdrawn, already decided)."""


class RunPermissionDenied(Exception):
    """The actor may not make this change to this run."""


def _audit(
    *, run: Run, actor: User, action: str, changes: Mapping[str, Any], reason: str = ""
) -> AuditEvent:
    return AuditEvent.objects.create(
        run=run,
        actor=actor,
        actor_username=actor.get_username(),
        action=action,
        changes=dict(changes),
        reason=reason,
    )


def _locked_run(run_id: int) -> Run:
    return Run.objects.select_for_update().get(pk=run_id)


def _refuse_if_withdrawn(run: Run) -> None:
    if run.withdrawn_at is not None:
        raise RunConflict(
            f"This run was withdrawn on {run.withdrawn_at:%Y-%m-%d %H:%M} UTC; "
            "a withdrawn run is kept as it is."
        )


@transaction.atomic
def run_update(
    *,
    run_id: int,
    actor: User,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    visibility: str | None = None,
) -> Run:
    """The owner (or staff, moderating) edits a run's description, tags or visibility
    (None: leave as is).

    One AuditEvent records every field that changed, before and after; a request that
    changes nothing records nothing.
    """
    run = _locked_run(run_id)
    if run.owner_id != actor.pk and not actor.is_staff:
        raise RunPermissionDenied("Only a run's owner can edit it.")
    _refuse_if_withdrawn(run)
    if visibility is not None and visibility not in Visibility.values:
        raise RunInputError(
            f"visibility: {visibility!r} is not one of {', '.join(Visibility.values)}."
        )
    changes: dict[str, dict[str, Any]] = {}
    if description is not None and description != run.description:
        changes["description"] = {"before": run.description, "after": description}
        run.description = description
    if visibility is not None and visibility != run.visibility:
        changes["visibility"] = {"before": run.visibility, "after": visibility}
        run.visibility = visibility
    if tags is not None:
        before = sorted(run.tags.values_list("name", flat=True))
        after = _tag_names(tags)
        if before != after:
            changes["tags"] = {"before": before, "after": after}
            set_tags(run=run, tags=after)
    if changes:
        # Saving a succeeded run moves its leaderboard stamp (tracking.signals).
        run.save(update_fields=["description", "visibility", "updated_at"])
        _audit(run=run, actor=actor, action=AuditAction.EDIT, changes=changes)
    return run


@transaction.atomic
def run_withdraw(*, run_id: int, actor: User, reason: str = "") -> Run:
    """Withdraw a run (its owner or staff): it leaves every leaderboard and is kept as is."""
    run = _locked_run(run_id)
    if run.owner_id != actor.pk and not actor.is_staff:
        raise RunPermissionDenied("Only a run's owner or staff can withdraw it.")
    _refuse_if_withdrawn(run)
    run.withdrawn_at = timezone.now()
    run.save(update_fields=["withdrawn_at", "updated_at"])
    _audit(
        run=run,
        actor=actor,
        action=AuditAction.WITHDRAW,
        changes={"withdrawn_at": {"before": None, "after": run.withdrawn_at.isoformat()}},
        reason=reason,
    )
    return run


@transaction.atomic
def run_review(*, run_id: int, actor: User, approve: bool, reason: str = "") -> Run:
    """Staff approve a run for public leaderboards, or reject it; a decision may be
    reversed later, and each one is recorded."""
    if not actor.is_staff:
        raise RunPermissionDenied("Only staff can approve or reject runs.")
    run = _locked_run(run_id)
    _refuse_if_withdrawn(run)
    if run.review_status == ReviewStatus.NOT_REQUIRED:
        raise RunConflict("This run needs no approval: no suite of its task requires it.")
    decision = ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED
    if run.review_status == decision:
        raise RunConflict(f"This run is already {decision}.")
    changes = {"review_status": {"before": run.review_status, "after": decision}}
    run.review_status = decision
    run.save(update_fields=["review_status", "updated_at"])
    _audit(
        run=run,
        actor=actor,
        action=AuditAction.APPROVE if approve else AuditAction.REJECT,
        changes=changes,
        reason=reason,
    )
    return run


# --- Submission quotas ---------------------------------------------------------------------


class QuotaExceeded(Exception):
    """A submission that would take a user past a suite's limit; the message names the
    suite, the limit, what is used, and when it resets (`resets_at`, None: never)."""

    def __init__(
        self,
        message: str,
        *,
        suite: str,
        period: str,
        limit: int,
        used: int,
        requested: int,
        resets_at: datetime | None,
    ) -> None:
        super().__init__(message)
        self.suite = suite
        self.period = period  # "day" or "total"
        self.limit = limit
        self.used = used
        self.requested = requested
        self.resets_at = resets_at


def utc_day_bounds(*, now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def submission_quota_check(
    *,
    owner: User,
    task_ids: Sequence[int],
    exclude_run_ids: Sequence[int] = (),
    now: datetime | None = None,
) -> None:
    """Refuse runs on `task_ids` (one entry per run to create) that would take `owner` past
    the limits of a suite whose published versions contain those tasks. `exclude_run_ids`:
    the submitted runs themselves, when they are checked after being created.

    Call it in the transaction that creates the runs, under a lock on the owner's row
    (api.services does), so two concurrent submissions cannot both take the last slot.
    """
    now = now or timezone.now()
    wanted = set(task_ids)
    suites = (
        Suite.objects.filter(
            versions__status=SuiteVersionStatus.PUBLISHED, versions__items__task_id__in=wanted
        )
        .exclude(daily_submission_limit__isnull=True, total_submission_limit__isnull=True)
        .distinct()
        .order_by("key")
    )
    for suite in suites:
        suite_tasks = set(
            SuiteTask.objects.filter(
                suite_version__suite=suite, suite_version__status=SuiteVersionStatus.PUBLISHED
            ).values_list("task_id", flat=True)
        )
        requested = sum(1 for task_id in task_ids if task_id in suite_tasks)
        counted = Run.objects.filter(owner=owner, task_id__in=suite_tasks).exclude(
            pk__in=exclude_run_ids
        )
        if not suite.count_failed_submissions:
            counted = counted.exclude(status=RunStatus.FAILED)
        failed_note = (
            "failed runs included" if suite.count_failed_submissions else "failed runs not counted"
        )
        limit = suite.total_submission_limit
        if limit is not None:
            used = counted.count()
            if used + requested > limit:
                raise QuotaExceeded(
                    f"quota: suite {suite.key!r} accepts at most {limit} run(s) per user in "
                    f"all ({failed_note}); you have submitted {used} and this request adds "
                    f"{requested}. This quota does not reset.",
                    suite=suite.key,
                    period="total",
                    limit=limit,
                    used=used,
                    requested=requested,
                    resets_at=None,
                )
        limit = suite.daily_submission_limit
        if limit is not None:
            day_start, day_end = utc_day_bounds(now=now)
            used = counted.filter(created_at__gte=day_start).count()
            if used + requested > limit:
                raise QuotaExceeded(
                    f"quota: suite {suite.key!r} accepts at most {limit} run(s) per user per "
                    f"UTC day ({failed_note}); you have submitted {used} today and this "
                    f"request adds {requested}. The quota resets at "
                    f"{day_end:%Y-%m-%d %H:%M} UTC.",
                    suite=suite.key,
                    period="day",
                    limit=limit,
                    used=used,
                    requested=requested,
                    resets_at=day_end,
                )
