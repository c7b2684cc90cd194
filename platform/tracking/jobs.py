"""The job lifecycle on the platform side: dispatch, heartbeats, metrics, results, reaping.

Exactly once: every message from a worker names its job and attempt. The platform counts
attempts itself (Job.attempts) and drops anything from an attempt that is not the current
one, and anything for a run already in a final state, so a redelivered or retried message
never writes a second set of scores. GPU workers never see the database: specs go out and
everything comes back as messages, handled here under row locks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jsonschema
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from catalog.models import Backbone, Method, SuiteVersion, Task
from config.celery import app as celery_app
from runners.spec import (
    CONTROL_CANCEL,
    CONTROL_GO,
    CONTROL_STOP,
    GPU_QUEUE,
    TASK_EXECUTE_JOB,
    BackboneRef,
    Heartbeat,
    JobResult,
    JobSpec,
    MetricBatch,
    Resources,
    TaskRef,
)
from tracking.artifacts import ArtifactError, artifacts_record_result
from tracking.control import control_send
from tracking.models import Job, MetricPoint, ProvenanceTier, Run, Score, Visibility
from tracking.services import (
    RunInputError,
    config_fingerprint,
    eval_split_fields,
    record_transition,
    run_transition,
)
from tracking.status import FINAL_STATUSES, RunStatus

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.CANCELLING)


def job_build_spec(*, job: Job) -> JobSpec:
    run = job.run
    backbone = run.backbone
    return JobSpec(
        job_id=job.pk,
        attempt=job.attempts,
        run_uuid=str(run.uuid),
        method=run.method.key,
        config=dict(run.config),
        seed=run.seed,
        backbone=BackboneRef(
            key=backbone.key,
            source=backbone.source,
            hub_id=backbone.hub_id,
            revision=backbone.revision,
            local_path=backbone.local_path,
            package=backbone.package,
        ),
        task=TaskRef(benchmark=run.task.benchmark.key, key=run.task.key, version=run.task.version),
        resources=Resources(
            gpus=int(job.resources.get("gpus", 0)),
            memory_gb=float(job.resources.get("memory_gb", 0.0)),
        ),
        time_limit_s=job.time_limit_s,
        eval_split=run.eval_split,
    )


def _send_spec(spec: JobSpec) -> None:
    celery_app.send_task(
        TASK_EXECUTE_JOB,
        args=[spec.to_dict()],
        queue=GPU_QUEUE,
        task_id=f"job-{spec.job_id}-attempt-{spec.attempt}",
    )


@transaction.atomic
def job_dispatch(*, job_id: int) -> JobSpec:
    """Start a new attempt of a queued job: count it, then send its spec once committed."""
    job = (
        Job.objects.select_for_update()
        .select_related("run__method", "run__backbone", "run__task__benchmark")
        .get(pk=job_id)
    )
    if job.run.status != RunStatus.QUEUED:
        raise ValueError(f"job {job_id} is {job.run.status}, only queued jobs are dispatched")
    if job.attempts >= job.max_attempts:
        raise ValueError(f"job {job_id} has used its {job.max_attempts} attempts")
    job.attempts += 1
    job.dispatched_at = timezone.now()
    job.heartbeat_at = None
    job.progress_at = None
    job.progress = {}
    job.worker = ""
    job.save(
        update_fields=[
            "attempts",
            "dispatched_at",
            "heartbeat_at",
            "progress_at",
            "progress",
            "worker",
        ]
    )
    spec = job_build_spec(job=job)
    Run.objects.filter(pk=job.run_id).update(spec=spec.to_dict())
    transaction.on_commit(lambda: _send_spec(spec))
    return spec


@transaction.atomic
def jobs_dispatch_pending(*, owner_id: int) -> list[int]:
    """Dispatch an owner's waiting jobs, oldest first, up to their concurrency limit."""
    # Locking the owner serialises concurrent calls, so the limit cannot be overshot.
    User.objects.select_for_update().filter(pk=owner_id).first()
    limit: int = settings.PODIUM_MAX_ACTIVE_JOBS_PER_USER
    active = Job.objects.filter(
        run__owner_id=owner_id, run__status__in=ACTIVE_STATUSES, dispatched_at__isnull=False
    ).count()
    waiting = list(
        Job.objects.filter(
            run__owner_id=owner_id, run__status=RunStatus.QUEUED, dispatched_at__isnull=True
        )
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[: max(limit - active, 0)]
    )
    for job_id in waiting:
        job_dispatch(job_id=job_id)
    return waiting


