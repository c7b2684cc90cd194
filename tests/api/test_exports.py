"""Task leaderboards, CSV/JSON/LaTeX exports of every board, and frozen snapshots."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

from api.exports import CSV_FORMULA_PREFIXES, csv_safe, latex_escape
from catalog.models import Backbone, Task
from tests.api.conftest import Catalog, record_run
from tests.factories import BackboneFactory, MethodFactory
from tests.published import BERT_LARGE_GLUE
from tracking.models import LeaderboardSnapshot, Visibility
from tracking.services import run_create_external

pytestmark = pytest.mark.django_db

TASK_BOARD = "/api/v1/tasks/bench/sst/leaderboard/"
GLUE_BOARD = "/api/v1/suites/glue/leaderboard/"


@pytest.fixture
def glue() -> None:
    call_command("load_catalog", verbosity=0)


def submit_glue(owner: User, method_name: str, *, key: str, shift: float = 0.0) -> None:
    method = MethodFactory.create(key=key, name=method_name, executable=False)
    backbone = Backbone.objects.filter(key="bert-large").first() or BackboneFactory.create(
        key="bert-large", name="BERT-large"
    )
    for task_key, scores in BERT_LARGE_GLUE.items():
        run_create_external(
            owner=owner,
            method=method,
            backbone=backbone,
            task=Task.objects.get(benchmark__key="glue", key=task_key, is_current=True),
            config={},
            seed=0,
            scores={m: v + shift for m, v in scores.items()},
        )


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# --- Task leaderboards ---------------------------------------------------------------------


def test_a_task_board_has_one_column_per_metric_and_ranks_by_the_task_score(
    api: APIClient, alice: User, bob: User, small_catalog: Catalog
) -> None:
    record_run(small_catalog, alice, scores={"accuracy": 0.9, "loss": 0.5})
    record_run(small_catalog, alice, seed=1, scores={"accuracy": 0.8, "loss": 0.3})
    record_run(
        small_catalog,
        bob,
        method=MethodFactory.create(key="dora", name="DoRA"),
        scores={"accuracy": 0.7, "loss": 0.1},
    )
    response = api.get(TASK_BOARD)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["task"], body["version"], body["rule"]) == ("bench/sst", 1, "official")
    assert [(c["metric"], c["higher_is_better"]) for c in body["columns"]] == [
        ("accuracy", True),
        ("loss", False),
    ]
    first, second = body["rows"]
    assert (first["method"], first["rank"]) == ("paper", 1)
    assert first["task_score"] == pytest.approx(85.0)  # the primary metric's seed mean
    assert first["cells"][0] == {
        "mean": pytest.approx(0.85),
        "std": pytest.approx(0.0707, abs=1e-4),
        "count": 2,
    }
    assert (second["method"], second["rank"]) == ("dora", 2)
    assert body["winners"] == [first["system"]]


def test_a_rule_ranks_a_task_over_its_metrics_with_their_directions(
    api: APIClient, alice: User, small_catalog: Catalog
) -> None:
    record_run(small_catalog, alice, scores={"accuracy": 0.9, "loss": 0.9})
    record_run(
        small_catalog,
        alice,
        method=MethodFactory.create(key="dora"),
        scores={"accuracy": 0.8, "loss": 0.1},
    )
    record_run(
        small_catalog,
        alice,
        method=MethodFactory.create(key="bad"),
        scores={"accuracy": 0.1, "loss": 5.0},
    )
    body = api.get(TASK_BOARD, {"rule": "copeland"}).json()
    ranks = {row["method"]: row["rank"] for row in body["rows"]}
    # paper and dora each win one metric against the other (loss: lower is better).
    assert ranks == {"paper": 1, "dora": 1, "bad": 3}
    assert body["rows"][-1]["method"] == "bad"
    assert all(row["rule_score"] is not None for row in body["rows"])


def test_task_board_options_personal_view_and_unknown_tasks(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    small_catalog: Catalog,
) -> None:
    record_run(small_catalog, alice, visibility=Visibility.PRIVATE)
    assert api.get(TASK_BOARD).json()["rows"] == []
    personal = client_for(alice).get(TASK_BOARD, {"view": "personal"}).json()
    assert [row["method"] for row in personal["rows"]] == ["paper"]
    assert api.get(TASK_BOARD, {"view": "personal"}).status_code == 401
    assert api.get("/api/v1/tasks/bench/nope/leaderboard/").status_code == 404
    assert api.get(TASK_BOARD, {"version": 2}).status_code == 404
    assert api.get(TASK_BOARD, {"version": 1}).status_code == 200
    bad = api.get(TASK_BOARD, {"rule": "dictator"})
    assert bad.status_code == 400
    assert list(bad.json()["errors"]) == ["rule"]


# --- Exports -------------------------------------------------------------------------------


def test_the_suite_board_exports_as_csv(api: APIClient, alice: User, glue: None) -> None:
    submit_glue(alice, "Fine-tuning", key="ft")
    submit_glue(alice, "Weaker", shift=-0.05, key="weak")
    response = api.get(GLUE_BOARD, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="glue-v1-official.csv"'
    rows = csv_rows(response.content.decode())
    assert [(r["rank"], r["method"]) for r in rows] == [("1", "ft"), ("2", "weak")]
    assert float(rows[0]["GLUE score"]) == pytest.approx(80.5, abs=0.05)
    assert float(rows[0]["glue/cola mcc"]) == pytest.approx(0.605)
    assert rows[0]["glue/cola mcc seeds"] == "1"

    borda = csv_rows(api.get(GLUE_BOARD, {"format": "csv", "rule": "borda"}).content.decode())
    assert "borda score" in borda[0]
    # The same table as JSON, with ?format=json or by default.
    assert api.get(GLUE_BOARD, {"format": "json"}).json() == api.get(GLUE_BOARD).json()
    assert api.get(GLUE_BOARD, HTTP_ACCEPT="text/csv")["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize("prefix", CSV_FORMULA_PREFIXES)
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(prefix: str) -> None:
    assert csv_safe(f'{prefix}HYPERLINK("http://x")') == f'\'{prefix}HYPERLINK("http://x")'
    assert csv_safe("Fine-tuning") == "Fine-tuning"
    assert csv_safe(-0.5) == -0.5  # numbers Podium writes stay numbers


def test_a_hostile_method_name_cannot_inject_into_the_csv(
    api: APIClient, alice: User, glue: None
) -> None:
    submit_glue(alice, '=cmd|"/C calc"!A0', key="evil")
    submit_glue(alice, "@SUM(1+1)", shift=-0.01, key="evil2")
    rows = csv_rows(api.get(GLUE_BOARD, {"format": "csv"}).content.decode())
    systems = [row["system"] for row in rows]
    assert systems[0].startswith("'=cmd")
    assert systems[1].startswith("'@SUM")
    assert all(not value.startswith(("=", "@", "+")) for row in rows for value in row.values())


def test_the_suite_board_exports_as_latex_with_the_best_in_bold(
    api: APIClient, alice: User, glue: None
) -> None:
    submit_glue(alice, "Fine-tuning", key="ft")
    submit_glue(alice, "Ours_v2 & 100% {new} #1 ~$x^2$\\", shift=-0.05, key="ours")
    response = api.get(GLUE_BOARD, {"format": "latex"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-latex; charset=utf-8"
    assert response["Content-Disposition"].endswith('.tex"')
    tex = response.content.decode()
    for command in (r"\begin{tabular}", r"\toprule", r"\midrule", r"\bottomrule"):
        assert command in tex
    ft_line = next(line for line in tex.splitlines() if line.startswith("1 & Fine-tuning"))
    ours_line = next(line for line in tex.splitlines() if line.startswith("2 & "))
    assert r"\textbf{80.5}" in ft_line  # the best official score
    assert r"\textbf{0.605}" in ft_line  # the best CoLA score
    assert r"\textbf" not in ours_line
    assert (
        r"Ours\_v2 \& 100\% \{new\} \#1 \textasciitilde{}\$x\textasciicircum{}2\$\textbackslash{}"
        in ours_line
    )
    assert r"$\uparrow$" in tex


def test_latex_escapes_every_special_character() -> None:
    assert latex_escape(r"a_b&c%d$e#f{g}h~i^j\k<l>m|n") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k"
        r"\textless{}l\textgreater{}m\textbar{}n"
    )


def test_the_best_of_a_lower_is_better_column_is_its_smallest(
    api: APIClient, alice: User, small_catalog: Catalog
) -> None:
    record_run(small_catalog, alice, scores={"accuracy": 0.9, "loss": 0.7})
    record_run(
        small_catalog,
        alice,
        method=MethodFactory.create(key="dora", name="DoRA"),
        scores={"accuracy": 0.8, "loss": 0.2},
    )
    tex = api.get(TASK_BOARD, {"format": "latex"}).content.decode()
    first = next(line for line in tex.splitlines() if line.startswith("1 & "))
    second = next(line for line in tex.splitlines() if line.startswith("2 & "))
    assert r"\textbf{0.900}" in first
    assert r"\textbf{0.200}" in second
    # A task board's columns are its metrics, each with its direction.
    assert r"Rank & System & Task score & Accuracy $\uparrow$ & Loss $\downarrow$ \\" in tex
    rows = csv_rows(api.get(TASK_BOARD, {"format": "csv"}).content.decode())
    assert [(r["rank"], r["method"], r["Task score"]) for r in rows] == [
        ("1", "paper", "90.0"),
        ("2", "dora", "80.0"),
    ]


def test_an_unknown_format_is_a_400_and_errors_stay_json(api: APIClient, glue: None) -> None:
    response = api.get(GLUE_BOARD, {"format": "xlsx"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "one of json, csv, latex" in response.json()["errors"]["format"][0]
    bad_rule = api.get(GLUE_BOARD, {"format": "csv", "rule": "dictator"})
    assert bad_rule.status_code == 400
    assert bad_rule["Content-Type"] == "application/json"
    assert list(bad_rule.json()["errors"]) == ["rule"]
    missing = api.get("/api/v1/suites/nope/leaderboard/", {"format": "latex"})
    assert missing.status_code == 404
    assert missing.json()["errors"]["non_field_errors"]


# --- Snapshots -----------------------------------------------------------------------------


def test_any_signed_in_user_freezes_a_board_into_a_citable_snapshot(
    api: APIClient, client_for: Callable[[User], APIClient], alice: User, glue: None
) -> None:
    submit_glue(alice, "Fine-tuning", key="ft")
    snapshots = "/api/v1/suites/glue/snapshots/"
    assert api.post(snapshots, {"rule": "copeland"}, format="json").status_code == 401
    response = client_for(alice).post(snapshots, {"rule": "copeland"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    snapshot = LeaderboardSnapshot.objects.get()
    assert body["uuid"] == str(snapshot.uuid)
    assert body["url"] == f"http://testserver/snapshots/{snapshot.uuid}/"
    assert response["Location"] == body["url"]
    assert (body["suite"], body["suite_version"], body["rule"]) == ("glue", 1, "copeland")
    assert body["created_by"] == "alice"
    assert body["bibtex"].startswith("@misc{podium-glue-")
    assert body["url"] in body["bibtex"]
    assert [row["method"] for row in body["content"]["rows"]] == ["ft"]

    # Stable: later runs never change it.
    submit_glue(alice, "Later", key="later")
    detail = api.get(f"/api/v1/snapshots/{snapshot.uuid}/")
    assert detail.status_code == 200
    assert [row["method"] for row in detail.json()["content"]["rows"]] == ["ft"]
    listed = api.get(snapshots).json()["results"]
    assert [s["uuid"] for s in listed] == [str(snapshot.uuid)]


def test_a_snapshot_exports_as_bibtex_csv_and_latex(
    api: APIClient, client_for: Callable[[User], APIClient], alice: User, glue: None
) -> None:
    submit_glue(alice, "Fine-tuning", key="ft")
    created = client_for(alice).post("/api/v1/suites/glue/snapshots/", {}, format="json").json()
    url = f"/api/v1/snapshots/{created['uuid']}/"
    bib = api.get(url, {"format": "bibtex"})
    assert bib.status_code == 200
    assert bib["Content-Type"] == "application/x-bibtex; charset=utf-8"
    assert bib.content.decode() == created["bibtex"]
    rows = csv_rows(api.get(url, {"format": "csv"}).content.decode())
    assert [(r["rank"], r["method"]) for r in rows] == [("1", "ft")]
    assert float(rows[0]["Official score"]) == pytest.approx(80.5, abs=0.05)
    assert r"\toprule" in api.get(url, {"format": "latex"}).content.decode()
    assert api.get("/api/v1/snapshots/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_an_empty_board_cannot_be_frozen(
    client_for: Callable[[User], APIClient], alice: User, glue: None
) -> None:
    response = client_for(alice).post("/api/v1/suites/glue/snapshots/", {}, format="json")
    assert response.status_code == 400
    assert "nothing to freeze" in response.json()["errors"]["non_field_errors"][0]
    bad = client_for(alice).post(
        "/api/v1/suites/glue/snapshots/", {"rule": "dictator"}, format="json"
    )
    assert list(bad.json()["errors"]) == ["rule"]
    assert not LeaderboardSnapshot.objects.exists()
