"""Dashboard pages over the loaded catalog: official scores, incomplete systems, escaping."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

from catalog.models import Task
from tests.factories import BackboneFactory, MethodFactory, UserFactory
from tests.published import BERT_LARGE_GLUE
from tracking.models import Visibility
from tracking.services import run_create_external

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog() -> None:
    call_command("load_catalog", verbosity=0)


def submit_glue(*, method_name: str, tasks: dict[str, dict[str, float]], **kwargs: object) -> None:
    method = MethodFactory.create(name=method_name, executable=False)
    backbone = BackboneFactory.create(name="BERT-large")
    owner = UserFactory.create(username="alice")
    for key, scores in tasks.items():
        run_create_external(
            owner=owner,
            method=method,
            backbone=backbone,
            task=Task.objects.get(benchmark__key="glue", key=key, is_current=True),
            config={},
            seed=0,
            scores=scores,
            **kwargs,  # type: ignore[arg-type]
        )


def test_home_lists_benchmarks_and_suites(client: Client, catalog: None) -> None:
    page = client.get("/").content.decode()
    for name in ("GLUE", "SuperGLUE", "LEPISZCZE"):
        assert name in page


def test_empty_suite_says_how_to_submit(client: Client, catalog: None) -> None:
    page = client.get("/suites/glue/").content.decode()
    assert "No public results on this suite yet" in page


def test_suite_page_shows_the_official_score_and_orders_by_it(
    client: Client, catalog: None
) -> None:
    submit_glue(method_name="Fine-tuning", tasks=BERT_LARGE_GLUE)
    weaker = {k: {m: v - 0.05 for m, v in s.items()} for k, s in BERT_LARGE_GLUE.items()}
    submit_glue(method_name="Weaker", tasks=weaker)
    partial = {k: v for k, v in BERT_LARGE_GLUE.items() if k != "wnli"}
    submit_glue(method_name="Partial", tasks=partial)
    page = client.get("/suites/glue/").content.decode()
    assert "GLUE score" in page
    assert ">80.5<" in page  # the published BERT-large GLUE score
    assert page.index("Fine-tuning") < page.index("Weaker") < page.index("Partial")
    assert "missing: wnli" in page


def test_private_runs_are_not_on_the_public_page(client: Client, catalog: None) -> None:
    submit_glue(method_name="Secret", tasks=BERT_LARGE_GLUE, visibility=Visibility.PRIVATE)
    assert "Secret" not in client.get("/suites/glue/").content.decode()
    assert "Secret" not in client.get("/").content.decode()


def test_user_strings_are_escaped(client: Client, catalog: None) -> None:
    submit_glue(method_name="<script>alert(1)</script>", tasks={"sst2": {"accuracy": 0.9}})
    page = client.get("/suites/glue/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_task_page_shows_metrics_direction_and_license(client: Client, catalog: None) -> None:
    page = client.get("/benchmarks/glue/cola/").content.decode()
    assert "higher is better" in page
    assert "Matthews" in page
    assert client.get("/benchmarks/glue/nope/").status_code == 404


def test_suite_page_query_count_does_not_grow_with_systems(
    client: Client, catalog: None, django_assert_max_num_queries: object
) -> None:
    for i in range(8):
        submit_glue(method_name=f"Method {i}", tasks=BERT_LARGE_GLUE)
    with django_assert_max_num_queries(15):  # type: ignore[operator]
        assert client.get("/suites/glue/").status_code == 200


def test_the_rule_switcher_ranks_with_the_engine(client: Client, catalog: None) -> None:
    submit_glue(method_name="Fine-tuning", tasks=BERT_LARGE_GLUE)
    weaker = {k: {m: v - 0.05 for m, v in s.items()} for k, s in BERT_LARGE_GLUE.items()}
    submit_glue(method_name="Weaker", tasks=weaker)
    page = client.get("/suites/glue/?rule=borda").content.decode()
    assert "Winner under borda: <strong>Fine-tuning" in page
    assert "borda score" in page
    assert client.get("/suites/glue/?rule=nonsense").status_code == 400
    assert client.get("/suites/glue/?rule=borda&missing=guess").status_code == 400


def test_missing_scores_need_a_policy_the_page_says_so(client: Client, catalog: None) -> None:
    submit_glue(method_name="Complete", tasks=BERT_LARGE_GLUE)
    partial = {
        k: {m: v - 0.01 for m, v in s.items()}
        for k, s in BERT_LARGE_GLUE.items()
        if k not in {"wnli", "rte"}
    }
    submit_glue(method_name="Partial", tasks=partial)
    refused = client.get("/suites/glue/?rule=kemeny").content.decode()
    assert "kemeny cannot rank this table" in refused
    ranked = client.get("/suites/glue/?rule=kemeny&missing=pairwise").content.decode()
    assert "cannot rank" not in ranked
    assert "Winner under kemeny: <strong>Complete" in ranked


def test_a_cached_leaderboard_is_recomputed_when_runs_change(client: Client, catalog: None) -> None:
    submit_glue(method_name="First", tasks={"sst2": {"accuracy": 0.9}})
    assert "Second" not in client.get("/suites/glue/?rule=borda&missing=impute").content.decode()
    submit_glue(method_name="Second", tasks={"sst2": {"accuracy": 0.95}})
    page = client.get("/suites/glue/?rule=borda&missing=impute").content.decode()
    assert "Winner under borda: <strong>Second" in page


def test_a_frozen_snapshot_never_changes_and_can_be_cited(client: Client, catalog: None) -> None:
    submit_glue(method_name="Fine-tuning", tasks=BERT_LARGE_GLUE)
    assert client.post("/suites/glue/freeze/?rule=copeland").status_code == 302  # to log in
    from tracking.models import LeaderboardSnapshot

    assert not LeaderboardSnapshot.objects.exists()
    client.force_login(UserFactory.create(username="curator"))
    response = client.post("/suites/glue/freeze/?rule=copeland")
    assert response.status_code == 302
    snapshot = LeaderboardSnapshot.objects.get()
    assert response["Location"] == f"/snapshots/{snapshot.uuid}/"
    page = client.get(response["Location"]).content.decode()
    assert "@misc{podium-glue-" in page
    assert "Fine-tuning" in page
    submit_glue(method_name="Later", tasks=BERT_LARGE_GLUE)
    assert "Later" not in client.get(response["Location"]).content.decode()
    assert "Later" in client.get("/suites/glue/").content.decode()
