"""The run page: scores, curves drawn by a locally served plotly.js, history; privacy."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import RunFactory, UserFactory
from tracking.models import MetricPoint, Run, Visibility
from tracking.services import run_transition

pytestmark = pytest.mark.django_db


def finished_run(**kwargs: object) -> Run:
    run = RunFactory.create(**kwargs)
    run_transition(run_id=run.pk, to="running", reason="started on gpu0")
    run.scores.create(metric=run.task.metrics.get(), value=0.8125)
    now = timezone.now()
    MetricPoint.objects.bulk_create(
        MetricPoint(run=run, key=key, step=step, value=value, recorded_at=now)
        for key, step, value in [("loss", 1, 0.9), ("loss", 2, 0.5), ("learning_rate", 1, 1e-4)]
    )
    run_transition(run_id=run.pk, to="succeeded", reason="result recorded")
    return run


def curves(page: str) -> dict[str, object]:
    match = re.search(r'<script id="curves-data" type="application/json">(.*?)</script>', page)
    assert match, "the curves are embedded as JSON"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def test_the_run_page_shows_scores_curves_and_history(client: Client) -> None:
    run = finished_run()
    page = client.get(f"/runs/{run.uuid}/").content.decode()
    assert "0.8125" in page
    figure = curves(page)
    traces = {t["name"]: (t["x"], t["y"]) for t in figure["data"]}  # type: ignore[attr-defined]
    assert traces == {"loss": ([1, 2], [0.9, 0.5]), "learning_rate": ([1], [0.0001])}
    assert "/static-lib/plotly.min.js" in page
    assert "started on gpu0" in page
    assert "result recorded" in page


def test_plotly_is_served_by_podium(client: Client) -> None:
    response = client.get("/static-lib/plotly.min.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript"
    assert len(response.content) > 1_000_000  # the whole library, not a loader stub
    assert b"newPlot" in response.content
    assert "max-age" in response["Cache-Control"]


def test_a_private_run_is_visible_to_its_owner_only(client: Client) -> None:
    owner = UserFactory.create(username="owner")
    run = finished_run(owner=owner, visibility=Visibility.PRIVATE)
    assert client.get(f"/runs/{run.uuid}/").status_code == 404
    client.force_login(UserFactory.create(username="someone"))
    assert client.get(f"/runs/{run.uuid}/").status_code == 404
    client.force_login(owner)
    assert client.get(f"/runs/{run.uuid}/").status_code == 200


def test_hostile_strings_are_escaped_in_text_and_chart_labels(client: Client) -> None:
    run = finished_run(description="<img src=x onerror=alert(1)>")
    MetricPoint.objects.create(
        run=run,
        key="</script><script>alert(1)</script>",
        step=1,
        value=1.0,
        recorded_at=timezone.now(),
    )
    page = client.get(f"/runs/{run.uuid}/").content.decode()
    assert "<img src=x" not in page
    assert "</script><script>alert(1)" not in page
    names = {t["name"] for t in curves(page)["data"]}  # type: ignore[attr-defined]
    assert "</script><script>alert(1)</script>" in names
