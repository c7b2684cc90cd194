"""Tracked runs over the API: start, log points, read curves, finish; validation and
permissions, against the real database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from tests.api.conftest import Catalog, assert_field_error
from tracking.jobs import runs_request
from tracking.models import MetricPoint, Run, Score, Visibility
from tracking.services import RunInputError
from tracking.status import RunStatus
from tracking.tracked import (
    MAX_POINTS_PER_BATCH,
    PointInput,
    metric_points_record,
    tracked_run_finish,
    tracked_run_start,
    tracked_runs_reap,
)

pytestmark = pytest.mark.django_db

TRACK = "/api/v1/runs/track/"


def track_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": "bench/sst",
        "method": "lora",
        "backbone": "minilm",
        "config": {"rank": 8, "learning_rate": 1e-3},
        "seed": 3,
        "tags": ["mine"],
        "description": "from my laptop",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def metrics_url(uuid: str) -> str:
    return f"/api/v1/runs/{uuid}/metrics/"


def finish_url(uuid: str) -> str:
    return f"/api/v1/runs/{uuid}/finish/"


def points(key: str, steps: range, value: Callable[[int], float] = float) -> list[dict[str, Any]]:
    return [{"key": key, "step": step, "value": value(step)} for step in steps]


def started(catalog: Catalog, owner: User, **kwargs: Any) -> Run:
    fields: dict[str, Any] = {
        "owner": owner,
        "method": catalog.method,
        "backbone": catalog.backbone,
        "task": catalog.task,
        "config": {},
        "seed": 0,
    }
    fields.update(kwargs)
    return tracked_run_start(**fields)


def stored(run: Run, key: str = "loss") -> list[tuple[int, float]]:
    return list(
        MetricPoint.objects.filter(run=run, key=key).order_by("step").values_list("step", "value")
    )


# --- POST /runs/track/ -------------------------------------------------------------------


def test_starting_a_tracked_run_makes_a_running_self_reported_run(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    response = client_for(alice).post(TRACK, track_body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    run = Run.objects.get(uuid=body["uuid"])
    assert (run.owner, run.task, run.status) == (alice, small_catalog.task, RunStatus.RUNNING)
    assert run.provenance_tier == "self_reported"
    assert run.started_at is not None
    assert run.finished_at is None
    assert body["task_metrics"] == ["accuracy", "loss"]
    assert body["tags"] == ["mine"]
    assert [(t["from_status"], t["to_status"]) for t in body["transitions"]] == [("", "running")]


def test_a_retried_start_with_its_idempotency_key_returns_the_same_run(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    client = client_for(alice)
    first = client.post(TRACK, track_body(), format="json", HTTP_IDEMPOTENCY_KEY="run-1")
    again = client.post(TRACK, track_body(), format="json", HTTP_IDEMPOTENCY_KEY="run-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["uuid"] == first.json()["uuid"]
    assert again["Idempotent-Replayed"] == "true"
    other = client.post(TRACK, track_body(seed=4), format="json", HTTP_IDEMPOTENCY_KEY="run-1")
    assert other.status_code == 409
    assert Run.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"task": "bench/nope"}, "task", "No task 'bench/nope'"),
        ({"method": "nope"}, "method", "nope"),
        ({"seed": None}, "seed", "required"),
        ({"config": {"seed": 1}}, "config", "must not contain 'seed'"),
        ({"visibility": "hidden"}, "visibility", "not a valid choice"),
    ],
)
def test_a_bad_start_is_a_400_naming_the_field_and_creates_nothing(
    client_for: Callable[[User], APIClient],
    alice: User,
    small_catalog: Catalog,
    overrides: dict[str, Any],
    field: str,
    says: str,
) -> None:
    response = client_for(alice).post(TRACK, track_body(**overrides), format="json")
    assert_field_error(response, field, says)
    assert not Run.objects.exists()


def test_starting_needs_authentication(api: APIClient, small_catalog: Catalog) -> None:
    assert api.post(TRACK, track_body(), format="json").status_code == 401


# --- POST /runs/<uuid>/metrics/ ----------------------------------------------------------


def test_points_are_stored_and_a_resent_point_is_not_stored_twice(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    run = started(small_catalog, alice)
    client = client_for(alice)
    url = metrics_url(str(run.uuid))
    first = client.post(url, {"points": points("loss", range(5), lambda s: 1 / (s + 1))}, "json")
    assert first.status_code == 201, first.content
    assert first.json() == {"accepted": 5, "duplicates": 0}
    # A retry after a lost answer, with two new points.
    again = client.post(url, {"points": points("loss", range(7), lambda s: 1 / (s + 1))}, "json")
    assert again.json() == {"accepted": 2, "duplicates": 5}
    only_repeats = client.post(
        url, {"points": points("loss", range(3), lambda s: 1 / (s + 1))}, "json"
    )
    assert only_repeats.status_code == 200
    assert only_repeats.json() == {"accepted": 0, "duplicates": 3}
    assert stored(run) == [(s, 1 / (s + 1)) for s in range(7)]


def test_another_value_for_a_stored_step_is_a_409_and_stores_nothing_of_the_batch(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    run = started(small_catalog, alice)
    client = client_for(alice)
    url = metrics_url(str(run.uuid))
    client.post(url, {"points": points("loss", range(3))}, "json")
    batch = [*points("loss", range(3, 6)), {"key": "loss", "step": 1, "value": 9.5}]
    response = client.post(url, {"points": batch}, "json")
    assert response.status_code == 409
    body = response.json()
    assert body["conflicts"] == [{"key": "loss", "step": 1, "value": 9.5, "stored": 1.0}]
    assert body["conflict_count"] == 1
    assert "never overwritten" in body["detail"]
    assert stored(run) == [(0, 0.0), (1, 1.0), (2, 2.0)]
    # Two values for one step within a batch conflict as well.
    twice = [{"key": "acc", "step": 1, "value": 0.5}, {"key": "acc", "step": 1, "value": 0.6}]
    assert client.post(url, {"points": twice}, "json").status_code == 409
    assert not stored(run, "acc")


@pytest.mark.parametrize(
    ("point", "field", "says"),
    [
        ({"key": "bad key!", "step": 1, "value": 1.0}, "points.1.key", "not a metric key"),
        ({"key": " lead", "step": 1, "value": 1.0}, "points.1.key", "not a metric key"),
        ({"key": "k" * 101, "step": 1, "value": 1.0}, "points.1.key", "at most 100"),
        ({"key": "loss", "step": 1.5, "value": 1.0}, "points.1.step", "integer"),
        ({"key": "loss", "step": True, "value": 1.0}, "points.1.step", "integer"),
        ({"key": "loss", "step": 1, "value": "1"}, "points.1.value", "number"),
        ({"key": "loss", "step": 1}, "points.1.value", "number"),
        ({"key": "loss", "step": 2**63, "value": 1.0}, "points.1.step", "out of range"),
        ({"key": "loss", "step": 1, "value": 1.0, "timestamp": -5}, "points.1.timestamp", "Unix"),
        ({"key": "loss", "step": 1, "value": 1.0, "colour": "red"}, "points.1.colour", "Not a"),
    ],
)
def test_a_bad_point_is_a_400_naming_it_and_stores_nothing(
    client_for: Callable[[User], APIClient],
    alice: User,
    small_catalog: Catalog,
    point: dict[str, Any],
    field: str,
    says: str,
) -> None:
    run = started(small_catalog, alice)
    batch = [{"key": "loss", "step": 0, "value": 1.0}, point]
    response = client_for(alice).post(metrics_url(str(run.uuid)), {"points": batch}, "json")
    assert_field_error(response, field, says)
    assert not MetricPoint.objects.exists()


def test_more_points_than_a_batch_takes_is_a_400(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    run = started(small_catalog, alice)
    batch = points("loss", range(MAX_POINTS_PER_BATCH + 1))
    response = client_for(alice).post(metrics_url(str(run.uuid)), {"points": batch}, "json")
    assert_field_error(response, "points", f"At most {MAX_POINTS_PER_BATCH}")
    not_a_list = client_for(alice).post(metrics_url(str(run.uuid)), {"points": {}}, "json")
    assert_field_error(not_a_list, "points", "list")


def test_values_must_be_finite(alice: User, small_catalog: Catalog) -> None:
    # JSON cannot carry NaN to the view (DRF parses strictly); the service refuses it too.
    run = started(small_catalog, alice)
    with pytest.raises(RunInputError, match=r"points\.0\.value: inf is not a finite number"):
        metric_points_record(
            run_id=run.pk, user=alice, points=[PointInput(key="loss", step=0, value=float("inf"))]
        )
    assert not MetricPoint.objects.exists()


def test_only_the_owner_of_a_running_run_may_log(
    client_for: Callable[[User], APIClient],
    api: APIClient,
    alice: User,
    bob: User,
    small_catalog: Catalog,
) -> None:
    public = started(small_catalog, alice)
    private = started(small_catalog, alice, visibility=Visibility.PRIVATE)
    batch = {"points": points("loss", range(2))}
    assert api.post(metrics_url(str(public.uuid)), batch, "json").status_code == 401
    assert client_for(bob).post(metrics_url(str(public.uuid)), batch, "json").status_code == 403
    # Another user's private run does not exist as far as bob can tell.
    assert client_for(bob).post(metrics_url(str(private.uuid)), batch, "json").status_code == 404
    assert not MetricPoint.objects.exists()


def test_a_finished_run_refuses_points_with_a_409(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    run = started(small_catalog, alice)
    client = client_for(alice)
    client.post(finish_url(str(run.uuid)), {"status": "failed", "error": "OOM"}, "json")
    response = client.post(metrics_url(str(run.uuid)), {"points": points("loss", range(2))}, "json")
    assert response.status_code == 409
    assert "failed: it takes no more metric points" in response.json()["detail"]
    executed = runs_request(
        owner=alice,
        method=small_catalog.method,
        backbone=small_catalog.backbone,
        config={"rank": 2},
        seeds=[0],
        task=small_catalog.task,
    )[0]
    queued = client.post(metrics_url(str(executed.uuid)), {"points": points("x", range(1))}, "json")
    assert queued.status_code == 409


def test_logging_costs_the_same_queries_for_ten_points_or_ten_thousand(
    client_for: Callable[[User], APIClient],
    alice: User,
    small_catalog: Catalog,
    django_assert_max_num_queries: Any,
) -> None:
    run = started(small_catalog, alice)
    client = client_for(alice)
    url = metrics_url(str(run.uuid))
    client.post(url, {"points": points("warmup", range(1))}, "json")  # token last-used stamp
    with django_assert_max_num_queries(8) as small:
        client.post(url, {"points": points("loss", range(10))}, "json")
    with django_assert_max_num_queries(len(small.captured_queries)):
        big = [
            *points("loss", range(10, 5000)),
            *points("acc", range(5000), lambda s: s / 5000),
            *points("lr", range(10)),
        ]
        assert client.post(url, {"points": big}, "json").json()["accepted"] == 10_000


# --- GET /runs/<uuid>/metrics/ -----------------------------------------------------------


def test_raw_points_come_in_key_and_step_order_in_cursor_pages(
    client_for: Callable[[User], APIClient], api: APIClient, alice: User, small_catalog: Catalog
) -> None:
    run = started(small_catalog, alice)
    client_for(alice).post(
        metrics_url(str(run.uuid)),
        {"points": [*points("loss", range(12)), *points("acc", range(5)), *points("lr", range(3))]},
        "json",
    )
    seen: list[tuple[str, int]] = []
    url: str | None = f"{metrics_url(str(run.uuid))}?key=loss,acc&limit=6"
    pages = 0
    while url:
        page = api.get(url).json()  # anyone may read a public run's curves
        seen += [(p["key"], p["step"]) for p in page["results"]]
        assert all(isinstance(p["timestamp"], float) for p in page["results"])
        url = page["next"]
        pages += 1
    assert pages == 3
    assert seen == [("acc", s) for s in range(5)] + [("loss", s) for s in range(12)]
    bad = api.get(f"{metrics_url(str(run.uuid))}?cursor=garbage")
    assert_field_error(bad, "cursor", "Not a cursor")


def test_a_downsampled_series_keeps_the_ends_and_the_extremes(
    client_for: Callable[[User], APIClient], api: APIClient, alice: User, small_catalog: Catalog
) -> None:
    run = started(small_catalog, alice)
    curve = [1.0 / (s + 1) for s in range(3000)]
    curve[1234] = 50.0  # a spike
    curve[2500] = -3.0  # a dip
    client_for(alice).post(
        metrics_url(str(run.uuid)),
        {"points": [{"key": "loss", "step": s, "value": v} for s, v in enumerate(curve)]},
        "json",
    )
    body = api.get(f"{metrics_url(str(run.uuid))}?max_points=100").json()
    series = body["series"]["loss"]
    assert body["max_points"] == 100
    assert series["total"] == 3000
    assert len(series["steps"]) <= 100
    assert series["steps"][0] == 0
    assert series["steps"][-1] == 2999
    assert series["steps"] == sorted(series["steps"])
    assert {1234, 2500} <= set(series["steps"])
    assert max(series["values"]) == 50.0
    assert min(series["values"]) == -3.0
    assert MetricPoint.objects.filter(run=run).count() == 3000  # storage keeps every point


def test_curves_of_a_private_run_are_its_owners_only(
    client_for: Callable[[User], APIClient], api: APIClient, alice: User, small_catalog: Catalog
) -> None:
    run = started(small_catalog, alice, visibility=Visibility.PRIVATE)
    assert api.get(metrics_url(str(run.uuid))).status_code == 404
    assert client_for(alice).get(metrics_url(str(run.uuid))).status_code == 200


# --- POST /runs/<uuid>/finish/ -----------------------------------------------------------


def test_finishing_records_the_scores_and_repeating_it_changes_nothing(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    run = started(small_catalog, alice)
    client = client_for(alice)
    body = {"status": "succeeded", "scores": {"accuracy": 0.91, "loss": 0.2}}
    response = client.post(finish_url(str(run.uuid)), body, "json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "succeeded"
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.finished_at is not None
    assert dict(Score.objects.filter(run=run).values_list("metric__key", "value")) == {
        "accuracy": 0.91,
        "loss": 0.2,
    }
    again = client.post(finish_url(str(run.uuid)), body, "json")
    assert again.status_code == 200
    assert Score.objects.filter(run=run).count() == 2
    assert [t.to_status for t in run.transitions.order_by("at", "id")] == ["running", "succeeded"]
    other = {"status": "succeeded", "scores": {"accuracy": 0.5, "loss": 0.2}}
    conflict = client.post(finish_url(str(run.uuid)), other, "json")
    assert conflict.status_code == 409
    assert "already finished as succeeded" in conflict.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"status": "succeeded", "scores": {"accuracy": 0.9}}, "scores", "missing loss"),
        (
            {"status": "succeeded", "scores": {"accuracy": 0.9, "loss": 1, "f1": 1}},
            "scores",
            "f1 not a metric",
        ),
        ({"status": "failed", "scores": {"accuracy": 0.9, "loss": 1}}, "scores", "no scores"),
        ({"status": "cancelled"}, "status", "not a valid choice"),
        (
            {"status": "succeeded", "scores": {"accuracy": "x", "loss": 1}},
            "scores.accuracy",
            "number",
        ),
    ],
)
def test_a_bad_finish_is_a_400_and_leaves_the_run_running(
    client_for: Callable[[User], APIClient],
    alice: User,
    small_catalog: Catalog,
    body: dict[str, Any],
    field: str,
    says: str,
) -> None:
    run = started(small_catalog, alice)
    assert_field_error(client_for(alice).post(finish_url(str(run.uuid)), body, "json"), field, says)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert not Score.objects.exists()


def test_a_failed_finish_keeps_its_error_and_only_the_owner_finishes(
    client_for: Callable[[User], APIClient], alice: User, bob: User, small_catalog: Catalog
) -> None:
    run = started(small_catalog, alice)
    body = {"status": "failed", "error": "CUDA out of memory"}
    assert client_for(bob).post(finish_url(str(run.uuid)), body, "json").status_code == 403
    response = client_for(alice).post(finish_url(str(run.uuid)), body, "json")
    assert response.status_code == 200
    run.refresh_from_db()
    assert (run.status, run.status_reason) == (RunStatus.FAILED, "CUDA out of memory")


def test_a_run_cancelled_while_tracked_ends_cancelled_at_its_finish(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    run = started(small_catalog, alice)
    client = client_for(alice)
    assert client.post(f"/api/v1/runs/{run.uuid}/cancel/").status_code == 200
    response = client.post(finish_url(str(run.uuid)), {"status": "succeeded"}, "json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


# --- GET /runs/<uuid>/progress/ ----------------------------------------------------------


def test_progress_shows_a_queued_jobs_position_and_its_log_to_its_owner_only(
    client_for: Callable[[User], APIClient], api: APIClient, alice: User, small_catalog: Catalog
) -> None:
    _, second = runs_request(
        owner=alice,
        method=small_catalog.method,
        backbone=small_catalog.backbone,
        config={"rank": 2},
        seeds=[0, 1],
        task=small_catalog.task,
    )
    second.job.log_tail = "loading the model"
    second.job.save()
    mine = client_for(alice).get(f"/api/v1/runs/{second.uuid}/progress/").json()
    assert (mine["status"], mine["executed"], mine["position"]) == ("queued", True, 2)
    assert mine["log_tail"] == "loading the model"
    anyone = api.get(f"/api/v1/runs/{second.uuid}/progress/").json()
    assert anyone["position"] == 2
    assert anyone["log_tail"] is None
    tracked = started(small_catalog, alice)
    body = api.get(f"/api/v1/runs/{tracked.uuid}/progress/").json()
    assert (body["status"], body["executed"], body["position"]) == ("running", False, None)


def test_the_tracked_run_endpoints_are_described_in_the_schema(tmp_path: Any) -> None:
    import yaml
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(out))
    paths = yaml.safe_load(out.read_text())["paths"]
    track = paths["/api/v1/runs/track/"]["post"]
    assert {"200", "201", "400", "401", "409"} <= set(track["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in track["parameters"])
    metrics = paths["/api/v1/runs/{uuid}/metrics/"]
    assert {"200", "201", "400", "403", "409"} <= set(metrics["post"]["responses"])
    assert {p["name"] for p in metrics["get"]["parameters"]} >= {"key", "cursor", "max_points"}
    assert {"200", "400", "409"} <= set(paths["/api/v1/runs/{uuid}/finish/"]["post"]["responses"])
    assert "200" in paths["/api/v1/runs/{uuid}/progress/"]["get"]["responses"]


# --- the reaper ----------------------------------------------------------------------------


def test_a_tracked_run_whose_script_went_silent_is_failed_with_the_reason(
    small_catalog: Catalog, alice: User, settings: Any
) -> None:
    settings.PODIUM_TRACKED_RUN_TIMEOUT_S = 3600
    silent = started(small_catalog, alice)
    logging = started(small_catalog, alice, seed=1)
    finished = started(small_catalog, alice, seed=2)
    Run.objects.filter(pk__in=[silent.pk, logging.pk, finished.pk]).update(
        started_at=timezone.now() - timedelta(hours=3)
    )
    metric_points_record(
        run_id=logging.pk, user=alice, points=[PointInput(key="loss", step=1, value=0.5)]
    )
    tracked_run_finish(run_id=finished.pk, user=alice, status=RunStatus.FAILED, error="diverged")

    assert tracked_runs_reap() == [silent.pk]

    silent.refresh_from_db()
    assert silent.status == RunStatus.FAILED
    assert "no metric point or finish from its script for 1 h" in silent.status_reason
    assert Run.objects.get(pk=logging.pk).status == RunStatus.RUNNING
    assert tracked_runs_reap() == []


def test_the_reaper_leaves_runs_executed_by_podium_to_the_job_reaper(
    small_catalog: Catalog, alice: User, settings: Any
) -> None:
    settings.PODIUM_TRACKED_RUN_TIMEOUT_S = 60
    [run] = runs_request(
        owner=alice,
        method=small_catalog.method,
        backbone=small_catalog.backbone,
        config={},
        seeds=[0],
        task=small_catalog.task,
    )
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, started_at=timezone.now() - timedelta(hours=3)
    )
    assert tracked_runs_reap() == []
