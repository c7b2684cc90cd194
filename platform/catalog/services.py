"""Write side of the catalog: loading benchmark definitions, curating suite versions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from catalog.models import (
    Benchmark,
    ImmutableSuiteVersion,
    Method,
    Suite,
    SuiteTask,
    SuiteVersion,
    SuiteVersionStatus,
    Task,
    TaskMetric,
)
from leaderboard.catalog import BenchmarkDefinition, TaskDefinition


class CatalogConflict(Exception):
    """A loaded definition differs from the stored task of the same version."""


@dataclass(kw_only=True)
class CatalogLoadReport:
    benchmarks_created: list[str] = field(default_factory=list)
    tasks_created: list[str] = field(default_factory=list)
    tasks_unchanged: list[str] = field(default_factory=list)
    suites_published: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.benchmarks_created or self.tasks_created or self.suites_published)


def _task_fields(definition: TaskDefinition) -> dict[str, object]:
    dataset = definition.dataset
    return {
        "name": definition.name,
        "description": definition.description,
        "task_type": definition.task_type,
        "dataset_hub_id": dataset.hub_id,
        "dataset_config": dataset.config or "",
        "dataset_revision": dataset.revision or "",
        "local_path": dataset.local_path,
        "splits": list(definition.splits),
        "input_fields": list(definition.input_fields),
        "label_field": definition.label_field,
        "labels": list(definition.labels),
        "primary_metric": definition.primary_metric,
        "license": definition.license,
        "public": definition.public,
        "in_suite_score": definition.in_suite_score,
        "url": definition.url,
        "definition": definition.to_dict(),
    }


def _load_task(
    *, benchmark: Benchmark, definition: TaskDefinition, report: CatalogLoadReport
) -> Task:
    label = f"{definition.qualified_key} v{definition.version}"
    stored = Task.objects.filter(
        benchmark=benchmark, key=definition.key, version=definition.version
    ).first()
    if stored is not None:
        if stored.definition != definition.to_dict():
            raise CatalogConflict(
                f"{label} is already loaded with a different definition; a changed task must "
                f"get a new version so existing runs keep the scores they were given."
            )
        report.tasks_unchanged.append(label)
        if not stored.is_current:
            # Going back to an older version in the files makes it current again.
            Task.objects.filter(benchmark=benchmark, key=definition.key).update(is_current=False)
            stored.is_current = True
            stored.save(update_fields=["is_current"])
        return stored
    Task.objects.filter(benchmark=benchmark, key=definition.key).update(is_current=False)
    task = Task.objects.create(
        benchmark=benchmark,
        key=definition.key,
        version=definition.version,
        is_current=True,
        **_task_fields(definition),
    )
    TaskMetric.objects.bulk_create(
        TaskMetric(
            task=task,
            key=spec.key,
            name=spec.name,
            higher_is_better=spec.higher_is_better,
            group=spec.group,
            position=position,
        )
        for position, spec in enumerate(definition.metrics)
    )
    report.tasks_created.append(label)
    return task


def _ensure_official_suite(
    *, benchmark: Benchmark, tasks: Sequence[Task], report: CatalogLoadReport
) -> None:
    """Keep a published '<benchmark>' suite whose latest version holds the current tasks."""
    counted = [t for t in tasks if t.in_suite_score]
    suite, _ = Suite.objects.get_or_create(
        key=benchmark.key,
        defaults={
            "name": benchmark.name,
            "description": f"The official {benchmark.name} tasks, equally weighted.",
        },
    )
    latest = suite.versions.published().first()
    if latest is not None and set(latest.items.values_list("task_id", flat=True)) == {
        t.pk for t in counted
    }:
        return
    number = (suite.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    version = SuiteVersion.objects.create(
        suite=suite,
        number=number,
        aggregation={"official_score": benchmark.key},
        notes="Created by load_catalog from the benchmark definition.",
    )
    SuiteTask.objects.bulk_create(
        SuiteTask(suite_version=version, task=task, weight=1.0, position=position)
        for position, task in enumerate(counted)
    )
    suite_version_publish(suite_version=version)
    report.suites_published.append(str(version))


@transaction.atomic
def catalog_load(*, benchmarks: Sequence[BenchmarkDefinition]) -> CatalogLoadReport:
    """Load benchmark definitions; running it again with the same files changes nothing."""
    report = CatalogLoadReport()
    for definition in benchmarks:
        benchmark, created = Benchmark.objects.update_or_create(
            key=definition.key,
            defaults={
                "name": definition.name,
                "description": definition.description,
                "url": definition.url,
                "version": definition.version,
            },
        )
        if created:
            report.benchmarks_created.append(definition.key)
        tasks = [
            _load_task(benchmark=benchmark, definition=task, report=report)
            for task in definition.tasks
        ]
        _ensure_official_suite(benchmark=benchmark, tasks=tasks, report=report)
    return report


@transaction.atomic
def suite_version_publish(*, suite_version: SuiteVersion) -> SuiteVersion:
    """Freeze a draft: from now on its tasks, weights and settings cannot change."""
    locked = SuiteVersion.objects.select_for_update().get(pk=suite_version.pk)
    if locked.is_published:
        raise ImmutableSuiteVersion(f"{locked} is already published.")
    if not locked.items.exists():
        raise ValueError(f"{locked} has no tasks; add tasks before publishing.")
    # Bypass the model's immutability guard for this one draft -> published write.
    SuiteVersion.objects.filter(pk=locked.pk).update(
        status=SuiteVersionStatus.PUBLISHED, published_at=timezone.now()
    )
    locked.refresh_from_db()
    return locked


@transaction.atomic
def suite_version_create_next(*, suite: Suite) -> SuiteVersion:
    """Start a new draft version of a suite, copying the latest version's tasks and settings."""
    latest = suite.versions.order_by("-number").first()
    if latest is not None and not latest.is_published:
        raise ValueError(f"{latest} is still a draft; edit it instead of starting another.")
    version = SuiteVersion.objects.create(
        suite=suite,
        number=(latest.number + 1) if latest else 1,
        aggregation=dict(latest.aggregation) if latest else {},
    )
    if latest is not None:
        SuiteTask.objects.bulk_create(
            SuiteTask(
                suite_version=version,
                task=item.task,
                weight=item.weight,
                group=item.group,
                position=item.position,
            )
            for item in latest.items.all()
        )
    return version


@dataclass(frozen=True, kw_only=True)
class MethodDefinition:
    """What the platform stores of a registered method (runners.registry.MethodInfo)."""

    key: str
    name: str
    description: str
    paper_url: str
    schema: dict[str, object]


@transaction.atomic
def methods_sync(*, methods: Sequence[MethodDefinition]) -> list[str]:
    """Create or update the executable methods that the runners register; returns new keys."""
    created_keys = []
    for method in methods:
        _, created = Method.objects.update_or_create(
            key=method.key,
            defaults={
                "name": method.name,
                "description": method.description,
                "paper_url": method.paper_url,
                "hyperparameter_schema": method.schema,
                "executable": True,
            },
        )
        if created:
            created_keys.append(method.key)
    return created_keys
