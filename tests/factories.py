"""factory_boy factories for the platform's models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils import timezone

from catalog.models import (
    Backbone,
    BackboneSource,
    Benchmark,
    Method,
    Suite,
    SuiteTask,
    SuiteVersion,
    Task,
    TaskMetric,
    TaskType,
)
from tracking.models import ProvenanceTier, Run, Visibility
from tracking.services import config_fingerprint
from tracking.status import FINAL_STATUSES, RunStatus


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")


class BenchmarkFactory(factory.django.DjangoModelFactory[Benchmark]):
    class Meta:
        model = Benchmark

    key = factory.Sequence(lambda n: f"bench{n}")
    name = factory.LazyAttribute(lambda b: b.key.upper())


class TaskFactory(factory.django.DjangoModelFactory[Task]):
    class Meta:
        model = Task
        skip_postgeneration_save = True

    benchmark = factory.SubFactory(BenchmarkFactory)
    key = factory.Sequence(lambda n: f"task{n}")
    version = 1
    name = factory.LazyAttribute(lambda t: t.key.upper())
    task_type = TaskType.SINGLE_SENTENCE
    primary_metric = "accuracy"
    labels = ["negative", "positive"]

    # Every task gets its primary metric; pass `accuracy=None` for a task without metrics.
    accuracy = factory.RelatedFactory(
        "tests.factories.TaskMetricFactory", factory_related_name="task"
    )


class TaskMetricFactory(factory.django.DjangoModelFactory[TaskMetric]):
    class Meta:
        model = TaskMetric

    task = factory.SubFactory(TaskFactory, accuracy=None)
    key = "accuracy"
    name = "Accuracy"
    higher_is_better = True


class MethodFactory(factory.django.DjangoModelFactory[Method]):
    class Meta:
        model = Method

    key = factory.Sequence(lambda n: f"method{n}")
    name = factory.LazyAttribute(lambda m: m.key.title())
    executable = True


class BackboneFactory(factory.django.DjangoModelFactory[Backbone]):
    class Meta:
        model = Backbone

    key = factory.Sequence(lambda n: f"backbone{n}")
    name = factory.LazyAttribute(lambda b: b.key.title())
    source = BackboneSource.HUB
    hub_id = factory.LazyAttribute(lambda b: f"org/{b.key}")


class SuiteFactory(factory.django.DjangoModelFactory[Suite]):
    class Meta:
        model = Suite

    key = factory.Sequence(lambda n: f"suite{n}")
    name = factory.LazyAttribute(lambda s: s.key.title())


class SuiteVersionFactory(factory.django.DjangoModelFactory[SuiteVersion]):
    class Meta:
        model = SuiteVersion

    suite = factory.SubFactory(SuiteFactory)
    number = factory.Sequence(lambda n: n + 1)


class SuiteTaskFactory(factory.django.DjangoModelFactory[SuiteTask]):
    class Meta:
        model = SuiteTask

    suite_version = factory.SubFactory(SuiteVersionFactory)
    task = factory.SubFactory(TaskFactory)


class RunFactory(factory.django.DjangoModelFactory[Run]):
    """A queued run executed by Podium; use services for anything with history or scores."""

    class Meta:
        model = Run

    owner = factory.SubFactory(UserFactory)
    method = factory.SubFactory(MethodFactory)
    backbone = factory.SubFactory(BackboneFactory)
    task = factory.SubFactory(TaskFactory)
    config = factory.LazyFunction(lambda: {"learning_rate": 2e-5})
    config_hash = factory.LazyAttribute(lambda r: config_fingerprint(r.config))
    seed = factory.Sequence(lambda n: n)
    status = RunStatus.QUEUED
    visibility = Visibility.PUBLIC
    provenance_tier = ProvenanceTier.EXECUTED
    finished_at = factory.LazyAttribute(
        lambda r: timezone.now() if r.status in FINAL_STATUSES else None
    )
