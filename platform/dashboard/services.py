"""Write side of the dashboard: the actions its pages offer beyond reading. Both go through
the API's submission service, so a page is held to the same suite quotas as the API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import User

from api.services import run_submit, runs_submit
from catalog.models import Backbone, Method, Task
from tracking.jobs import runs_request
from tracking.models import Run
from tracking.services import QuotaExceeded, RunInputError, run_create_external


class ReproduceRefused(Exception):
    """A reproduction that cannot be queued; the message says why."""


def run_reproduce(*, run: Run, requested_by: User) -> Run:
    """Queue the same spec again (method, backbone, task version, config, seed, split) as a
    new run owned by whoever asked; its page then compares its scores with this run's."""
    if run.owner_id != requested_by.pk and not requested_by.is_staff:
        raise ReproduceRefused("Only the run's owner or staff can reproduce it.")
    if not run.method.executable:
        raise ReproduceRefused(
            f"{run.method.name} only records results made elsewhere; Podium cannot execute it."
        )
    job = getattr(run, "job", None)
    try:
        submission = runs_submit(
            owner=requested_by,
            endpoint="dashboard-reproduce",
            idempotency_key="",
            request_hash="",
            quota_task_ids=[run.task_id],
            create=lambda: runs_request(
                owner=requested_by,
                method=run.method,
                backbone=run.backbone,
                config=run.config,
                seeds=[run.seed],
                task=run.task,
                visibility=run.visibility,
                eval_split=run.eval_split,
                **(
                    {
                        "max_attempts": job.max_attempts,
                        "gpus": int(job.resources.get("gpus", 0)),
                        "time_limit_s": job.time_limit_s,
                    }
                    if job is not None
                    else {}
                ),
            ),
        )
    except (RunInputError, QuotaExceeded) as error:
        raise ReproduceRefused(str(error)) from None
    return submission.runs[0]


def run_submit_scores(
    *,
    owner: User,
    method: Method,
    backbone: Backbone,
    task: Task,
    config: Mapping[str, Any],
    seed: int,
    scores: Mapping[str, float],
    visibility: str,
    tags: Iterable[str],
    description: str,
) -> Run:
    """Record the self-reported scores of a run made elsewhere, as POST /api/v1/runs/ does;
    raises RunInputError or QuotaExceeded with the reason."""
    return run_submit(
        owner=owner,
        idempotency_key="",
        request_hash="",
        endpoint="dashboard-submit",
        quota_task_ids=[task.pk],
        create=lambda: run_create_external(
            owner=owner,
            method=method,
            backbone=backbone,
            task=task,
            config=config,
            seed=seed,
            scores=scores,
            visibility=visibility,
            tags=tags,
            description=description,
        ),
    ).run
