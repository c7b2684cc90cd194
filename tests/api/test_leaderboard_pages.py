"""The suite leaderboard's JSON answer comes in pages: `page` and `page_size`, with
`count`, `next` and `previous`; ranks are over the whole board, and the CSV and LaTeX
exports hold every row."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

from catalog.models import Task
from tests.api.conftest import assert_field_error
from tests.factories import BackboneFactory, MethodFactory
from tests.published import BERT_LARGE_GLUE
from tracking.services import run_create_external

pytestmark = pytest.mark.django_db

BOARD = "/api/v1/suites/glue/leaderboard/"
SYSTEMS = 7


@pytest.fixture
def glue(alice: User) -> None:
    """GLUE with SYSTEMS complete systems, "System 0" best, and one incomplete system."""
    call_command("load_catalog", verbosity=0, stdout=io.StringIO())
    backbone = BackboneFactory.create(key="bert-large", name="BERT-large")
    tasks = {t.key: t for t in Task.objects.filter(benchmark__key="glue", is_current=True)}
    for index in range(SYSTEMS + 1):
        method = MethodFactory.create(key=f"m{index}", name=f"System {index}", executable=False)
        for key, scores in BERT_LARGE_GLUE.items():
            if index == SYSTEMS and key != "sst2":
                continue  # the incomplete one: no official score, so unranked
            run_create_external(
                owner=alice,
                method=method,
                backbone=backbone,
                task=tasks[key],
                config={},
                seed=0,
                # Systems 2 and 3 tie (equal scores share a rank).
                scores={m: v - 0.01 * (index - (index == 3)) for m, v in scores.items()},
            )


def get(api: APIClient, url: str, **query: Any) -> dict[str, Any]:
    response = api.get(url, query)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def test_pages_partition_the_board_and_keep_global_ranks(api: APIClient, glue: None) -> None:
    whole = get(api, BOARD, page_size=1000)
    assert whole["count"] == SYSTEMS + 1
    assert whole["next"] is None
    assert whole["previous"] is None
    ranks = [row["rank"] for row in whole["rows"]]
    assert ranks == [1, 2, 3, 3, 5, 6, 7, None]

    rows: list[dict[str, Any]] = []
    body = get(api, BOARD, page_size=3)
    assert body["page"] == 1
    assert body["previous"] is None
    pages = 1
    while True:
        assert body["count"] == SYSTEMS + 1
        assert body["page_size"] == 3
        assert len(body["rows"]) <= 3
        rows += body["rows"]
        if body["next"] is None:
            break
        # The links are absolute and keep the query.
        assert body["next"].startswith("http://testserver/api/v1/suites/glue/leaderboard/?")
        previous_page = body["page"]
        body = get(api, body["next"])
        pages += 1
        assert body["page"] == previous_page + 1
        assert body["previous"] is not None
    assert pages == 3
    assert rows == whole["rows"]  # the same rows, the same ranks: global, not per page
    # The columns and everything else are on every page.
    assert body["columns"] == whole["columns"]
    assert body["official_score_name"] == "GLUE score"


def test_the_default_page_and_a_rule_keep_their_query(api: APIClient, glue: None) -> None:
    body = get(api, BOARD)
    assert body["page"] == 1
    assert body["page_size"] == 50
    assert len(body["rows"]) == SYSTEMS + 1
    second = get(api, BOARD, rule="borda", missing="pairwise", page_size=2, page=2)
    assert [row["rank"] for row in second["rows"]] == [
        row["rank"] for row in get(api, BOARD, rule="borda", missing="pairwise")["rows"][2:4]
    ]
    assert second["next"] == (
        "http://testserver/api/v1/suites/glue/leaderboard/"
        "?rule=borda&missing=pairwise&page=3&page_size=2"
    )
    assert second["previous"] == (
        "http://testserver/api/v1/suites/glue/leaderboard/?rule=borda&missing=pairwise&page_size=2"
    )


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ({"page": "0"}, "page", "greater than or equal to 1"),
        ({"page": "two"}, "page", "valid integer"),
        ({"page": "4", "page_size": "3"}, "page", "past the last page, 3"),
        ({"page_size": "0"}, "page_size", "greater than or equal to 1"),
        ({"page_size": "1001"}, "page_size", "less than or equal to 1000"),
    ],
)
def test_bad_paging_is_a_400(
    api: APIClient, glue: None, query: dict[str, str], field: str, says: str
) -> None:
    assert_field_error(api.get(BOARD, query), field, says)


def test_an_empty_board_has_one_empty_page(api: APIClient) -> None:
    call_command("load_catalog", verbosity=0, stdout=io.StringIO())
    body = get(api, BOARD)
    assert (body["count"], body["rows"], body["next"], body["previous"]) == (0, [], None, None)
    assert_field_error(api.get(BOARD, {"page": "2"}), "page", "past the last page, 1")


def test_the_exports_hold_every_row_whatever_the_page(api: APIClient, glue: None) -> None:
    response = api.get(BOARD, {"format": "csv", "page_size": "2", "page": "2"})
    assert response.status_code == 200
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(table) == SYSTEMS + 1
    latex = api.get(BOARD, {"format": "latex", "page_size": "2"}).content.decode()
    assert all(f"System {index}" in latex for index in range(SYSTEMS + 1))


def test_the_schema_documents_the_paging(tmp_path: Path) -> None:
    out = tmp_path / "schema.yaml"
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(out))
    schema = yaml.safe_load(out.read_text())
    operation = schema["paths"]["/api/v1/suites/{key}/leaderboard/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["page"]["schema"]["minimum"] == 1
    assert parameters["page_size"]["schema"]["maximum"] == 1000
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][body.rsplit("/", 1)[-1]]["properties"]
    assert {"count", "page", "page_size", "next", "previous", "rows"} <= set(fields)
    assert fields["next"]["nullable"] is True
