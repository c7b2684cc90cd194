"""Fixtures for API tests: clients authenticated by session or by API token, and a small
catalog built with factories (tests that score predictions load the real one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from api.services import token_create
from catalog.models import Backbone, Method, Suite, SuiteVersionStatus, Task, TaskMetric
from tests.factories import (
    BackboneFactory,
    BenchmarkFactory,
    MethodFactory,
    SuiteTaskFactory,
    SuiteVersionFactory,
    TaskFactory,
    TaskMetricFactory,
    UserFactory,
)
from tracking.models import Run
from tracking.services import run_create_external


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def alice() -> User:
    return UserFactory.create(username="alice")


@pytest.fixture
def bob() -> User:
    return UserFactory.create(username="bob")


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    """A client that sends a fresh API token of the given user."""

    def make(user: User) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='t').key}")
        return client

    return make


@dataclass(frozen=True, kw_only=True)
class Catalog:
    task: Task  # bench/sst: accuracy (higher is better) and loss (lower is better)
    other_task: Task  # bench/cola: accuracy only
    method: Method  # executable
    external_method: Method  # records external results only
    backbone: Backbone


@pytest.fixture
def small_catalog() -> Catalog:
    benchmark = BenchmarkFactory.create(key="bench", name="Bench")
    task = TaskFactory.create(benchmark=benchmark, key="sst", name="SST")
    TaskMetricFactory.create(task=task, key="loss", name="Loss", higher_is_better=False, position=1)
    return Catalog(
        task=task,
        other_task=TaskFactory.create(benchmark=benchmark, key="cola"),
        method=MethodFactory.create(
            key="lora",
            executable=True,
            hyperparameter_schema={
                "type": "object",
                "properties": {"rank": {"type": "integer", "minimum": 1}},
            },
        ),
        external_method=MethodFactory.create(key="paper", executable=False),
        backbone=BackboneFactory.create(key="minilm"),
    )


@pytest.fixture
def staff() -> User:
    return UserFactory.create(username="curator", is_staff=True)


def published_suite(*, key: str, tasks: list[Task], **rules: Any) -> Suite:
    """A suite with one published version holding `tasks`; `rules` are Suite fields
    (requires_approval, daily_submission_limit, ...)."""
    version = SuiteVersionFactory.create(
        suite__key=key, **{f"suite__{k}": v for k, v in rules.items()}
    )
    for position, task in enumerate(tasks):
        SuiteTaskFactory.create(suite_version=version, task=task, position=position)
    version.status = SuiteVersionStatus.PUBLISHED
    version.published_at = timezone.now()
    version.save()
    return version.suite


def metric(task: Task, key: str) -> TaskMetric:
    return task.metrics.get(key=key)


def assert_field_error(response: Any, field: str, says: str) -> None:
    """A 400 whose machine-readable body names exactly `field`, with `says` in its message."""
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == [field], errors
    assert says in " ".join(errors[field])


def record_run(catalog: Catalog, owner: User, **overrides: Any) -> Run:
    """A self-reported run on catalog.task (accuracy 0.5, loss 1.0) through the service."""
    fields: dict[str, Any] = {
        "method": catalog.external_method,
        "backbone": catalog.backbone,
        "task": catalog.task,
        "config": {},
        "seed": 0,
        "scores": {"accuracy": 0.5, "loss": 1.0},
    }
    fields.update(overrides)
    return run_create_external(owner=owner, **fields)
