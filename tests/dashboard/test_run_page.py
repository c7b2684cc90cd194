"""The run page: scores, curves drawn by a locally served plotly.js and polled while the run
trains, history, reproducing a run; privacy and CSRF."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Profile
from catalog.models import Suite, Task
from dashboard.charts import MAX_POINTS_PER_CURVE
from tests.factories import MethodFactory, RunFactory, UserFactory
from tracking.models import Job, MetricPoint, Run, Visibility
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
    # plotly reads labels as a subset of HTML: escaped, the key shows literally.
    names = {t["name"] for t in curves(page)["data"]}  # type: ignore[attr-defined]
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in names


# --- Live curves -------------------------------------------------------------------------


def test_a_running_run_reports_its_state_for_the_live_page(client: Client) -> None:
    run = RunFactory.create()
    Job.objects.create(run=run, progress={"step": 3, "total_steps": 10}, log_tail="epoch 1")
    run_transition(run_id=run.pk, to="running", reason="started on gpu0")
    MetricPoint.objects.create(run=run, key="loss", step=3, value=0.7, recorded_at=timezone.now())
    page = client.get(f"/runs/{run.uuid}/").content.decode()
    assert f'data-live-url="/runs/{run.uuid}/live/"' in page
    state = client.get(f"/runs/{run.uuid}/live/").json()
    assert state["final"] is False
    assert state["status"] == "running"
    assert state["progress"] == {"step": 3, "total_steps": 10}
    assert state["log_tail"] == "epoch 1"
    assert [(t["name"], t["x"], t["y"]) for t in state["figure"]["data"]] == [("loss", [3], [0.7])]
    run.scores.create(metric=run.task.metrics.get(), value=0.75)
    run_transition(run_id=run.pk, to="succeeded", reason="result recorded")
    assert client.get(f"/runs/{run.uuid}/live/").json()["final"] is True
    assert "data-live-url" not in client.get(f"/runs/{run.uuid}/").content.decode()


def test_the_live_state_of_a_private_run_is_private(client: Client) -> None:
    owner = UserFactory.create(username="owner")
    run = RunFactory.create(owner=owner, visibility=Visibility.PRIVATE)
    assert client.get(f"/runs/{run.uuid}/live/").status_code == 404
    client.force_login(owner)
    assert client.get(f"/runs/{run.uuid}/live/").status_code == 200


# --- Reproduce ---------------------------------------------------------------------------


def finish(run: Run, value: float) -> None:
    run_transition(run_id=run.pk, to="running", reason="started on gpu1")
    run.scores.create(metric=run.task.metrics.get(), value=value)
    run_transition(run_id=run.pk, to="succeeded", reason="result recorded")


def test_the_owner_reproduces_a_run_and_sees_whether_it_agrees(client: Client) -> None:
    owner = UserFactory.create(username="owner")
    run = finished_run(owner=owner)
    client.force_login(owner)
    assert "Reproduce this run" in client.get(f"/runs/{run.uuid}/").content.decode()
    response = client.post(f"/runs/{run.uuid}/reproduce/")
    again = Run.objects.exclude(pk=run.pk).get()
    assert response.status_code == 302
    assert response["Location"] == f"/runs/{again.uuid}/"
    spec = ("method_id", "backbone_id", "task_id", "config_hash", "seed", "eval_split")
    assert [getattr(again, f) for f in spec] == [getattr(run, f) for f in spec]
    assert again.status == "queued"
    assert Job.objects.filter(run=again).exists()
    page = client.get(f"/runs/{again.uuid}/").content.decode()
    assert "Queued a reproduction of this run" in page
    assert f'Reproduction of <a href="/runs/{run.uuid}/">' in page
    assert "Waiting for scores" in page

    finish(again, 0.8100)
    page = client.get(f"/runs/{again.uuid}/").content.decode()
    assert "The scores agree with the original" in page
    assert "0.8125" in page  # the original's score, side by side
    assert "-0.0025" in page
    original = client.get(f"/runs/{run.uuid}/").content.decode()
    assert "Reproductions of this run" in original
    assert "agrees" in original

    client.post(f"/runs/{run.uuid}/reproduce/")
    far = Run.objects.exclude(pk__in=[run.pk, again.pk]).get()
    finish(far, 0.70)
    assert "differ from the original" in client.get(f"/runs/{far.uuid}/").content.decode()


def test_only_the_owner_or_staff_may_reproduce(client: Client) -> None:
    owner = UserFactory.create(username="owner")
    run = finished_run(owner=owner)
    assert client.post(f"/runs/{run.uuid}/reproduce/").status_code == 302  # to log in
    client.force_login(UserFactory.create(username="stranger"))
    assert "Reproduce this run" not in client.get(f"/runs/{run.uuid}/").content.decode()
    response = client.post(f"/runs/{run.uuid}/reproduce/", follow=True)
    assert "Only the run&#x27;s owner or staff can reproduce it." in response.content.decode()
    assert Run.objects.count() == 1
    staff = UserFactory.create(username="root", is_staff=True)
    client.force_login(staff)
    client.post(f"/runs/{run.uuid}/reproduce/")
    assert Run.objects.exclude(pk=run.pk).get().owner == staff


def test_a_method_podium_cannot_run_is_not_reproduced(client: Client) -> None:
    owner = UserFactory.create(username="owner")
    run = finished_run(owner=owner, method=MethodFactory.create(executable=False))
    client.force_login(owner)
    assert "Reproduce this run" not in client.get(f"/runs/{run.uuid}/").content.decode()
    page = client.post(f"/runs/{run.uuid}/reproduce/", follow=True).content.decode()
    assert "only records results made elsewhere" in page
    assert Run.objects.count() == 1


def test_dashboard_forms_refuse_posts_without_a_csrf_token(catalog: None) -> None:
    owner = UserFactory.create(username="owner")
    run = finished_run(owner=owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(f"/runs/{run.uuid}/reproduce/").status_code == 403
    assert client.post("/suites/glue/freeze/").status_code == 403
    assert Run.objects.count() == 1
    page = client.get(f"/runs/{run.uuid}/").content.decode()
    assert 'name="csrfmiddlewaretoken"' in page


def test_long_curves_are_thinned_for_display_keeping_their_extremes(client: Client) -> None:
    run = finished_run()
    now = timezone.now()
    values = [1.0] * 20_000
    values[12_345] = 50.0  # a spike the chart must not smooth away
    MetricPoint.objects.bulk_create(
        MetricPoint(run=run, key="grad_norm", step=step, value=value, recorded_at=now)
        for step, value in enumerate(values)
    )
    page = client.get(f"/runs/{run.uuid}/").content.decode()
    trace = next(t for t in curves(page)["data"] if t["name"] == "grad_norm")  # type: ignore[attr-defined]
    assert len(trace["x"]) <= MAX_POINTS_PER_CURVE
    assert (trace["x"][0], trace["x"][-1]) == (0, 19_999)
    assert 50.0 in trace["y"]
    assert MetricPoint.objects.filter(run=run, key="grad_norm").count() == 20_000


def test_a_reproduction_counts_against_the_suite_quota(client: Client, catalog: None) -> None:
    owner = UserFactory.create(username="owner")
    run = finished_run(
        owner=owner, task=Task.objects.get(benchmark__key="glue", key="sst2", is_current=True)
    )
    Suite.objects.filter(key="glue").update(daily_submission_limit=1)
    client.force_login(owner)
    page = client.post(f"/runs/{run.uuid}/reproduce/", follow=True).content.decode()
    assert "accepts at most 1 run(s) per user per UTC day" in page
    assert Run.objects.count() == 1


def test_the_owner_is_shown_by_their_display_name(client: Client) -> None:
    owner = UserFactory.create(username="jdoe")
    Profile.objects.create(user=owner, display_name="Jane <Doe>")
    run = finished_run(owner=owner)
    page = client.get(f"/runs/{run.uuid}/").content.decode()
    assert "by Jane &lt;Doe&gt;, created" in page
