"""Runs tracked from users' own training scripts (the `podium` client): start, curves, finish.

A tracked run is self-reported: it starts `running` when the script calls `podium.init`,
takes metric points while it runs, and ends `succeeded` (with the task's scores, validated
as an external run's are) or `failed`. Metric points are unique per (run, key, step): a
re-sent point is counted as a duplicate and never stored twice, and a different value for
a stored step is a conflict, refused with the batch rather than silently overwritten.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from catalog.models import Backbone, Method, Task
from tracking.models import Job, MetricPoint, ProvenanceTier, Run, Score, Visibility
from tracking.selectors import job_queue, visible_runs_filter
from tracking.services import (
    RunConflict,
    RunInputError,
    RunPermissionDenied,
    config_fingerprint,
    eval_split_fields,
    record_transition,
    run_transition,
    scores_validate,
    set_tags,
)
from tracking.status import FINAL_STATUSES, InvalidTransition, RunStatus

MAX_POINTS_PER_BATCH = 10_000
# Letters, digits and _ . - / : and spaces, as most trackers allow ("train/loss").
METRIC_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/: ]*")
METRIC_KEY_MAX = MetricPoint._meta.get_field("key").max_length or 100
STEP_MIN, STEP_MAX = -(2**63), 2**63 - 1
FINISH_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED)
# Per key, the existing-point lookup is one range on the (run, key, step) index; beyond
# this many keys in a batch one range over all keys is cheaper than the OR of ranges.
_KEY_RANGES_MAX = 32
_REPORTED_CONFLICTS_MAX = 100


class NotRunOwner(RunPermissionDenied):
    """Only a run's owner may log to it or finish it."""


class TrackingConflict(RunConflict):
    """The run's state refuses the request (finished, or finished differently)."""


class PointConflicts(TrackingConflict):
    """Points whose (key, step) already holds another value; the batch was not stored."""

    def __init__(self, conflicts: Sequence[Mapping[str, Any]], *, total: int) -> None:
        shown = ", ".join(f"{c['key']}@{c['step']}" for c in conflicts[:5])
        more = f" and {total - 5} more" if total > 5 else ""
        super().__init__(
            f"{total} point(s) give another value for a step already recorded ({shown}{more}); "
            "nothing from this batch was stored. Stored points are never overwritten."
        )
        self.conflicts = list(conflicts)
        self.total = total


@dataclass(frozen=True, kw_only=True)
class PointInput:
    key: str
    step: int
    value: float
    timestamp: float | None = None  # Unix seconds; None: when the server receives it


# --- Write side ---------------------------------------------------------------------------


@transaction.atomic
def tracked_run_start(
    *,
    owner: User,
    method: Method,
    backbone: Backbone,
    task: Task,
    config: Mapping[str, Any],
    seed: int,
    visibility: str = Visibility.PUBLIC,
    tags: Iterable[str] = (),
    description: str = "",
) -> Run:
    """A self-reported run that is running from now on, owned by `owner`."""
    now = timezone.now()
    run = Run.objects.create(
        owner=owner,
        method=method,
        backbone=backbone,
        task=task,
        config=dict(config),
        config_hash=config_fingerprint(config),
        seed=seed,
        **eval_split_fields(task=task),
        status=RunStatus.RUNNING,
        visibility=visibility,
        provenance_tier=ProvenanceTier.SELF_REPORTED,
        provenance={"tracked": True},
        description=description,
        started_at=now,
    )
    record_transition(run=run, from_status="", reason="tracking started by the podium client")
    set_tags(run=run, tags=tags)
    return run


