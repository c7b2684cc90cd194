"""Loading the declarative catalog into the database: complete, idempotent, versioned."""

from __future__ import annotations

import dataclasses
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Benchmark, Suite, SuiteVersionStatus, Task, TaskMetric
from catalog.services import CatalogConflict, catalog_load
from leaderboard.catalog import BenchmarkDefinition, load_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def definitions() -> tuple[BenchmarkDefinition, ...]:
    return load_catalog()


def test_load_command_loads_every_task_and_is_idempotent(
    definitions: tuple[BenchmarkDefinition, ...],
) -> None:
    out = StringIO()
    call_command("load_catalog", stdout=out)
    expected = {(b.key, t.key) for b in definitions for t in b.tasks}
    assert set(Task.objects.values_list("benchmark__key", "key")) == expected
    assert {"glue", "superglue", "lepiszcze"} <= set(
        Benchmark.objects.values_list("key", flat=True)
    )
    for benchmark in definitions:
        for task in benchmark.tasks:
            stored = Task.objects.get(benchmark__key=benchmark.key, key=task.key)
            assert stored.version == task.version
            assert stored.definition == task.to_dict()
            metrics = list(
                TaskMetric.objects.filter(task=stored).values_list(
                    "key", "higher_is_better", "group"
                )
            )
            assert metrics == [(m.key, m.higher_is_better, m.group) for m in task.metrics]
    counts = (Task.objects.count(), TaskMetric.objects.count())

    out = StringIO()
    call_command("load_catalog", stdout=out)
    assert "0 new" in out.getvalue()
    assert (Task.objects.count(), TaskMetric.objects.count()) == counts


def test_each_benchmark_gets_a_published_official_suite(
    definitions: tuple[BenchmarkDefinition, ...],
) -> None:
    catalog_load(benchmarks=definitions)
    for benchmark in definitions:
        suite = Suite.objects.get(key=benchmark.key)
        version = suite.versions.get()
        assert version.status == SuiteVersionStatus.PUBLISHED
        assert set(version.items.values_list("task__key", flat=True)) == {
            t.key for t in benchmark.tasks if t.in_suite_score
        }


def test_changed_definition_without_new_version_is_refused(
    definitions: tuple[BenchmarkDefinition, ...],
) -> None:
    catalog_load(benchmarks=definitions)
    glue = definitions[[b.key for b in definitions].index("glue")]
    edited_task = dataclasses.replace(glue.tasks[0], description="edited behind our back")
    edited = dataclasses.replace(glue, tasks=(edited_task, *glue.tasks[1:]))
    with pytest.raises(CatalogConflict, match="new version"):
        catalog_load(benchmarks=[edited])
    assert Task.objects.get(benchmark__key="glue", key=edited_task.key).description != (
        "edited behind our back"
    )


def test_new_task_version_keeps_the_old_one_and_moves_the_official_suite(
    definitions: tuple[BenchmarkDefinition, ...],
) -> None:
    catalog_load(benchmarks=definitions)
    glue = next(b for b in definitions if b.key == "glue")
    counted = next(t for t in glue.tasks if t.in_suite_score)
    bumped_task = dataclasses.replace(counted, version=counted.version + 1, description="v2")
    bumped = dataclasses.replace(
        glue, tasks=tuple(bumped_task if t is counted else t for t in glue.tasks)
    )
    report = catalog_load(benchmarks=[bumped])
    assert report.tasks_created == [f"glue/{counted.key} v{counted.version + 1}"]
    versions = Task.objects.filter(benchmark__key="glue", key=counted.key).order_by("version")
    assert [(t.version, t.is_current) for t in versions] == [
        (counted.version, False),
        (counted.version + 1, True),
    ]
    suite = Suite.objects.get(key="glue")
    old, new = suite.versions.order_by("number")
    assert old.items.filter(task=versions[0]).exists()
    assert new.items.filter(task=versions[1]).exists()
    assert new.status == SuiteVersionStatus.PUBLISHED


def test_load_command_reports_a_broken_file_in_one_line(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "glue.yaml").write_text("key: glue\nname: [unclosed\n")
    with pytest.raises(CommandError) as excinfo:
        call_command("load_catalog", directory=folder)
    assert "glue.yaml" in str(excinfo.value)
    assert not Task.objects.exists()


def test_load_command_registers_the_runners_methods_with_their_schemas() -> None:
    from catalog.models import Method
    from runners.registry import get_method

    call_command("load_catalog", stdout=StringIO())
    majority = Method.objects.get(key="majority")
    assert majority.executable
    assert majority.hyperparameter_schema == dict(get_method("majority").schema)
    Method.objects.filter(key="majority").update(name="renamed by hand")
    call_command("load_catalog", stdout=StringIO())
    assert Method.objects.get(key="majority").name == "Majority class"
    assert Method.objects.filter(key="majority").count() == 1
