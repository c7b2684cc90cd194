"""Read side of the API: what a viewer may list and see."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import Prefetch, Q, QuerySet

from api.exports import competition_ranks
from api.models import ApiToken
from catalog.models import (
    Backbone,
    Method,
    Suite,
    SuiteTask,
    SuiteVersion,
    SuiteVersionStatus,
    Task,
    TaskMetric,
)
from catalog.selectors import suite_version_latest
from leaderboard.catalog import get_benchmark, get_task
from leaderboard.ranking import RankingInputError, ScoreTable, rank
from leaderboard.suite_score import task_score, to_percent
from tracking.models import (
    AuditEvent,
    ReviewStatus,
    Run,
    RunTransition,
    Score,
    Visibility,
)
from tracking.selectors import (
    SeedAggregate,
    SystemScores,
    run_audit_events,
    system_scores,
    visible_runs_filter,
)

Viewer = AbstractBaseUser | AnonymousUser

# The orderings GET /runs/ accepts, by name, and the field each sorts on.
RUN_ORDERING_FIELDS = {
    "created_at": "created_at",
    "finished_at": "finished_at",
    "seed": "seed",
    "status": "status",
    "method": "method__key",
    "backbone": "backbone__key",
    "task": "task__key",
}
RUN_ORDERINGS = tuple(RUN_ORDERING_FIELDS)
OFFICIAL = "official"


def token_list(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def method_list() -> QuerySet[Method]:
    return Method.objects.order_by("key")


def backbone_list() -> QuerySet[Backbone]:
    return Backbone.objects.order_by("key")


def task_by_path(*, path: str) -> Task | None:
    """The current version of a task named "benchmark/key"."""
    benchmark, _, key = path.partition("/")
    return (
        Task.objects.select_related("benchmark")
        .filter(benchmark__key=benchmark, key=key, is_current=True)
        .first()
    )


def suite_published_latest(*, key: str) -> SuiteVersion | None:
    suite = Suite.objects.filter(key=key).first()
    return suite_version_latest(suite=suite) if suite is not None else None


@dataclass(frozen=True, kw_only=True)
class RunFilters:
    """Each sequence is an IN-list; an empty one (or None) does not filter."""

    tasks: Sequence[tuple[str, str]] = ()  # (benchmark key, task key), any version
    benchmarks: Sequence[str] = ()
    suites: Sequence[str] = ()  # runs on a task of any published version of these suites
    methods: Sequence[str] = ()
    backbones: Sequence[str] = ()
    statuses: Sequence[str] = ()
    owners: Sequence[str] = ()  # usernames
    tags: Sequence[str] = ()
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    # Words that must each appear in the method, backbone, description or a tag.
    search: str = ""
    ordering: str = "-created_at"


def _runs_with_details() -> QuerySet[Run]:
    return Run.objects.select_related(
        "owner__profile", "method", "backbone", "task__benchmark"
    ).prefetch_related(
        "tags",
        Prefetch(
            "scores", queryset=Score.objects.select_related("metric").order_by("metric__position")
        ),
    )


def run_list(*, viewer: Viewer, filters: RunFilters) -> QuerySet[Run]:
    """Runs the viewer may see (public ones and their own), filtered and ordered."""
    runs = _runs_with_details().filter(visible_runs_filter(viewer=viewer))
    if filters.tasks:
        which = Q()
        for benchmark, key in filters.tasks:
            which |= Q(task__benchmark__key=benchmark, task__key=key)
        runs = runs.filter(which)
    if filters.benchmarks:
        runs = runs.filter(task__benchmark__key__in=filters.benchmarks)
    if filters.methods:
        runs = runs.filter(method__key__in=filters.methods)
    if filters.backbones:
        runs = runs.filter(backbone__key__in=filters.backbones)
    if filters.statuses:
        runs = runs.filter(status__in=filters.statuses)
    if filters.owners:
        runs = runs.filter(owner__username__in=filters.owners)
    if filters.tags:
        # A subquery rather than a join, so a run with two matching tags is listed once.
        runs = runs.filter(pk__in=Run.objects.filter(tags__name__in=filters.tags).values("pk"))
    if filters.suites:
        runs = runs.filter(
            task_id__in=SuiteTask.objects.filter(
                suite_version__suite__key__in=filters.suites,
                suite_version__status=SuiteVersionStatus.PUBLISHED,
            ).values("task_id")
        )
    if filters.created_after is not None:
        runs = runs.filter(created_at__gte=filters.created_after)
    if filters.created_before is not None:
        runs = runs.filter(created_at__lt=filters.created_before)
    for word in filters.search.split():
        runs = runs.filter(
            Q(method__key__icontains=word)
            | Q(method__name__icontains=word)
            | Q(backbone__key__icontains=word)
            | Q(backbone__name__icontains=word)
            | Q(description__icontains=word)
            | Q(pk__in=Run.objects.filter(tags__name__icontains=word).values("pk"))
        )
    descending = filters.ordering.startswith("-")
    field = RUN_ORDERING_FIELDS[filters.ordering.lstrip("-")]
    return runs.order_by(f"-{field}" if descending else field, "-id" if descending else "id")


def run_get(*, viewer: Viewer, uuid: UUID) -> Run | None:
    """A run the viewer may see, with its scores and history; None hides others' private runs."""
    return (
        _runs_with_details()
        .prefetch_related(
            Prefetch("transitions", queryset=RunTransition.objects.order_by("at", "id"))
        )
        .filter(visible_runs_filter(viewer=viewer), uuid=uuid)
        .first()
    )


