"""The catalog endpoints: public, read-only, current task versions, published suites only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import SuiteVersionStatus
from tests.api.conftest import Catalog
from tests.factories import (
    BackboneFactory,
    SuiteFactory,
    SuiteTaskFactory,
    SuiteVersionFactory,
    TaskFactory,
)

pytestmark = pytest.mark.django_db


def test_benchmarks_are_listed_with_their_current_task_count(
    api: APIClient, small_catalog: Catalog
) -> None:
    TaskFactory.create(
        benchmark=small_catalog.task.benchmark, key="sst", version=0, is_current=False
    )
    response = api.get("/api/v1/benchmarks/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"][0]["key"] == "bench"
    assert body["results"][0]["task_count"] == 2


def test_a_benchmark_shows_its_current_tasks_with_metric_directions(
    api: APIClient, small_catalog: Catalog
) -> None:
    TaskFactory.create(
        benchmark=small_catalog.task.benchmark, key="sst", version=0, is_current=False
    )
    response = api.get("/api/v1/benchmarks/bench/")
    assert response.status_code == 200
    tasks = {t["key"]: t for t in response.json()["tasks"]}
    assert set(tasks) == {"sst", "cola"}
    assert tasks["sst"]["version"] == 1
    assert tasks["sst"]["primary_metric"] == "accuracy"
    directions = {m["key"]: m["higher_is_better"] for m in tasks["sst"]["metrics"]}
    assert directions == {"accuracy": True, "loss": False}


def test_an_unknown_benchmark_is_404(api: APIClient) -> None:
    assert api.get("/api/v1/benchmarks/nope/").status_code == 404


def test_the_catalog_is_read_only(api: APIClient, alice: User) -> None:
    api.force_login(alice)
    assert api.post("/api/v1/benchmarks/", {"key": "x"}, format="json").status_code == 405
    assert api.post("/api/v1/methods/", {"key": "x"}, format="json").status_code == 405


def test_a_suite_shows_its_latest_published_version_with_weights(
    api: APIClient, small_catalog: Catalog
) -> None:
    suite = SuiteFactory.create(key="core", name="Core")
    old = SuiteVersionFactory.create(suite=suite, number=1)
    SuiteTaskFactory.create(suite_version=old, task=small_catalog.task, weight=1.0)
    current = SuiteVersionFactory.create(suite=suite, number=2)
    SuiteTaskFactory.create(suite_version=current, task=small_catalog.task, weight=2.0, position=0)
    SuiteTaskFactory.create(
        suite_version=current, task=small_catalog.other_task, weight=0.5, position=1
    )
    draft = SuiteVersionFactory.create(suite=suite, number=3)
    SuiteTaskFactory.create(suite_version=draft, task=small_catalog.other_task)
    for version in (old, current):
        version.status = SuiteVersionStatus.PUBLISHED
        version.published_at = timezone.now()
        version.save()

    listed = api.get("/api/v1/suites/").json()["results"]
    assert [v["number"] for v in listed[0]["published_versions"]] == [2, 1]

    response = api.get("/api/v1/suites/core/")
    assert response.status_code == 200
    latest = response.json()["latest_version"]
    assert latest["number"] == 2
    tasks = [(t["benchmark"], t["task"], t["weight"]) for t in latest["tasks"]]
    assert tasks == [("bench", "sst", 2.0), ("bench", "cola", 0.5)]
    assert {m["key"]: m["higher_is_better"] for m in latest["tasks"][0]["metrics"]} == {
        "accuracy": True,
        "loss": False,
    }


def test_a_suite_without_a_published_version_has_none(api: APIClient) -> None:
    SuiteVersionFactory.create(suite=SuiteFactory.create(key="wip"))
    response = api.get("/api/v1/suites/wip/")
    assert response.status_code == 200
    assert response.json()["latest_version"] is None
    assert api.get("/api/v1/suites/none/").status_code == 404


def test_methods_show_their_schema_and_whether_podium_runs_them(
    api: APIClient, small_catalog: Catalog
) -> None:
    methods = {m["key"]: m for m in api.get("/api/v1/methods/").json()["results"]}
    assert methods["lora"]["executable"] is True
    assert methods["paper"]["executable"] is False
    assert methods["lora"]["hyperparameter_schema"]["properties"]["rank"]["minimum"] == 1


def test_backbones_are_listed_without_server_paths(api: APIClient) -> None:
    BackboneFactory.create(key="bert", hub_id="google/bert", revision="abc")
    (backbone,) = api.get("/api/v1/backbones/").json()["results"]
    assert backbone["key"] == "bert"
    assert backbone["hub_id"] == "google/bert"
    assert backbone["revision"] == "abc"
    assert "local_path" not in backbone
