"""Comparing runs: overlaid curves, a config diff and scores, for runs the viewer may see."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from tests.dashboard.pages import embedded_json
from tests.factories import RunFactory, UserFactory
from tracking.models import MetricPoint, Run, Visibility
from tracking.services import run_transition

pytestmark = pytest.mark.django_db


def trained(*, config: dict[str, object], losses: list[float], **kwargs: object) -> Run:
    run = RunFactory.create(config=config, **kwargs)
    run_transition(run_id=run.pk, to="running", reason="started")
    MetricPoint.objects.bulk_create(
        MetricPoint(run=run, key="loss", step=step, value=v, recorded_at=timezone.now())
        for step, v in enumerate(losses, start=1)
    )
    run.scores.create(metric=run.task.metrics.get(), value=1 - losses[-1])
    run_transition(run_id=run.pk, to="succeeded", reason="done")
    return run


def test_two_runs_side_by_side(client: Client) -> None:
    a = trained(config={"learning_rate": 1e-4, "optim": {"name": "adamw"}}, losses=[0.9, 0.4])
    b = trained(config={"learning_rate": 3e-4, "optim": {"name": "adamw"}}, losses=[0.8, 0.3])
    page = client.get(f"/compare/?runs={a.uuid},{b.uuid}").content.decode()
    figure = embedded_json(page, "compare-curve-1-data")
    lines = [(t["x"], t["y"]) for t in figure["data"]]
    assert lines == [([1, 2], [0.9, 0.4]), ([1, 2], [0.8, 0.3])]
    assert '<tr class="differs"><th scope="row">config.learning_rate' in page
    assert '<tr><th scope="row">config.optim.name' in page  # equal: not highlighted
    assert "0.6000" in page
    assert "0.7000" in page
    # Repeated parameters work as well as a comma-separated list.
    again = client.get(f"/compare/?runs={a.uuid}&runs={b.uuid}").content.decode()
    assert "compare-curve-1-data" in again


def test_private_unknown_and_malformed_ids_are_not_shown(client: Client) -> None:
    mine = trained(config={}, losses=[0.5])
    secret = trained(
        config={},
        losses=[0.1],
        owner=UserFactory.create(username="other"),
        visibility=Visibility.PRIVATE,
    )
    unknown = "00000000-0000-0000-0000-000000000000"
    page = client.get(f"/compare/?runs={mine.uuid},{secret.uuid},{unknown},nonsense").content
    text = page.decode()
    assert f'href="/runs/{secret.uuid}/"' not in text
    assert f'href="/runs/{mine.uuid}/"' in text
    assert "2 of the 3 requested runs are not shown" in text
    assert "Pick at least two runs to compare." in text


def test_no_runs_picked_explains_how(client: Client) -> None:
    page = client.get("/compare/").content.decode()
    assert "Pick at least two runs to compare." in page