def _after_job_end(*, owner_id: int) -> None:
    transaction.on_commit(lambda: jobs_dispatch_pending(owner_id=owner_id))


def _progress_update(job: Job, message: Heartbeat, now: datetime) -> None:
    previous_step = int(job.progress.get("step", -1))
    job.progress = {
        "step": message.step,
        "total_steps": message.total_steps,
        "examples_per_second": message.examples_per_second,
    }
    if message.step != previous_step or job.progress_at is None:
        job.progress_at = now
    if message.log_tail:
        job.log_tail = message.log_tail


@transaction.atomic
def job_heartbeat(*, message: Heartbeat) -> str:
    """Record a heartbeat; return the control action to send back ("" for none).

    The first heartbeat of an attempt (a claim) moves the run to running and is answered
    go or stop; later ones are answered only when the worker must stop or cancel.
    """
    job = Job.objects.select_for_update().filter(pk=message.job_id).first()
    if job is None:
        return CONTROL_STOP
    if message.attempt != job.attempts:
        logger.warning("job %s: heartbeat from stale attempt %s", job.pk, message.attempt)
        return CONTROL_STOP
    run = Run.objects.select_for_update().get(pk=job.run_id)
    if run.status in FINAL_STATUSES:
        return CONTROL_STOP
    if run.status == RunStatus.CANCELLING:
        return CONTROL_CANCEL
    now = timezone.now()
    if run.status == RunStatus.QUEUED:
        run_transition(run_id=run.pk, to=RunStatus.RUNNING, reason=f"started on {message.worker}")
        job.worker = message.worker
    job.heartbeat_at = now
    _progress_update(job, message, now)
    job.save(update_fields=["worker", "heartbeat_at", "progress", "progress_at", "log_tail"])
    return CONTROL_GO if message.claim else ""


@transaction.atomic
def job_record_metrics(*, batch: MetricBatch) -> int:
    """Store a batch of curve points; a stale or repeated batch writes nothing new."""
    job = Job.objects.select_for_update().filter(pk=batch.job_id).first()
    if job is None or batch.attempt != job.attempts:
        return 0
    if not Run.objects.filter(pk=job.run_id, status__in=ACTIVE_STATUSES).exists():
        return 0
    points = [
        MetricPoint(
            run_id=job.run_id,
            key=point.key[:100],
            step=point.step,
            value=point.value,
            recorded_at=datetime.fromtimestamp(point.time, tz=timezone.get_current_timezone()),
        )
        for point in batch.points
        if point.value == point.value  # NaN is not a point on a curve
    ]
    # (run, key, step) is unique: a redelivered batch is ignored point by point.
    created = MetricPoint.objects.bulk_create(points, ignore_conflicts=True)
    return len(created)


@dataclass(frozen=True, kw_only=True)
class ResultOutcome:
    applied: bool
    reason: str


def _stop_run(*, run: Run, to: str, reason: str) -> None:
    if run.status == RunStatus.RUNNING and to == RunStatus.CANCELLED:
        run_transition(run_id=run.pk, to=RunStatus.CANCELLING, reason=reason)
    run_transition(run_id=run.pk, to=to, reason=reason)


