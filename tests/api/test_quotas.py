"""Per-suite submission quotas set by admins, and request throttling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from api.models import IdempotentRequest
from api.services import run_submit
from tests.api.conftest import Catalog, published_suite, record_run
from tests.factories import UserFactory
from tracking.models import Run
from tracking.services import QuotaExceeded, run_transition
from tracking.status import RunStatus

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs/"
JOBS = "/api/v1/jobs/"


def run_body(seed: int, task: str = "bench/sst") -> dict[str, Any]:
    scores = {"accuracy": 0.9, "loss": 0.3} if task == "bench/sst" else {"accuracy": 0.9}
    return {"method": "paper", "backbone": "minilm", "task": task, "seed": seed, "scores": scores}


def job_body(seeds: list[int]) -> dict[str, Any]:
    return {"method": "lora", "backbone": "minilm", "task": "bench/sst", "seeds": seeds}


def test_a_daily_quota_refuses_the_next_submission_with_429_and_when_it_resets(
    client_for: Callable[[User], APIClient], alice: User, bob: User, small_catalog: Catalog
) -> None:
    published_suite(key="core", tasks=[small_catalog.task], daily_submission_limit=2)
    client = client_for(alice)
    for seed in (1, 2):
        assert client.post(RUNS, run_body(seed), format="json").status_code == 201
    refused = client.post(RUNS, run_body(3), format="json")
    assert refused.status_code == 429, refused.content
    body = refused.json()
    message = body["errors"]["quota"][0]
    assert "suite 'core' accepts at most 2 run(s) per user per UTC day" in message
    assert "you have submitted 2 today" in message
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert f"resets at {tomorrow} 00:00 UTC" in message
    assert body["quota"]["period"] == "day"
    assert (body["quota"]["limit"], body["quota"]["used"], body["quota"]["requested"]) == (2, 2, 1)
    assert body["quota"]["resets_at"].startswith(tomorrow)
    assert 0 < int(refused["Retry-After"]) <= 24 * 3600
    assert Run.objects.filter(owner=alice).count() == 2

    # Other users, and tasks outside the suite, are not affected.
    assert client_for(bob).post(RUNS, run_body(1), format="json").status_code == 201
    assert client.post(RUNS, run_body(4, task="bench/cola"), format="json").status_code == 201


def test_yesterdays_runs_do_not_count_against_today(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    published_suite(key="core", tasks=[small_catalog.task], daily_submission_limit=1)
    old = record_run(small_catalog, alice)
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1, hours=1))
    assert client_for(alice).post(RUNS, run_body(1), format="json").status_code == 201


def test_a_job_request_counts_one_submission_per_task_and_seed(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    published_suite(key="core", tasks=[small_catalog.task], daily_submission_limit=3)
    client = client_for(alice)
    assert client.post(JOBS, job_body([1, 2]), format="json").status_code == 201
    refused = client.post(JOBS, job_body([3, 4]), format="json")
    assert refused.status_code == 429
    assert refused.json()["quota"]["requested"] == 2
    assert Run.objects.count() == 2  # nothing of the refused request was written
    assert client.post(JOBS, job_body([3, 3]), format="json").status_code == 201  # one seed


def test_a_total_quota_is_a_403_that_never_resets(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    published_suite(key="core", tasks=[small_catalog.task], total_submission_limit=1)
    old = record_run(small_catalog, alice)
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    refused = client_for(alice).post(RUNS, run_body(1), format="json")
    assert refused.status_code == 403
    body = refused.json()
    assert "at most 1 run(s) per user in all" in body["detail"]
    assert "does not reset" in body["detail"]
    assert body["quota"]["resets_at"] is None
    assert "Retry-After" not in refused


@pytest.mark.parametrize(("counted", "allowed"), [(True, False), (False, True)])
def test_failed_runs_count_as_the_suite_says(
    client_for: Callable[[User], APIClient],
    alice: User,
    small_catalog: Catalog,
    counted: bool,
    allowed: bool,
) -> None:
    published_suite(
        key="core",
        tasks=[small_catalog.task],
        daily_submission_limit=1,
        count_failed_submissions=counted,
    )
    client = client_for(alice)
    (failed,) = client.post(JOBS, job_body([1]), format="json").json()["runs"]
    run_transition(run_id=Run.objects.get(uuid=failed["uuid"]).pk, to=RunStatus.FAILED)
    response = client.post(JOBS, job_body([2]), format="json")
    assert response.status_code == (201 if allowed else 429)
    if not allowed:
        assert "failed runs included" in response.json()["detail"]


def test_a_replayed_submission_is_not_refused_by_the_quota(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    published_suite(key="core", tasks=[small_catalog.task], daily_submission_limit=1)
    client = client_for(alice)
    first = client.post(RUNS, run_body(1), format="json", HTTP_IDEMPOTENCY_KEY="once")
    assert first.status_code == 201
    replay = client.post(RUNS, run_body(1), format="json", HTTP_IDEMPOTENCY_KEY="once")
    assert replay.status_code == 200
    assert replay.json()["uuid"] == first.json()["uuid"]


def test_submissions_have_a_stricter_throttle_than_reads(
    client_for: Callable[[User], APIClient],
    alice: User,
    small_catalog: Catalog,
    settings: Settings,
) -> None:
    settings.PODIUM_THROTTLE_RATES = {"submissions": "2/minute", "user": "100/minute"}
    client = client_for(alice)
    assert client.post(RUNS, run_body(1), format="json").status_code == 201
    assert client.post(JOBS, job_body([1]), format="json").status_code == 201
    throttled = client.post(RUNS, run_body(2), format="json")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert throttled.json()["errors"]["non_field_errors"][0].startswith("Request was throttled")
    assert client.get(RUNS).status_code == 200  # reads are not submissions
    assert Run.objects.count() == 2


def test_anonymous_and_user_request_rates_come_from_settings(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    settings: Settings,
) -> None:
    settings.PODIUM_THROTTLE_RATES = {"anon": "3/minute", "user": "5/minute"}
    assert [api.get("/api/v1/methods/").status_code for _ in range(4)] == [200, 200, 200, 429]
    client = client_for(alice)
    assert [client.get("/api/v1/methods/").status_code for _ in range(6)] == [200] * 5 + [429]


def test_runs_of_unknown_tasks_are_checked_after_creation_and_rolled_back(
    alice: User, small_catalog: Catalog
) -> None:
    # A submission whose task is known only once created (a tracked run, say) is checked
    # on the run itself, in the same transaction.
    published_suite(key="core", tasks=[small_catalog.task], total_submission_limit=1)
    record_run(small_catalog, alice)
    with pytest.raises(QuotaExceeded) as refused:
        run_submit(
            owner=alice,
            idempotency_key="late",
            request_hash="h",
            create=lambda: record_run(small_catalog, alice, seed=9),
        )
    assert (refused.value.suite, refused.value.used, refused.value.requested) == ("core", 1, 1)
    assert Run.objects.filter(owner=alice).count() == 1
    assert not IdempotentRequest.objects.exists()


def test_admins_set_a_suites_submission_rules_in_the_admin(small_catalog: Catalog) -> None:
    suite = published_suite(key="core", tasks=[small_catalog.task])
    browser = Client()
    browser.force_login(UserFactory.create(username="root", is_staff=True, is_superuser=True))
    page = browser.get(f"/admin/catalog/suite/{suite.pk}/change/")
    assert "Submission rules" in page.content.decode()
    response = browser.post(
        f"/admin/catalog/suite/{suite.pk}/change/",
        {
            "key": "core",
            "name": "Core",
            "description": "",
            "requires_approval": "on",
            "daily_submission_limit": "5",
            "total_submission_limit": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    suite.refresh_from_db()
    assert suite.requires_approval
    assert (suite.daily_submission_limit, suite.total_submission_limit) == (5, None)
    assert not suite.count_failed_submissions  # an unchecked box
