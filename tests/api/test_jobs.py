"""Requesting jobs, cancelling runs, and the queue without other users' private details."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.models import SuiteVersionStatus
from tests.api.conftest import Catalog, assert_field_error
from tests.factories import SuiteTaskFactory, SuiteVersionFactory
from tracking.jobs import runs_request
from tracking.models import Job, Run, Visibility
from tracking.services import run_create_external, run_transition
from tracking.status import RunStatus

pytestmark = pytest.mark.django_db

JOBS = "/api/v1/jobs/"


def job_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "method": "lora",
        "backbone": "minilm",
        "task": "bench/sst",
        "config": {"rank": 8},
        "seeds": [1, 2],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def queued_run(catalog: Catalog, owner: User, visibility: str = Visibility.PUBLIC) -> Run:
    (run,) = runs_request(
        owner=owner,
        method=catalog.method,
        backbone=catalog.backbone,
        config={"rank": 4},
        seeds=[0],
        task=catalog.task,
        visibility=visibility,
    )
    return run


# --- POST /jobs/ -------------------------------------------------------------------------


def test_a_job_request_queues_one_run_per_seed(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    response = client_for(alice).post(JOBS, job_body(), format="json")
    assert response.status_code == 201, response.content
    runs = response.json()["runs"]
    assert sorted(r["seed"] for r in runs) == [1, 2]
    assert {r["status"] for r in runs} == {"queued"}
    assert {r["provenance_tier"] for r in runs} == {"executed"}
    stored = Run.objects.filter(uuid__in=[r["uuid"] for r in runs], owner=alice)
    assert stored.count() == 2
    assert Job.objects.filter(run__in=stored).count() == 2


def publish_suite(catalog: Catalog) -> None:
    version = SuiteVersionFactory.create(suite__key="core")
    for task in (catalog.task, catalog.other_task):
        SuiteTaskFactory.create(suite_version=version, task=task)
    version.status = SuiteVersionStatus.PUBLISHED
    version.published_at = timezone.now()
    version.save()


def test_a_suite_request_queues_every_task_of_its_latest_version(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    publish_suite(small_catalog)
    response = client_for(alice).post(
        JOBS, job_body(task=None, suite="core", seeds=[0]), format="json"
    )
    assert response.status_code == 201, response.content
    assert sorted(r["task"]["key"] for r in response.json()["runs"]) == ["cola", "sst"]


def test_a_job_request_names_a_task_or_a_suite_not_both(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    publish_suite(small_catalog)
    response = client_for(alice).post(JOBS, job_body(suite="core"), format="json")
    assert response.status_code == 400
    assert response.json() == {"errors": {"task": ["Give exactly one of task or suite."]}}
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"method": "paper"}, "method", "only records external results"),
        ({"config": {"rank": 0}}, "config.rank", "minimum"),
        ({"config": {"seed": 1}}, "config", "must not contain 'seed'"),
        ({"seeds": []}, "seeds", "at least 1"),
        ({"seeds": ["a"]}, "seeds.0", "integer"),
        ({"task": None}, "task", "exactly one of task or suite"),
        ({"task": None, "suite": "nope"}, "suite", "No published suite 'nope'"),
        ({"task": "bench/none"}, "task", "No task"),
    ],
)
def test_a_bad_job_request_is_a_400_naming_the_field(
    client_for: Callable[[User], APIClient],
    alice: User,
    small_catalog: Catalog,
    overrides: dict[str, Any],
    field: str,
    says: str,
) -> None:
    assert_field_error(
        client_for(alice).post(JOBS, job_body(**overrides), format="json"), field, says
    )
    assert not Run.objects.exists()


def test_requesting_a_job_needs_authentication(api: APIClient, small_catalog: Catalog) -> None:
    assert api.post(JOBS, job_body(), format="json").status_code == 401
    assert not Run.objects.exists()


# --- POST /runs/<uuid>/cancel/ ---------------------------------------------------------


def cancel_url(run: Run) -> str:
    return f"/api/v1/runs/{run.uuid}/cancel/"


def test_the_owner_cancels_a_queued_run_at_once(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    run = queued_run(small_catalog, alice)
    response = client_for(alice).post(cancel_url(run))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert [t["to_status"] for t in response.json()["transitions"]] == ["queued", "cancelled"]


def test_a_running_run_is_asked_to_stop(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    run = queued_run(small_catalog, alice)
    run_transition(run_id=run.pk, to=RunStatus.RUNNING, reason="started")
    response = client_for(alice).post(cancel_url(run))
    assert response.status_code == 200
    assert response.json()["status"] == "cancelling"


def test_only_the_owner_may_cancel(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    bob: User,
    small_catalog: Catalog,
) -> None:
    public = queued_run(small_catalog, alice)
    private = queued_run(small_catalog, alice, visibility=Visibility.PRIVATE)
    assert api.post(cancel_url(public)).status_code == 401
    assert client_for(bob).post(cancel_url(public)).status_code == 403
    assert client_for(bob).post(cancel_url(private)).status_code == 404
    assert set(Run.objects.values_list("status", flat=True)) == {RunStatus.QUEUED}


def test_a_finished_run_cannot_be_cancelled(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    run = run_create_external(
        owner=alice,
        method=small_catalog.external_method,
        backbone=small_catalog.backbone,
        task=small_catalog.other_task,
        config={},
        seed=0,
        scores={"accuracy": 0.5},
    )
    response = client_for(alice).post(cancel_url(run))
    assert response.status_code == 409
    assert "succeeded is final" in response.json()["detail"]


# --- GET /jobs/queue/ --------------------------------------------------------------------


def test_the_queue_hides_other_users_private_runs(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    bob: User,
    small_catalog: Catalog,
) -> None:
    secret = queued_run(small_catalog, alice, visibility=Visibility.PRIVATE)
    public = queued_run(small_catalog, bob)
    running = queued_run(small_catalog, alice, visibility=Visibility.PRIVATE)
    run_transition(run_id=running.pk, to=RunStatus.RUNNING, reason="started on gpu-1")
    Job.objects.filter(run=running).update(
        worker="gpu-1", heartbeat_at=timezone.now(), progress={"step": 3, "total_steps": 10}
    )

    response = api.get("/api/v1/jobs/queue/")
    assert response.status_code == 200
    body = response.json()
    text = json.dumps(body)
    assert str(secret.uuid) not in text
    assert str(running.uuid) not in text
    assert "alice" not in text
    first, second = body["queued"]
    assert first["position"] == 1
    assert first["redacted"] is True
    assert first["method"] == "lora"
    assert first["task"] == "bench/sst"
    assert first["run"] is None
    assert second["position"] == 2
    assert second["redacted"] is False
    assert second["run"] == str(public.uuid)
    assert second["owner"] == "bob"
    (hidden_running,) = body["running"]
    assert hidden_running["redacted"] is True
    assert hidden_running["worker"] is None
    assert hidden_running["progress"] is None

    mine = client_for(alice).get("/api/v1/jobs/queue/").json()
    assert mine["queued"][0]["run"] == str(secret.uuid)
    (own_running,) = mine["running"]
    assert own_running["worker"] == "gpu-1"
    assert own_running["progress"] == {"step": 3, "total_steps": 10}
    assert own_running["heartbeat_at"] is not None
    assert mine["active_workers"] == 1


# --- Idempotency-Key on POST /jobs/ -----------------------------------------------------


def test_a_retried_job_request_with_the_same_key_queues_its_runs_once(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    client = client_for(alice)
    first = client.post(JOBS, job_body(), format="json", HTTP_IDEMPOTENCY_KEY="sweep-1")
    assert first.status_code == 201, first.content
    again = client.post(JOBS, job_body(), format="json", HTTP_IDEMPOTENCY_KEY="sweep-1")
    assert again.status_code == 200, again.content
    assert again["Idempotent-Replayed"] == "true"
    assert [r["uuid"] for r in again.json()["runs"]] == [r["uuid"] for r in first.json()["runs"]]
    assert Run.objects.filter(owner=alice).count() == 2
    assert Job.objects.count() == 2
    # Without the key, the same body is a new request.
    assert client.post(JOBS, job_body(), format="json").status_code == 201
    assert Run.objects.filter(owner=alice).count() == 4


def test_a_job_key_reused_with_another_body_is_a_409_and_queues_nothing(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    client = client_for(alice)
    assert client.post(JOBS, job_body(), format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    response = client.post(JOBS, job_body(seeds=[3]), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 409
    body = response.json()
    assert "different request body" in body["detail"]
    assert list(body["errors"]) == ["Idempotency-Key"]
    assert sorted(Run.objects.values_list("seed", flat=True)) == [1, 2]


def test_a_key_used_for_a_run_is_a_conflict_on_jobs(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    client = client_for(alice)
    run = {
        "method": "paper",
        "backbone": "minilm",
        "task": "bench/cola",
        "seed": 0,
        "scores": {"accuracy": 0.5},
    }
    assert (
        client.post("/api/v1/runs/", run, format="json", HTTP_IDEMPOTENCY_KEY="x").status_code
        == 201
    )
    response = client.post(JOBS, job_body(), format="json", HTTP_IDEMPOTENCY_KEY="x")
    assert response.status_code == 409
    assert "/runs/" in response.json()["detail"]
    assert not Job.objects.exists()


def test_a_refused_job_request_does_not_use_up_its_key(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    client = client_for(alice)
    bad = client.post(
        JOBS, job_body(config={"rank": 0}), format="json", HTTP_IDEMPOTENCY_KEY="retry"
    )
    assert bad.status_code == 400
    good = client.post(JOBS, job_body(), format="json", HTTP_IDEMPOTENCY_KEY="retry")
    assert good.status_code == 201
    assert Run.objects.count() == 2