@transaction.atomic
def job_record_result(*, result: JobResult) -> ResultOutcome:
    """Apply a job's result once: fenced by attempt, idempotent on redelivery."""
    job = Job.objects.select_for_update().filter(pk=result.job_id).first()
    if job is None:
        return ResultOutcome(applied=False, reason="unknown job")
    if result.attempt != job.attempts:
        logger.warning("job %s: dropped result of stale attempt %s", job.pk, result.attempt)
        return ResultOutcome(applied=False, reason=f"stale attempt {result.attempt}")
    run = Run.objects.select_for_update().select_related("task").get(pk=job.run_id)
    if run.status in FINAL_STATUSES:
        return ResultOutcome(applied=False, reason=f"run already {run.status}")

    job.log_tail = result.log_tail or job.log_tail
    job.error = result.error
    job.save(update_fields=["log_tail", "error"])
    run.system = dict(result.system)
    run.extra_scores = dict(result.extra_scores)
    if result.provenance is not None:
        run.provenance = {
            "code_version": result.provenance.code_version,
            "packages": result.provenance.packages,
            "hardware": result.provenance.hardware,
            "seed": run.seed,
            "spec": run.spec,
        }
        run.code_version = result.provenance.code_version[:100]
    run.save(update_fields=["system", "extra_scores", "provenance", "code_version", "updated_at"])
    _after_job_end(owner_id=run.owner_id)

    if result.outcome == "cancelled" or run.status == RunStatus.CANCELLING:
        _stop_run(run=run, to=RunStatus.CANCELLED, reason=result.error or "cancelled")
        return ResultOutcome(applied=True, reason="cancelled")
    if result.outcome == "failed":
        run_transition(run_id=run.pk, to=RunStatus.FAILED, reason=result.error or "failed")
        return ResultOutcome(applied=True, reason="failed")

    metrics = {m.key: m for m in run.task.metrics.all()}
    missing = sorted(set(metrics) - set(result.scores))
    if missing:
        reason = f"the result lacks the task's metrics {', '.join(missing)}"
        run_transition(run_id=run.pk, to=RunStatus.FAILED, reason=reason)
        return ResultOutcome(applied=True, reason=reason)
    try:
        # Scores and artifacts together or not at all: a result whose artifacts cannot be
        # stored or verified fails the run with the reason, never succeeds without them.
        with transaction.atomic():
            Score.objects.bulk_create(
                Score(run=run, metric=metrics[key], value=value)
                for key, value in result.scores.items()
                if key in metrics
            )
            artifacts_record_result(run=run, refs=result.artifacts, inline=result.inline_artifacts)
    except ArtifactError as error:
        reason = f"artifact store: {error}"
        logger.warning("job %s: %s", job.pk, reason)
        run_transition(run_id=run.pk, to=RunStatus.FAILED, reason=reason)
        return ResultOutcome(applied=True, reason=reason)
    run_transition(run_id=run.pk, to=RunStatus.SUCCEEDED, reason="result recorded")
    return ResultOutcome(applied=True, reason="succeeded")


# One worker runs a job's processes; 8 GPUs is the largest common single machine.
MAX_GPUS_PER_JOB = 8
MAX_TIME_LIMIT_S = 7 * 24 * 3600


@transaction.atomic
def runs_request(
    *,
    owner: User,
    method: Method,
    backbone: Backbone,
    config: Mapping[str, Any],
    seeds: Iterable[int],
    task: Task | None = None,
    suite_version: SuiteVersion | None = None,
    visibility: str = Visibility.PUBLIC,
    max_attempts: int = 3,
    eval_split: str = "",
    gpus: int = 0,
    time_limit_s: int | None = None,
) -> list[Run]:
    """Ask Podium to execute a method: one queued run (with its job) per task and seed.

    A job asking for several GPUs runs data-parallel under torchrun on one worker.
    """
    if not 0 <= gpus <= MAX_GPUS_PER_JOB:
        raise RunInputError(f"gpus: {gpus} is outside 0..{MAX_GPUS_PER_JOB} (one worker's GPUs).")
    if time_limit_s is not None and not 60 <= time_limit_s <= MAX_TIME_LIMIT_S:
        raise RunInputError(f"time_limit_s: {time_limit_s} is outside 60..{MAX_TIME_LIMIT_S}.")
    if (task is None) == (suite_version is None):
        raise RunInputError("Give exactly one of task or suite_version.")
    if not method.executable:
        raise RunInputError(f"method: {method.key} only records external results.")
    seed_list = list(dict.fromkeys(seeds))
    if not seed_list:
        raise RunInputError("seeds: give at least one seed.")
    tasks = (
        [task]
        if task is not None
        else [item.task for item in suite_version.items.select_related("task")]  # type: ignore[union-attr]
    )
    if method.hyperparameter_schema:
        try:
            jsonschema.validate(dict(config), method.hyperparameter_schema)
        except jsonschema.ValidationError as error:
            where = ".".join(str(p) for p in error.absolute_path)
            raise RunInputError(f"config{'.' + where if where else ''}: {error.message}") from None
    fingerprint = config_fingerprint(config)
    runs: list[Run] = []
    for each_task in tasks:
        for seed in seed_list:
            run = Run.objects.create(
                owner=owner,
                method=method,
                backbone=backbone,
                task=each_task,
                suite_version=suite_version,
                config=dict(config),
                config_hash=fingerprint,
                seed=seed,
                status=RunStatus.QUEUED,
                visibility=visibility,
                provenance_tier=ProvenanceTier.EXECUTED,
                **eval_split_fields(task=each_task, split=eval_split),
            )
            Job.objects.create(
                run=run,
                max_attempts=max_attempts,
                resources={"gpus": gpus} if gpus else {},
                **({"time_limit_s": time_limit_s} if time_limit_s is not None else {}),
            )
            record_transition(run=run, from_status="", reason="requested")
            runs.append(run)
    # Jobs beyond the owner's concurrency limit wait, undispatched, for a free slot.
    transaction.on_commit(lambda: jobs_dispatch_pending(owner_id=owner.pk))
    return runs