def tracked_runs_reap(*, now: datetime | None = None) -> list[int]:
    """Fail tracked runs whose script went silent (killed, machine lost): no metric point
    and no start for PODIUM_TRACKED_RUN_TIMEOUT_S. Returns the ids of the runs failed."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PODIUM_TRACKED_RUN_TIMEOUT_S)
    silent = (
        Run.objects.filter(status=RunStatus.RUNNING, job__isnull=True, started_at__lt=cutoff)
        .annotate(last_point=Max("metric_points__recorded_at"))
        .filter(Q(last_point__isnull=True) | Q(last_point__lt=cutoff))
        .values_list("pk", flat=True)
    )
    failed = []
    for run_id in silent:
        hours = settings.PODIUM_TRACKED_RUN_TIMEOUT_S / 3600
        try:
            run_transition(
                run_id=run_id,
                to=RunStatus.FAILED,
                reason=f"no metric point or finish from its script for {hours:g} h",
            )
        except InvalidTransition:
            continue  # finished meanwhile
        failed.append(run_id)
    return failed


def _locked_own_run(*, run_id: int, user: User) -> Run:
    run = Run.objects.select_for_update().get(pk=run_id)
    if run.owner_id != user.pk:
        raise NotRunOwner("Only the run's owner can log to it or finish it.")
    return run


def _check_points(points: Sequence[PointInput]) -> None:
    if len(points) > MAX_POINTS_PER_BATCH:
        raise RunInputError(
            f"points: at most {MAX_POINTS_PER_BATCH} points per request, not {len(points)}."
        )
    for index, point in enumerate(points):
        if len(point.key) > METRIC_KEY_MAX or not METRIC_KEY.fullmatch(point.key):
            raise RunInputError(
                f"points.{index}.key: {point.key[:120]!r} is not a metric key: at most "
                f"{METRIC_KEY_MAX} letters, digits, spaces and _ . - / :, not starting "
                "with a space or punctuation."
            )
        if not STEP_MIN <= point.step <= STEP_MAX:
            raise RunInputError(f"points.{index}.step: {point.step} is out of range.")
        if not math.isfinite(point.value):
            raise RunInputError(f"points.{index}.value: {point.value!r} is not a finite number.")


def _stored_values(
    *, run_id: int, wanted: Mapping[tuple[str, int], float]
) -> dict[tuple[str, int], float]:
    """The stored values of the wanted (key, step) pairs, in one indexed query."""
    ranges: dict[str, list[int]] = {}
    for key, step in wanted:
        bounds = ranges.setdefault(key, [step, step])
        bounds[0], bounds[1] = min(bounds[0], step), max(bounds[1], step)
    if len(ranges) <= _KEY_RANGES_MAX:
        which = Q()
        for key, (low, high) in ranges.items():
            which |= Q(key=key, step__gte=low, step__lte=high)
    else:
        low = min(bounds[0] for bounds in ranges.values())
        high = max(bounds[1] for bounds in ranges.values())
        which = Q(key__in=list(ranges), step__gte=low, step__lte=high)
    rows = MetricPoint.objects.filter(which, run_id=run_id).values_list("key", "step", "value")
    return {(key, step): value for key, step, value in rows if (key, step) in wanted}


def _insert_points(*, run_id: int, points: Sequence[tuple[str, int, float, float]]) -> None:
    """Insert (key, step, value, unix time) rows. On PostgreSQL one INSERT of four arrays
    with no model instances (the ORM's per-object work costs more than the insert itself);
    elsewhere (SQLite in development) bulk_create. The run's row lock already excludes a
    concurrent writer; ON CONFLICT DO NOTHING is belt and braces."""
    if not points:
        return
    if connection.vendor != "postgresql":
        MetricPoint.objects.bulk_create(
            [
                MetricPoint(
                    run_id=run_id,
                    key=key,
                    step=step,
                    value=value,
                    recorded_at=datetime.fromtimestamp(at, tz=UTC),
                )
                for key, step, value, at in points
            ],
            ignore_conflicts=True,
        )
        return
    meta = MetricPoint._meta
    column = {field.name: field.column for field in meta.concrete_fields}
    keys, steps, values, times = (
        list(column_values) for column_values in zip(*points, strict=True)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {meta.db_table} ({column['run']}, {column['key']}, {column['step']}, "
            f"{column['value']}, {column['recorded_at']}) "
            "SELECT %s, k, s, v, to_timestamp(t) "
            "FROM unnest(%s::text[], %s::bigint[], %s::float8[], %s::float8[]) AS p(k, s, v, t) "
            f"ON CONFLICT ({column['run']}, {column['key']}, {column['step']}) DO NOTHING",
            [run_id, keys, steps, values, times],
        )


@dataclass(frozen=True, kw_only=True)
class PointsOutcome:
    accepted: int  # newly stored
    duplicates: int  # already stored with the same value (a re-sent point), not stored again


@transaction.atomic
def metric_points_record(*, run_id: int, user: User, points: Sequence[PointInput]) -> PointsOutcome:
    """Store a batch of a running run's curve points, all or nothing.

    The run's row lock serialises batches of one run, so the check for stored steps and the
    insert see the same state: two bulk statements whatever the batch size.
    """
    _check_points(points)
    run = _locked_own_run(run_id=run_id, user=user)
    if run.status != RunStatus.RUNNING:
        raise TrackingConflict(
            f"The run is {run.status}: it takes no more metric points (only a running run does)."
        )
    wanted: dict[tuple[str, int], float] = {}
    conflicts: list[dict[str, Any]] = []
    for point in points:
        seen = wanted.setdefault((point.key, point.step), point.value)
        if seen != point.value:
            conflicts.append(
                {"key": point.key, "step": point.step, "value": point.value, "stored": seen}
            )
    stored = _stored_values(run_id=run.pk, wanted=wanted) if wanted else {}
    for (key, step), value in stored.items():
        if wanted[(key, step)] != value:
            conflicts.append(
                {"key": key, "step": step, "value": wanted[(key, step)], "stored": value}
            )
    if conflicts:
        raise PointConflicts(conflicts[:_REPORTED_CONFLICTS_MAX], total=len(conflicts))
    now = timezone.now().timestamp()
    new: list[tuple[str, int, float, float]] = []
    added: set[tuple[str, int]] = set()
    for point in points:
        pair = (point.key, point.step)
        if pair in stored or pair in added:
            continue
        added.add(pair)
        new.append(
            (
                point.key,
                point.step,
                point.value,
                now if point.timestamp is None else point.timestamp,
            )
        )
    _insert_points(run_id=run.pk, points=new)
    return PointsOutcome(accepted=len(new), duplicates=len(points) - len(new))


@dataclass(frozen=True, kw_only=True)
class FinishOutcome:
    run: Run
    changed: bool  # False when the run had already finished the same way (a retried finish)


def _recorded_scores(run: Run) -> dict[str, float]:
    return dict(Score.objects.filter(run=run).values_list("metric__key", "value"))


@transaction.atomic
def tracked_run_finish(
    *,
    run_id: int,
    user: User,
    status: str,
    scores: Mapping[str, float] | None = None,
    error: str = "",
) -> FinishOutcome:
    """End a tracked run: `succeeded` with the task's scores (or none, for a run tracked for
    its curves only), or `failed` with its error.

    Finishing again the same way is a no-op, so a client may retry a finish whose answer it
    lost; finishing differently is a TrackingConflict.
    """
    if status not in FINISH_STATUSES:
        raise RunInputError(f"status: {status!r} is not succeeded or failed.")
    scores = dict(scores or {})
    if status == RunStatus.FAILED and scores:
        raise RunInputError("scores: a failed run records no scores.")
    run = _locked_own_run(run_id=run_id, user=user)
    task = Task.objects.get(pk=run.task_id)
    metrics = scores_validate(task=task, scores=scores) if scores else {}
    reason = error if status == RunStatus.FAILED and error else f"{status} (podium client)"
    if run.status in FINAL_STATUSES:
        same = run.status == status and run.status_reason == reason
        if same and _recorded_scores(run) == {k: float(v) for k, v in scores.items()}:
            return FinishOutcome(run=run, changed=False)
        raise TrackingConflict(
            f"The run already finished as {run.status}; finishing it again must repeat the "
            "same status, scores and error."
        )
    if run.status == RunStatus.CANCELLING:
        # Its owner cancelled it meanwhile: the script's end completes the cancellation.
        result = run_transition(run_id=run.pk, to=RunStatus.CANCELLED, reason=run.status_reason)
        return FinishOutcome(run=result.run, changed=True)
    Score.objects.bulk_create(
        Score(run=run, metric=metrics[key], value=float(value)) for key, value in scores.items()
    )
    result = run_transition(run_id=run.pk, to=status, reason=reason)
    return FinishOutcome(run=result.run, changed=True)


# --- Read side ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PointRow:
    key: str
    step: int
    value: float
    recorded_at: datetime


def metric_points_page(
    *, run: Run, keys: Sequence[str] = (), after: tuple[str, int] | None = None, limit: int
) -> tuple[list[PointRow], tuple[str, int] | None]:
    """A page of a run's raw points in (key, step) order after `after`, and the position to
    ask for the next page from (None on the last page). Keyset pagination on the
    (run, key, step) index: every page costs the same however deep it is."""
    points = MetricPoint.objects.filter(run=run)
    if keys:
        points = points.filter(key__in=keys)
    if after is not None:
        key, step = after
        points = points.filter(Q(key__gt=key) | Q(key=key, step__gt=step))
    rows = [
        PointRow(key=key, step=step, value=value, recorded_at=recorded_at)
        for key, step, value, recorded_at in points.order_by("key", "step").values_list(
            "key", "step", "value", "recorded_at"
        )[: limit + 1]
    ]
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, (rows[-1].key, rows[-1].step)


@dataclass(frozen=True, kw_only=True)
class Series:
    steps: list[int]
    values: list[float]
    total: int  # stored points; len(steps) < total when downsampled


def downsample_min_max(
    steps: Sequence[int], values: Sequence[float], *, max_points: int
) -> tuple[list[int], list[float]]:
    """At most `max_points` points of a curve for display: the first and last point, and
    per equal-width bucket of the points between them, its lowest and highest point in
    step order. Every extreme survives, so a spike or a divergence is never smoothed away."""
    if max_points < 4:
        raise ValueError("max_points must be at least 4")
    count = len(steps)
    if count <= max_points:
        return list(steps), list(values)
    buckets = (max_points - 2) // 2
    inner = count - 2
    kept = [0]
    for bucket in range(buckets):
        start = 1 + bucket * inner // buckets
        end = 1 + (bucket + 1) * inner // buckets
        if start >= end:
            continue
        low = high = start
        for index in range(start + 1, end):
            if values[index] < values[low]:
                low = index
            elif values[index] > values[high]:
                high = index
        kept.extend(sorted({low, high}))
    kept.append(count - 1)
    return [steps[i] for i in kept], [values[i] for i in kept]


def metric_series_downsampled(
    *, run: Run, keys: Sequence[str] = (), max_points: int
) -> dict[str, Series]:
    """Each curve of a run (or of `keys`), at most `max_points` points per key for display
    (see downsample_min_max); storage keeps every point. Keys in alphabetical order."""
    points = MetricPoint.objects.filter(run=run)
    if keys:
        points = points.filter(key__in=keys)
    curves: dict[str, tuple[list[int], list[float]]] = {}
    for key, step, value in points.order_by("key", "step").values_list("key", "step", "value"):
        steps, values = curves.setdefault(key, ([], []))
        steps.append(step)
        values.append(value)
    series = {}
    for key, (steps, values) in curves.items():
        kept_steps, kept_values = downsample_min_max(steps, values, max_points=max_points)
        series[key] = Series(steps=kept_steps, values=kept_values, total=len(steps))
    return series


@dataclass(frozen=True, kw_only=True)
class RunProgress:
    status: str
    status_reason: str
    executed: bool  # a job run by Podium; the fields below are None otherwise
    position: int | None  # in the queue, 1 = next; queued jobs only
    estimated_start: datetime | None
    worker: str | None
    heartbeat_at: datetime | None
    progress: dict[str, Any] | None
    attempts: int | None
    max_attempts: int | None
    log_tail: str | None  # the owner's only


def run_progress(*, run: Run, viewer: AbstractBaseUser | AnonymousUser) -> RunProgress:
    """Where a run stands: its status and, for a job, its queue position, worker, progress
    and (for its owner) the tail of its log."""
    job = Job.objects.filter(run=run).first()
    if job is None:
        return RunProgress(
            status=run.status,
            status_reason=run.status_reason,
            executed=False,
            position=None,
            estimated_start=None,
            worker=None,
            heartbeat_at=None,
            progress=None,
            attempts=None,
            max_attempts=None,
            log_tail=None,
        )
    position = estimated_start = None
    if run.status == RunStatus.QUEUED:
        queued = next((q for q in job_queue().queued if q.job.pk == job.pk), None)
        if queued is not None:
            position, estimated_start = queued.position, queued.estimated_start
    is_owner = viewer.is_authenticated and viewer.pk == run.owner_id
    return RunProgress(
        status=run.status,
        status_reason=run.status_reason,
        executed=True,
        position=position,
        estimated_start=estimated_start,
        worker=job.worker,
        heartbeat_at=job.heartbeat_at,
        progress=dict(job.progress),
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        log_tail=job.log_tail if is_owner else None,
    )


def run_for_viewer(*, viewer: AbstractBaseUser | AnonymousUser, uuid: UUID) -> Run | None:
    """A run the viewer may see, without its details: what logging and reading curves need."""
    return (
        Run.objects.filter(visible_runs_filter(viewer=viewer), uuid=uuid)
        .only("id", "uuid", "owner_id", "status", "status_reason")
        .first()
    )
