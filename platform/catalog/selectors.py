"""Read side of the catalog."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet

from catalog.models import Benchmark, Suite, SuiteTask, SuiteVersion, Task


def benchmark_list() -> QuerySet[Benchmark]:
    return Benchmark.objects.annotate(
        task_count=Count("tasks", filter=Q(tasks__is_current=True))
    ).order_by("key")


def benchmark_tasks(*, benchmark: Benchmark) -> QuerySet[Task]:
    """The current version of each of a benchmark's tasks, with their metrics."""
    return (
        Task.objects.filter(benchmark=benchmark, is_current=True)
        .prefetch_related("metrics")
        .order_by("-in_suite_score", "key")
    )


def suite_list() -> QuerySet[Suite]:
    return Suite.objects.prefetch_related(
        Prefetch(
            "versions",
            queryset=SuiteVersion.objects.published().annotate(task_count=Count("items")),
            to_attr="published_versions",
        )
    ).order_by("key")


def suite_version_latest(*, suite: Suite) -> SuiteVersion | None:
    return suite.versions.published().first()


def suite_version_items(*, suite_version: SuiteVersion) -> QuerySet[SuiteTask]:
    return (
        suite_version.items.select_related("task", "task__benchmark")
        .prefetch_related("task__metrics")
        .order_by("position")
    )