def run_list_by_ids(*, viewer: Viewer, ids: Sequence[int]) -> list[Run]:
    """The viewer's visible runs among `ids`, with their details, in id order."""
    return list(
        _runs_with_details().filter(visible_runs_filter(viewer=viewer), pk__in=ids).order_by("id")
    )


def run_get_for_staff(*, uuid: UUID) -> Run | None:
    """Any run, whatever its visibility or review: for staff moderating it."""
    return _runs_with_details().filter(uuid=uuid).first()


def runs_awaiting_review() -> QuerySet[Run]:
    """Public runs that wait for staff approval before public leaderboards show them."""
    return (
        _runs_with_details()
        .filter(
            review_status=ReviewStatus.PENDING,
            visibility=Visibility.PUBLIC,
            withdrawn_at__isnull=True,
        )
        .order_by("created_at", "id")
    )


def audit_events(*, run: Run) -> QuerySet[AuditEvent]:
    return run_audit_events(run=run)


# --- Task leaderboards ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TaskBoardRow:
    system: SystemScores
    cells: tuple[SeedAggregate | None, ...]  # one per metric column
    task_score: float | None  # 0-100: the benchmark's own task score (paired metrics averaged)
    rank: int | None
    rule_score: float | None


@dataclass(frozen=True, kw_only=True)
class TaskBoard:
    task: Task
    metrics: tuple[TaskMetric, ...]
    rows: tuple[TaskBoardRow, ...]
    rule: str
    missing: str
    winners: tuple[str, ...]
    error: str  # why the rule could not rank this table, if so


def _task_score(task: Task, means: dict[str, float]) -> float | None:
    """The catalog's task score where the task's definition is known, else its primary
    metric; on the 0-100 scale."""
    try:
        definition = get_task(benchmark=task.benchmark.key, key=task.key)
        method = get_benchmark(key=task.benchmark.key).suite_score
    except KeyError:
        definition = None
    if definition is not None and definition.version == task.version:
        score = task_score(task=definition, metrics=means, method=method)
    else:
        score = means.get(task.primary_metric)
    return None if score is None else to_percent(score)


def task_leaderboard(
    *, task: Task, viewer: Viewer | None, rule: str = OFFICIAL, missing: str = ""
) -> TaskBoard:
    """A task version's leaderboard: one column per metric, systems ranked by the task
    score ("official") or by a ranking rule over the metrics (each with its direction)."""
    metrics = tuple(task.metrics.order_by("position", "key"))
    systems = system_scores(task_ids=[task.pk], viewer=viewer)
    cells = [
        tuple(system.scores.get((task.pk, metric.key)) for metric in metrics) for system in systems
    ]
    scores = [
        _task_score(
            task,
            {m.key: cell.mean for m, cell in zip(metrics, row, strict=True) if cell is not None},
        )
        for row in cells
    ]
    error = ""
    winners: tuple[str, ...] = ()
    if rule == OFFICIAL:
        ranks = competition_ranks(scores)
        rule_scores: list[float | None] = [None] * len(systems)
        best = [s.label for s, r in zip(systems, ranks, strict=True) if r == 1]
        winners = tuple(sorted(best))
    else:
        ranks, rule_scores = [None] * len(systems), [None] * len(systems)
        if systems:
            table = ScoreTable.build(
                systems=[s.label for s in systems],
                tasks=[m.key for m in metrics],
                scores=[[math.nan if cell is None else cell.mean for cell in row] for row in cells],
                lower_is_better=[m.key for m in metrics if not m.higher_is_better],
            )
            try:
                result = rank(table, rule=rule, missing=missing or None)
            except (RankingInputError, KeyError, ValueError) as problem:
                error = str(problem).strip("'\"")
            else:
                by_label = {e.system: e for e in result.ranking}
                ranks = [by_label[s.label].rank for s in systems]
                rule_scores = [by_label[s.label].score for s in systems]
                winners = tuple(result.winners)
    rows = [
        TaskBoardRow(
            system=system, cells=row, task_score=score, rank=position, rule_score=rule_score
        )
        for system, row, score, position, rule_score in zip(
            systems, cells, scores, ranks, rule_scores, strict=True
        )
    ]
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.system.label))
    return TaskBoard(
        task=task,
        metrics=metrics,
        rows=tuple(rows),
        rule=rule,
        missing=missing,
        winners=winners,
        error=error,
    )
