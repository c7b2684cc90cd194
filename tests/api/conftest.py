"""Fixtures for API tests: clients authenticated by session or by API token, and a small
catalog built with factories (tests that score predictions load the real one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from api.services import token_create
from catalog.models import Backbone, Method, Task, TaskMetric
from tests.factories import (
    BackboneFactory,
    BenchmarkFactory,
    MethodFactory,
    TaskFactory,
    TaskMetricFactory,
    UserFactory,
)


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


def metric(task: Task, key: str) -> TaskMetric:
    return task.metrics.get(key=key)


def assert_field_error(response: Any, field: str, says: str) -> None:
    """A 400 whose machine-readable body names exactly `field`, with `says` in its message."""
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == [field], errors
    assert says in " ".join(errors[field])