@transaction.atomic
def run_cancel(*, run_id: int, reason: str = "cancelled by its owner") -> Run:
    """Cancel a queued job at once, or ask a running one to stop at its next step."""
    run = Run.objects.select_for_update().get(pk=run_id)
    job = Job.objects.filter(run_id=run_id).first()
    if run.status == RunStatus.QUEUED:
        run_transition(run_id=run.pk, to=RunStatus.CANCELLED, reason=reason)
        if job is not None and job.dispatched_at is not None:
            # Its spec may already sit in the queue: tell whoever picks it up to drop it.
            transaction.on_commit(
                lambda: control_send(
                    job_id=job.pk, attempt=job.attempts, action=CONTROL_STOP, reason=reason
                )
            )
        _after_job_end(owner_id=run.owner_id)
    elif run.status == RunStatus.RUNNING:
        run_transition(run_id=run.pk, to=RunStatus.CANCELLING, reason=reason)
        if job is not None:
            transaction.on_commit(
                lambda: control_send(
                    job_id=job.pk, attempt=job.attempts, action=CONTROL_CANCEL, reason=reason
                )
            )
    elif run.status != RunStatus.CANCELLING:
        run_transition(run_id=run.pk, to=RunStatus.CANCELLED, reason=reason)  # raises: final
    run.refresh_from_db()
    return run


@dataclass(kw_only=True)
class ReapReport:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)


def _reap_one(
    *, job_id: int, now: datetime, heartbeat_timeout: timedelta, report: ReapReport
) -> None:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        run = Run.objects.select_for_update().get(pk=job.run_id)
        if run.status not in (RunStatus.RUNNING, RunStatus.CANCELLING):
            return
        heartbeat = job.heartbeat_at or job.dispatched_at or now
        silent = now - heartbeat > heartbeat_timeout
        over_time = run.started_at is not None and now - run.started_at > timedelta(
            seconds=job.time_limit_s
        )
        stalled = job.progress_at is not None and now - job.progress_at > timedelta(
            seconds=job.stall_limit_s
        )
        if not (silent or over_time or stalled):
            return
        _after_job_end(owner_id=run.owner_id)
        if run.status == RunStatus.CANCELLING:
            run_transition(run_id=run.pk, to=RunStatus.CANCELLED, reason="cancelled (worker gone)")
            report.cancelled.append(job.pk)
            return
        if not silent:
            # The worker is alive but must stop: tell it, then fail the run with the reason.
            reason = (
                f"exceeded its time limit of {job.time_limit_s} s"
                if over_time
                else f"no progress for {job.stall_limit_s} s (step {job.progress.get('step')})"
            )
            attempt = job.attempts
            transaction.on_commit(
                lambda: control_send(
                    job_id=job_id, attempt=attempt, action=CONTROL_STOP, reason=reason
                )
            )
            run_transition(run_id=run.pk, to=RunStatus.FAILED, reason=reason)
            report.failed.append(job.pk)
            return
        since = f"{heartbeat:%Y-%m-%d %H:%M:%S} UTC"
        lost = f"no heartbeat from {job.worker or 'its worker'} since {since}"
        if job.attempts < job.max_attempts:
            run_transition(
                run_id=run.pk,
                to=RunStatus.QUEUED,
                reason=f"{lost}; retrying (attempt {job.attempts + 1} of {job.max_attempts})",
            )
            # The lost attempt's curve is obsolete; late points from it are fenced out.
            MetricPoint.objects.filter(run_id=run.pk).delete()
            job_dispatch(job_id=job.pk)
            report.requeued.append(job.pk)
        else:
            run_transition(
                run_id=run.pk,
                to=RunStatus.FAILED,
                reason=f"{lost}; all {job.max_attempts} attempts used",
            )
            report.failed.append(job.pk)


def jobs_reap(*, now: datetime | None = None) -> ReapReport:
    """Requeue or fail jobs whose worker went silent; stop jobs over time or stalled."""
    now = now or timezone.now()
    heartbeat_timeout = timedelta(seconds=settings.PODIUM_HEARTBEAT_TIMEOUT_S)
    report = ReapReport()
    candidates = Job.objects.filter(
        run__status__in=(RunStatus.RUNNING, RunStatus.CANCELLING)
    ).values_list("pk", flat=True)
    for job_id in candidates:
        _reap_one(job_id=job_id, now=now, heartbeat_timeout=heartbeat_timeout, report=report)
    return report
