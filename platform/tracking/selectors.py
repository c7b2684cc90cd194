"""Read side of runs: the systems a leaderboard ranks.

A system is the runs of one method + backbone + config (every hyperparameter but the
seed). Its score on a task metric is the mean over its seeds, with their spread and count.
Public leaderboards see public runs only; a personal view adds one user's private runs and
is computed separately, so a private run never moves a public rank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Avg, Count, Q, QuerySet, StdDev
from django.utils import timezone

from catalog.models import Backbone, Method
from tracking.models import REVIEW_CLEARED, AuditEvent, Job, Run, Score, Visibility
from tracking.status import RunStatus


@dataclass(frozen=True, kw_only=True)
class SeedAggregate:
    mean: float
    std: float | None  # sample std over seeds; None with a single seed
    count: int


@dataclass(kw_only=True)
class SystemScores:
    method: Method
    backbone: Backbone
    config_hash: str
    config: dict[str, Any]
    # False for a system scored on splits other than the tasks' official evaluation splits.
    official_split: bool = True
    # (task id, metric key) -> aggregate over the system's seeds
    scores: dict[tuple[int, str], SeedAggregate] = field(default_factory=dict)
    provenance_tiers: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        label = f"{self.method.name} · {self.backbone.name} · {self.config_hash[:7]}"
        return label if self.official_split else f"{label} · non-official split"


def visible_runs_filter(*, viewer: AbstractBaseUser | AnonymousUser | None, prefix: str = "") -> Q:
    """Runs a viewer may see, on leaderboards and elsewhere: public ones, plus the viewer's own.

    A run counts as public only while it is not withdrawn and, where a suite of its task
    requires approval, once staff approved it. Its owner always sees it (leaderboards also
    drop the owner's withdrawn runs: see leaderboard_runs_filter).
    `prefix` is the path to the run from the queried model, e.g. "run__" from Score.
    """
    public = Q(
        **{
            f"{prefix}visibility": Visibility.PUBLIC,
            f"{prefix}withdrawn_at__isnull": True,
            f"{prefix}review_status__in": REVIEW_CLEARED,
        }
    )
    if viewer is None or not viewer.is_authenticated:
        return public
    return public | Q(**{f"{prefix}owner_id": viewer.pk})


def leaderboard_runs_filter(
    *, viewer: AbstractBaseUser | AnonymousUser | None, prefix: str = ""
) -> Q:
    """Runs a leaderboard counts for a viewer: those they may see, never a withdrawn one."""
    return visible_runs_filter(viewer=viewer, prefix=prefix) & Q(
        **{f"{prefix}withdrawn_at__isnull": True}
    )


def system_scores(
    *,
    task_ids: Sequence[int],
    viewer: AbstractBaseUser | AnonymousUser | None = None,
) -> list[SystemScores]:
    """Per-system seed means on the given task versions, from finished runs the viewer sees.

    Pass no viewer for the public leaderboard. The aggregation runs in the database, so
    the query count does not grow with the number of runs.
    """
    rows = (
        Score.objects.filter(
            leaderboard_runs_filter(viewer=viewer, prefix="run__"),
            run__task_id__in=task_ids,
            run__status=RunStatus.SUCCEEDED,
        )
        .values(
            "run__method_id",
            "run__backbone_id",
            "run__config_hash",
            "run__on_official_split",
            "run__task_id",
            "metric__key",
        )
        # Population std: SQLite's sample std raises on a single value where PostgreSQL
        # returns NULL; the sample std is derived from it below.
        .annotate(mean=Avg("value"), pstd=StdDev("value"), count=Count("id"))
        .order_by()
    )
    systems: dict[tuple[int, int, str, bool], SystemScores] = {}
    for row in rows:
        key = (
            row["run__method_id"],
            row["run__backbone_id"],
            row["run__config_hash"],
            row["run__on_official_split"],
        )
        system = systems.get(key)
        if system is None:
            system = systems[key] = SystemScores(
                method=Method(pk=key[0]),
                backbone=Backbone(pk=key[1]),
                config_hash=key[2],
                config={},
                official_split=key[3],
            )
        count = row["count"]
        std = float(row["pstd"]) * math.sqrt(count / (count - 1)) if count > 1 else None
        system.scores[(row["run__task_id"], row["metric__key"])] = SeedAggregate(
            mean=float(row["mean"]), std=std, count=count
        )
    if not systems:
        return []
    # Fill in names, configs and provenance with a fixed number of queries.
    methods = Method.objects.in_bulk({k[0] for k in systems})
    backbones = Backbone.objects.in_bulk({k[1] for k in systems})
    details = (
        Run.objects.filter(
            leaderboard_runs_filter(viewer=viewer),
            task_id__in=task_ids,
            status=RunStatus.SUCCEEDED,
            config_hash__in={k[2] for k in systems},
        )
        .values(
            "method_id",
            "backbone_id",
            "config_hash",
            "on_official_split",
            "config",
            "provenance_tier",
        )
        # Without order_by() the model's default ordering (-created_at) joins the DISTINCT
        # columns and every run comes back: 100,000 rows (and JSON configs) for 1,000
        # distinct systems.
        .order_by()
        .distinct()
    )
    for detail in details:
        found = systems.get(
            (
                detail["method_id"],
                detail["backbone_id"],
                detail["config_hash"],
                detail["on_official_split"],
            )
        )
        if found is not None:
            found.config = detail["config"]
            found.provenance_tiers.add(detail["provenance_tier"])
    for (method_id, backbone_id, _, _), system in systems.items():
        system.method = methods[method_id]
        system.backbone = backbones[backbone_id]
    return sorted(systems.values(), key=lambda s: s.label)


def run_audit_events(*, run: Run) -> QuerySet[AuditEvent]:
    """A run's audit trail, oldest first."""
    return AuditEvent.objects.filter(run=run).order_by("at", "id")


@dataclass(frozen=True, kw_only=True)
class QueuedJob:
    job: Job
    position: int  # 1 = next to start
    estimated_start: datetime | None  # None until Podium has timed a finished job


@dataclass(frozen=True, kw_only=True)
class JobQueue:
    queued: list[QueuedJob]
    running: list[Job]
    failed: list[Job]
    active_workers: int
    typical_duration: timedelta | None


def job_queue(*, now: datetime | None = None, failed_limit: int = 20) -> JobQueue:
    """What the queue page shows: waiting jobs with position and estimated start, running
    jobs with worker, heartbeat and progress, and recent failures with their reason."""
    now = now or timezone.now()
    related = ("run__method", "run__backbone", "run__task__benchmark", "run__owner__profile")
    queued_jobs = list(
        Job.objects.filter(run__status=RunStatus.QUEUED)
        .select_related(*related)
        .order_by("created_at", "id")
    )
    running = list(
        Job.objects.filter(run__status__in=(RunStatus.RUNNING, RunStatus.CANCELLING))
        .select_related(*related)
        .order_by("run__started_at", "id")
    )
    failed = list(
        Job.objects.filter(run__status=RunStatus.FAILED)
        .select_related(*related)
        .order_by("-run__finished_at")[:failed_limit]
    )
    recent = Run.objects.filter(
        status=RunStatus.SUCCEEDED, job__isnull=False, started_at__isnull=False
    ).order_by("-finished_at")[:50]
    durations = [r.finished_at - r.started_at for r in recent if r.finished_at and r.started_at]
    typical = sum(durations, timedelta()) / len(durations) if durations else None
    alive_since = now - timedelta(seconds=settings.PODIUM_HEARTBEAT_TIMEOUT_S)
    workers = len(
        {job.worker for job in running if job.heartbeat_at and job.heartbeat_at > alive_since}
    )
    slots = max(workers, 1)
    queued = [
        QueuedJob(
            job=job,
            position=index + 1,
            # Each slot finishes a job per typical duration; ours starts after those ahead.
            estimated_start=(now + typical * (index // slots + 1)) if typical else None,
        )
        for index, job in enumerate(queued_jobs)
    ]
    return JobQueue(
        queued=queued,
        running=running,
        failed=failed,
        active_workers=workers,
        typical_duration=typical,
    )


def job_details_visible(*, job: Job, viewer: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the queue may show a job's details to this viewer: never another user's
    private run."""
    if job.run.visibility == Visibility.PUBLIC:
        return True
    return viewer.is_authenticated and job.run.owner_id == viewer.pk
