"""Suite leaderboards as JSON over the real catalog: official score, rules, policies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

from catalog.models import Backbone, Method, Task
from tests.factories import BackboneFactory, MethodFactory
from tests.published import BERT_LARGE_GLUE
from tracking.models import Visibility
from tracking.services import run_create_external

pytestmark = pytest.mark.django_db

BOARD = "/api/v1/suites/glue/leaderboard/"


@pytest.fixture
def glue() -> None:
    call_command("load_catalog", verbosity=0)


def submit(
    owner: User,
    method: Method,
    backbone: Backbone,
    tasks: dict[str, dict[str, float]],
    *,
    seeds: tuple[int, ...] = (0,),
    **kwargs: Any,
) -> None:
    for key, scores in tasks.items():
        task = Task.objects.get(benchmark__key="glue", key=key, is_current=True)
        for seed in seeds:
            run_create_external(
                owner=owner,
                method=method,
                backbone=backbone,
                task=task,
                config={},
                seed=seed,
                scores=scores,
                **kwargs,
            )


def test_the_leaderboard_has_directed_columns_and_ranked_rows(
    api: APIClient, alice: User, glue: None
) -> None:
    bert = BackboneFactory.create(key="bert-large", name="BERT-large")
    submit(
        alice,
        MethodFactory.create(key="ft", name="Fine-tuning"),
        bert,
        BERT_LARGE_GLUE,
        seeds=(0, 1),
    )
    weaker = {k: {m: v - 0.05 for m, v in s.items()} for k, s in BERT_LARGE_GLUE.items()}
    submit(alice, MethodFactory.create(key="weak", name="Weaker"), bert, weaker)
    submit(
        alice,
        MethodFactory.create(key="secret", name="Secret"),
        bert,
        BERT_LARGE_GLUE,
        visibility=Visibility.PRIVATE,
    )

    response = api.get(BOARD)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["suite"] == "glue"
    assert body["rule"] == "official"
    assert body["official_score_name"] == "GLUE score"
    columns = {c["task"]: c for c in body["columns"]}
    assert "glue/cola" in columns
    assert all(c["higher_is_better"] is True for c in body["columns"])
    assert [r["method"] for r in body["rows"]] == ["ft", "weak"]  # no private run
    best = body["rows"][0]
    assert best["official"]["value"] == pytest.approx(80.5, abs=0.05)
    assert best["official"]["complete"] is True
    assert best["provenance_tiers"] == ["self_reported"]
    assert best["backbone"] == "bert-large"
    cola = best["cells"][list(columns).index("glue/cola")]
    assert cola == {"mean": pytest.approx(0.605), "std": pytest.approx(0.0), "count": 2}

    borda = api.get(BOARD, {"rule": "borda", "missing": "pairwise"}).json()
    assert borda["rule"] == "borda"
    assert borda["missing"] == "pairwise"
    assert [(r["method"], r["rank"]) for r in borda["rows"]] == [("ft", 1), ("weak", 2)]
    assert borda["rows"][0]["rule_score"] is not None
    assert borda["winners"] == [borda["rows"][0]["system"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [({"rule": "dictator"}, "rule"), ({"missing": "guess"}, "missing")],
)
def test_an_unknown_rule_or_policy_is_a_400(
    api: APIClient, glue: None, query: dict[str, str], field: str
) -> None:
    response = api.get(BOARD, query)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field]
    assert "one of" in errors[field][0]


def test_an_unknown_suite_is_404(api: APIClient) -> None:
    assert api.get("/api/v1/suites/nope/leaderboard/").status_code == 404


def test_the_personal_view_adds_only_the_callers_private_runs(
    api: APIClient,
    alice: User,
    bob: User,
    client_for: Callable[[User], APIClient],
    glue: None,
) -> None:
    bert = BackboneFactory.create(key="bert-large", name="BERT-large")
    submit(alice, MethodFactory.create(key="pub", name="Public one"), bert, BERT_LARGE_GLUE)
    secret = MethodFactory.create(key="secret", name="Secret one")
    submit(alice, secret, bert, BERT_LARGE_GLUE, visibility=Visibility.PRIVATE)

    def systems(client: APIClient, query: str = "") -> set[str]:
        response = client.get(BOARD + query)
        assert response.status_code == 200, response.content
        return {row["method"] for row in response.json()["rows"]}

    assert systems(api) == {"pub"}
    assert systems(client_for(alice), "?view=personal") == {"pub", "secret"}
    assert systems(client_for(alice)) == {"pub"}  # the public board stays public
    assert systems(client_for(bob), "?view=personal") == {"pub"}
    assert api.get(BOARD + "?view=personal").status_code == 401
    assert api.get(BOARD + "?view=everything").status_code == 400
