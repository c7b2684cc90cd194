"""Read side of the API: what a viewer may list and see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import Prefetch, Q, QuerySet

from api.models import ApiToken
from catalog.models import Backbone, Method, Suite, SuiteVersion, Task
from catalog.selectors import suite_version_latest
from tracking.models import Job, Run, RunTransition, Score, Visibility
from tracking.selectors import visible_runs_filter

Viewer = AbstractBaseUser | AnonymousUser

RUN_ORDERINGS = ("created_at", "finished_at", "seed", "status")


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
    """Each field is an IN-list; an empty one does not filter."""

    tasks: Sequence[tuple[str, str]] = ()  # (benchmark key, task key), any version
    benchmarks: Sequence[str] = ()
    methods: Sequence[str] = ()
    backbones: Sequence[str] = ()
    statuses: Sequence[str] = ()
    owners: Sequence[str] = ()  # usernames
    tags: Sequence[str] = ()
    ordering: str = "-created_at"


def _runs_with_details() -> QuerySet[Run]:
    return Run.objects.select_related(
        "owner", "method", "backbone", "task__benchmark"
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
    return runs.order_by(filters.ordering, "-id" if filters.ordering.startswith("-") else "id")


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


def job_details_visible(*, job: Job, viewer: Viewer) -> bool:
    """Whether the queue may show a job's details to this viewer: never another user's
    private run."""
    if job.run.visibility == Visibility.PUBLIC:
        return True
    return viewer.is_authenticated and job.run.owner_id == viewer.pk
