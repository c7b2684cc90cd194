"""The submit form: scores of a run made elsewhere, recorded by the service the API uses."""

from __future__ import annotations

import pytest
from django.test import Client

from catalog.models import Backbone, Method, Suite, Task
from tests.factories import BackboneFactory, MethodFactory, UserFactory
from tracking.models import ProvenanceTier, Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def mrpc(catalog: None) -> Task:
    return Task.objects.get(benchmark__key="glue", key="mrpc", is_current=True)


def form_data(method: Method, backbone: Backbone, **changes: str) -> dict[str, str]:
    return {
        "method": str(method.pk),
        "backbone": str(backbone.pk),
        "seed": "3",
        "config": '{"learning_rate": 2e-5}',
        "visibility": "public",
        "tags": "Ablation, glue",
        "description": "<b>from our paper</b>",
        "score_f1": "0.893",
        "score_accuracy": "0.854",
        **changes,
    }


def test_submitting_needs_a_login(client: Client, mrpc: Task) -> None:
    response = client.get("/submit/")
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_the_task_decides_the_score_fields(client: Client, mrpc: Task) -> None:
    client.force_login(UserFactory.create())
    first = client.get("/submit/").content.decode()
    assert "Continue" in first
    assert "score_" not in first
    second = client.get(f"/submit/?task={mrpc.pk}").content.decode()
    assert 'name="score_f1"' in second
    assert 'name="score_accuracy"' in second
    assert "higher is better" in second
    assert client.get("/submit/?task=999999").status_code == 200  # asks again, with the error


def test_a_submission_is_recorded_as_self_reported(client: Client, mrpc: Task) -> None:
    user = UserFactory.create(username="author")
    method, backbone = MethodFactory.create(executable=False), BackboneFactory.create()
    client.force_login(user)
    response = client.post(f"/submit/?task={mrpc.pk}", form_data(method, backbone))
    run = Run.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/runs/{run.uuid}/"
    assert run.owner == user
    assert run.task == mrpc
    assert run.seed == 3
    assert run.config == {"learning_rate": 2e-5}
    assert run.provenance_tier == ProvenanceTier.SELF_REPORTED
    assert {s.metric.key: s.value for s in run.scores.all()} == {"f1": 0.893, "accuracy": 0.854}
    assert sorted(t.name for t in run.tags.all()) == ["ablation", "glue"]
    page = client.get(response["Location"]).content.decode()
    assert "Recorded your run." in page
    assert "&lt;b&gt;from our paper&lt;/b&gt;" in page


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"config": "{not json"}, "Not valid JSON"),
        ({"config": "[1, 2]"}, "Give a JSON object"),
        ({"config": '{"seed": 1}'}, "config must not contain &#x27;seed&#x27;"),
        ({"score_f1": ""}, "This field is required."),
        ({"score_f1": "nan"}, "Enter a number."),
        ({"tags": "not a slug!"}, "Enter a valid “slug”"),
    ],
)
def test_bad_input_is_refused_with_a_message(
    client: Client, mrpc: Task, changes: dict[str, str], message: str
) -> None:
    client.force_login(UserFactory.create())
    method, backbone = MethodFactory.create(), BackboneFactory.create()
    response = client.post(f"/submit/?task={mrpc.pk}", form_data(method, backbone, **changes))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Run.objects.exists()


def test_the_form_needs_its_csrf_token(mrpc: Task) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory.create())
    method, backbone = MethodFactory.create(), BackboneFactory.create()
    response = client.post(f"/submit/?task={mrpc.pk}", form_data(method, backbone))
    assert response.status_code == 403
    assert not Run.objects.exists()


def test_the_form_keeps_to_the_suite_quota_like_the_api(client: Client, mrpc: Task) -> None:
    Suite.objects.filter(key="glue").update(total_submission_limit=1)
    client.force_login(UserFactory.create())
    method, backbone = MethodFactory.create(), BackboneFactory.create()
    assert client.post(f"/submit/?task={mrpc.pk}", form_data(method, backbone)).status_code == 302
    refused = client.post(f"/submit/?task={mrpc.pk}", form_data(method, backbone, seed="4"))
    assert refused.status_code == 200
    assert "accepts at most 1 run(s) per user in all" in refused.content.decode()
    assert Run.objects.count() == 1
