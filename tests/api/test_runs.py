"""Recording external runs, idempotent retries, listing and reading runs with visibility."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import profile_update
from api.models import IdempotentRequest
from tests.api.conftest import Catalog, assert_field_error, published_suite
from tests.factories import MethodFactory
from tracking.models import Run, Visibility
from tracking.services import run_create_external

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs/"


def run_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "method": "paper",
        "backbone": "minilm",
        "task": "bench/sst",
        "config": {"learning_rate": 2e-5},
        "seed": 7,
        "scores": {"accuracy": 0.91, "loss": 0.3},
        "tags": ["baseline", "Paper"],
        "description": "from the paper",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def record(
    catalog: Catalog, owner: User, *, visibility: str = Visibility.PUBLIC, **kwargs: Any
) -> Run:
    fields: dict[str, Any] = {
        "method": catalog.external_method,
        "backbone": catalog.backbone,
        "task": catalog.task,
        "config": {},
        "seed": 0,
        "scores": {"accuracy": 0.5, "loss": 1.0},
        "visibility": visibility,
    }
    fields.update(kwargs)
    return run_create_external(owner=owner, **fields)


# --- POST /runs/ -------------------------------------------------------------------------


def test_an_external_run_is_recorded_with_its_scores(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    response = client_for(alice).post(RUNS, run_body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    run = Run.objects.get(uuid=body["uuid"])
    assert run.owner == alice
    assert run.task == small_catalog.task
    assert run.status == "succeeded"
    assert run.provenance_tier == "self_reported"
    assert body["status"] == "succeeded"
    assert body["owner"] == "alice"
    assert body["task"] == {"benchmark": "bench", "key": "sst", "version": 1}
    assert sorted(body["tags"]) == ["baseline", "paper"]
    scores = {s["metric"]: (s["value"], s["higher_is_better"]) for s in body["scores"]}
    assert scores == {"accuracy": (0.91, True), "loss": (0.3, False)}
    assert [t["to_status"] for t in body["transitions"]] == ["succeeded"]


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"scores": {"accuracy": 0.9}}, "scores", "missing loss"),
        ({"scores": {"accuracy": 0.9, "loss": 1, "f1": 2}}, "scores", "f1 not a metric"),
        ({"scores": {"accuracy": "high", "loss": 1}}, "scores.accuracy", "valid number"),
        ({"method": "nope"}, "method", "nope"),
        ({"backbone": None}, "backbone", "required"),
        ({"task": "sst"}, "task", "'benchmark/key'"),
        ({"task": "bench/nope"}, "task", "No task 'bench/nope'"),
        ({"config": {"seed": 1}}, "config", "must not contain 'seed'"),
        ({"config": [1, 2]}, "config", "JSON object"),
        ({"seed": "x"}, "seed", "integer"),
        ({"visibility": "secret"}, "visibility", "not a valid choice"),
        ({"tags": ["not a slug"]}, "tags.0", "letters"),
        ({"scores": None}, "scores", "Give scores, or predictions"),
        ({"predictions": "{}", "split": "validation"}, "predictions", "not both"),
        ({"scores": None, "predictions": "{}"}, "split", "Required with predictions"),
        ({"split": "validation"}, "split", "Only given with predictions"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    client_for: Callable[[User], APIClient],
    alice: User,
    small_catalog: Catalog,
    overrides: dict[str, Any],
    field: str,
    says: str,
) -> None:
    assert_field_error(
        client_for(alice).post(RUNS, run_body(**overrides), format="json"), field, says
    )
    assert not Run.objects.exists()


def test_recording_a_run_needs_authentication(api: APIClient, small_catalog: Catalog) -> None:
    assert api.post(RUNS, run_body(), format="json").status_code == 401
    assert not Run.objects.exists()


# --- Idempotency -------------------------------------------------------------------------


def test_a_retried_post_with_the_same_key_returns_the_first_run(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    client = client_for(alice)
    first = client.post(RUNS, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="submit-1")
    again = client.post(RUNS, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="submit-1")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["uuid"] == first.json()["uuid"]
    assert Run.objects.count() == 1
    # Key order in the body does not make it a different request.
    reordered = dict(reversed(list(run_body().items())))
    replay = client.post(RUNS, reordered, format="json", HTTP_IDEMPOTENCY_KEY="submit-1")
    assert replay.status_code == 200
    assert Run.objects.count() == 1


def test_the_same_key_with_a_different_body_is_a_409(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    client = client_for(alice)
    assert client.post(RUNS, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    response = client.post(RUNS, run_body(seed=8), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 409
    assert "different request body" in response.json()["detail"]
    assert "different request body" in response.json()["errors"]["Idempotency-Key"][0]
    assert Run.objects.count() == 1


def test_keys_are_per_user_and_without_a_key_every_post_creates(
    client_for: Callable[[User], APIClient], alice: User, bob: User, small_catalog: Catalog
) -> None:
    for user in (alice, bob):
        response = client_for(user).post(
            RUNS, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="same"
        )
        assert response.status_code == 201
    client = client_for(alice)
    assert client.post(RUNS, run_body(), format="json").status_code == 201
    assert client.post(RUNS, run_body(), format="json").status_code == 201
    assert Run.objects.filter(owner=alice).count() == 3
    assert Run.objects.filter(owner=bob).count() == 1


def test_a_refused_request_does_not_use_up_its_key(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    client = client_for(alice)
    bad = client.post(
        RUNS, run_body(scores={"accuracy": 0.9}), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert bad.status_code == 400
    assert not IdempotentRequest.objects.exists()
    good = client.post(RUNS, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert good.status_code == 201
    (run,) = IdempotentRequest.objects.get().runs.all()
    assert str(run.uuid) == good.json()["uuid"]


def test_an_overlong_idempotency_key_is_refused(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    response = client_for(alice).post(
        RUNS, run_body(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 256
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["Idempotency-Key"]
    assert not Run.objects.exists()


# --- GET /runs/ and /runs/<uuid>/ --------------------------------------------------------


def uuids(response: Any) -> set[str]:
    assert response.status_code == 200, response.content
    return {r["uuid"] for r in response.json()["results"]}


def test_private_runs_are_listed_only_for_their_owner(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    bob: User,
    small_catalog: Catalog,
) -> None:
    secret = str(record(small_catalog, alice, visibility=Visibility.PRIVATE).uuid)
    public = str(record(small_catalog, bob).uuid)
    assert uuids(api.get(RUNS)) == {public}
    assert uuids(client_for(bob).get(RUNS)) == {public}
    assert uuids(client_for(alice).get(RUNS)) == {secret, public}
    assert uuids(client_for(bob).get(RUNS, {"owner": "alice"})) == set()


def test_a_private_run_is_404_for_everyone_but_its_owner(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    bob: User,
    small_catalog: Catalog,
) -> None:
    secret = record(small_catalog, alice, visibility=Visibility.PRIVATE)
    url = f"{RUNS}{secret.uuid}/"
    assert api.get(url).status_code == 404
    assert client_for(bob).get(url).status_code == 404
    response = client_for(alice).get(url)
    assert response.status_code == 200
    assert response.json()["visibility"] == "private"


def test_a_run_shows_scores_with_direction_status_tier_and_history(
    api: APIClient, alice: User, small_catalog: Catalog
) -> None:
    run = record(small_catalog, alice, tags=["x"])
    response = api.get(f"{RUNS}{run.uuid}/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["provenance_tier"] == "self_reported"
    assert {s["metric"]: s["higher_is_better"] for s in body["scores"]} == {
        "accuracy": True,
        "loss": False,
    }
    (transition,) = body["transitions"]
    assert transition["from_status"] == ""
    assert transition["to_status"] == "succeeded"
    assert transition["reason"] == "external run recorded"
    assert api.get(f"{RUNS}00000000-0000-0000-0000-000000000000/").status_code == 404


def test_runs_are_filtered_by_comma_separated_lists(
    api: APIClient, alice: User, bob: User, small_catalog: Catalog
) -> None:
    c = small_catalog
    a = str(record(c, alice, tags=["baseline", "paper"]).uuid)
    b = str(record(c, bob, task=c.other_task, scores={"accuracy": 0.4}, tags=["paper"]).uuid)
    e = str(record(c, bob, method=c.method, seed=3).uuid)
    assert uuids(api.get(RUNS, {"task": "bench/cola"})) == {b}
    assert uuids(api.get(RUNS, {"task": "bench/cola,bench/sst"})) == {a, b, e}
    assert uuids(api.get(RUNS, {"benchmark": "bench"})) == {a, b, e}
    assert uuids(api.get(RUNS, {"benchmark": "other"})) == set()
    assert uuids(api.get(RUNS, {"method": "lora"})) == {e}
    assert uuids(api.get(RUNS, {"method": "lora, paper"})) == {a, b, e}
    assert uuids(api.get(RUNS, {"backbone": "minilm"})) == {a, b, e}
    assert uuids(api.get(RUNS, {"owner": "bob"})) == {b, e}
    assert uuids(api.get(RUNS, {"status": "succeeded"})) == {a, b, e}
    assert uuids(api.get(RUNS, {"status": "queued,failed"})) == set()
    # A run with both tags is listed once.
    response = api.get(RUNS, {"tag": "paper,baseline"})
    assert response.json()["count"] == 2
    assert uuids(response) == {a, b}
    assert uuids(api.get(RUNS, {"tag": "paper", "owner": "alice"})) == {a}


def test_runs_are_ordered_and_paginated(
    api: APIClient, alice: User, small_catalog: Catalog
) -> None:
    for seed in (5, 1, 3):
        record(small_catalog, alice, seed=seed)
    ordered = api.get(RUNS, {"ordering": "seed"}).json()["results"]
    assert [r["seed"] for r in ordered] == [1, 3, 5]
    newest_first = api.get(RUNS).json()["results"]
    assert [r["seed"] for r in newest_first] == [3, 1, 5]
    page = api.get(RUNS, {"ordering": "-seed", "limit": "2", "offset": "1"}).json()
    assert page["count"] == 3
    assert [r["seed"] for r in page["results"]] == [3, 1]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "done"}, "status"),
        ({"ordering": "owner"}, "ordering"),
        ({"task": "sst"}, "task"),
    ],
)
def test_bad_filters_are_a_400_naming_the_parameter(
    api: APIClient, query: dict[str, str], field: str
) -> None:
    response = api.get(RUNS, query)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_runs_are_filtered_by_suite_date_range_and_search(
    api: APIClient, alice: User, bob: User, small_catalog: Catalog
) -> None:
    c = small_catalog
    published_suite(key="core", tasks=[c.other_task])
    old = record(c, alice, description="Baseline from the LoRA paper", tags=["repro"])
    new = record(c, bob, task=c.other_task, scores={"accuracy": 0.4})
    dora = record(c, bob, method=MethodFactory.create(key="dora", name="DoRA"), seed=2)
    Run.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    a, b, d = str(old.uuid), str(new.uuid), str(dora.uuid)

    assert uuids(api.get(RUNS, {"suite": "core"})) == {b}
    assert uuids(api.get(RUNS, {"suite": "core,nope"})) == {b}
    assert uuids(api.get(RUNS, {"suite": "nope"})) == set()
    week_ago = (timezone.now() - timedelta(days=7)).isoformat()
    assert uuids(api.get(RUNS, {"created_after": week_ago})) == {b, d}
    assert uuids(api.get(RUNS, {"created_before": week_ago})) == {a}
    day = (timezone.now() - timedelta(days=10)).date().isoformat()
    assert uuids(api.get(RUNS, {"created_after": day, "created_before": week_ago})) == {a}
    assert uuids(api.get(RUNS, {"search": "lora"})) == {a}  # in the description
    assert uuids(api.get(RUNS, {"search": "DORA"})) == {d}  # the method's name, any case
    assert uuids(api.get(RUNS, {"search": "repro baseline"})) == {a}  # a tag and a word
    assert uuids(api.get(RUNS, {"search": "minilm"})) == {a, b, d}  # the backbone
    assert uuids(api.get(RUNS, {"search": "repro dora"})) == set()  # every word must match


def test_runs_are_ordered_by_whitelisted_fields(
    api: APIClient, alice: User, small_catalog: Catalog
) -> None:
    c = small_catalog
    record(c, alice, method=MethodFactory.create(key="zeta"))
    record(c, alice, method=MethodFactory.create(key="alpha"))
    record(c, alice, task=c.other_task, scores={"accuracy": 0.1})
    by_method = api.get(RUNS, {"ordering": "method"}).json()["results"]
    assert [r["method"] for r in by_method] == ["alpha", "paper", "zeta"]
    by_method_desc = api.get(RUNS, {"ordering": "-method"}).json()["results"]
    assert [r["method"] for r in by_method_desc] == ["zeta", "paper", "alpha"]
    by_task = api.get(RUNS, {"ordering": "task"}).json()["results"]
    assert by_task[0]["task"]["key"] == "cola"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "2025-01-02", "created_before": "2025-01-01"}, "created_before"),
        ({"ordering": "-description"}, "ordering"),
        ({"search": "x" * 201}, "search"),
    ],
)
def test_bad_date_search_and_ordering_parameters_are_400s(
    api: APIClient, query: dict[str, str], field: str
) -> None:
    response = api.get(RUNS, query)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_runs_show_their_owners_display_name(
    api: APIClient, alice: User, bob: User, small_catalog: Catalog
) -> None:
    profile_update(user=alice, display_name="Alice Liddell")
    record(small_catalog, alice)
    record(small_catalog, bob)
    rows = api.get(RUNS, {"ordering": "created_at"}).json()["results"]
    assert [(r["owner"], r["owner_name"]) for r in rows] == [
        ("alice", "Alice Liddell"),
        ("bob", "bob"),
    ]
