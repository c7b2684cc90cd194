"""The suite leaderboard page: official scores, rules, rank intervals, filters, flags,
provenance, exports, snapshots, escaping."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from catalog.models import Task
from tests.dashboard.pages import board_systems
from tests.dashboard.scenario import Showcase
from tests.factories import BackboneFactory, MethodFactory, UserFactory
from tests.published import BERT_LARGE_GLUE
from tracking.models import Flag, FlagKind, Run, Visibility
from tracking.services import run_create_external

pytestmark = pytest.mark.django_db


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
    assert board_systems(page) == ["Fine-tuning", "Weaker", "Partial"]
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


# --- The showcase: a table where the mean and Kemeny disagree ------------------------------


def test_the_mean_and_kemeny_order_the_showcase_differently(
    client: Client, showcase: Showcase
) -> None:
    by_mean = board_systems(client.get("/suites/glue/?rule=mean").content.decode())
    by_kemeny = board_systems(client.get("/suites/glue/?rule=kemeny").content.decode())
    assert by_mean == ["Specialist", "Full fine-tuning", "LoRA", "BitFit"]
    assert by_kemeny[0] == "Full fine-tuning"
    official = client.get("/suites/glue/").content.decode()
    assert board_systems(official) == by_mean
    # Under the official score the rank column comes from that score.
    assert re.search(r'<td class="num" data-sort="1">1</td>\s*<td class="system"', official)


def test_rank_intervals_and_win_probabilities_come_from_the_seeds(
    client: Client, showcase: Showcase
) -> None:
    page = client.get("/suites/glue/?rule=kemeny").content.decode()
    assert "Rank interval" in page
    assert "P(win)" in page
    assert "200 bootstrap replicates resampling each system's seeds" in page


def test_a_single_seed_gives_no_rank_intervals_and_says_why(client: Client, catalog: None) -> None:
    submit_glue(method_name="Fine-tuning", tasks=BERT_LARGE_GLUE)
    weaker = {k: {m: v - 0.05 for m, v in s.items()} for k, s in BERT_LARGE_GLUE.items()}
    submit_glue(method_name="Weaker", tasks=weaker)
    page = client.get("/suites/glue/?rule=borda").content.decode()
    assert "P(win)" not in page
    assert "Every system has a single run per task" in page


def test_filters_narrow_the_rows_and_keep_the_ranks(client: Client, showcase: Showcase) -> None:
    page = client.get("/suites/glue/?rule=kemeny&provenance=self_reported").content.decode()
    assert board_systems(page) == ["Specialist"]
    assert "Showing 1 of 4 systems; ranks are among all systems" in page
    assert re.search(r'<td class="num" data-sort="3">3</td>', page)  # its rank among all four
    page = client.get("/suites/glue/?method=lora&backbone=bert-large-cased").content.decode()
    assert board_systems(page) == ["LoRA"]
    page = client.get("/suites/glue/?method=nonexistent").content.decode()
    assert "No system matches these filters." in page


def test_provenance_badges_flags_and_export_links(client: Client, showcase: Showcase) -> None:
    specialist = Run.objects.filter(method__key="specialist").first()
    assert specialist is not None
    Flag.objects.create(run=specialist, kind=FlagKind.CONTAMINATION, reason="trained on <dev>")
    page = client.get("/suites/glue/?rule=copeland&missing=pairwise").content.decode()
    assert "self-reported" in page
    assert "executed by Podium" in page
    assert "Possible test-set contamination" in page
    assert "trained on &lt;dev&gt;" in page
    table = re.search(r'<table id="leaderboard".*?</table>', page, re.S)
    assert table
    assert table.group(0).count("⚑ flagged") == 1
    # The files hold the whole table; the JSON answer is paged, so its link asks for the
    # largest page.
    for fmt, extra in (("csv", ""), ("json", "page_size=1000&amp;"), ("latex", "")):
        assert (
            f'href="/api/v1/suites/glue/leaderboard/?rule=copeland&amp;missing=pairwise&amp;'
            f'{extra}format={fmt}"' in page
        )


def test_flags_on_private_runs_stay_private(client: Client, catalog: None) -> None:
    submit_glue(method_name="Public", tasks=BERT_LARGE_GLUE)
    submit_glue(method_name="Hidden", tasks=BERT_LARGE_GLUE, visibility=Visibility.PRIVATE)
    hidden = Run.objects.get(method__name="Hidden", task__key="sst2")
    Flag.objects.create(run=hidden, kind=FlagKind.SUSPICIOUS, reason="secret reason")
    page = client.get("/suites/glue/").content.decode()
    assert "secret reason" not in page
    assert "Hidden" not in page


def test_columns_say_which_direction_is_better(client: Client, showcase: Showcase) -> None:
    page = client.get("/suites/glue/").content.decode()
    assert 'title="Matthews corr., higher is better; weight 1.0"' in page
    assert page.count('aria-label="higher is better"') >= 10


def test_export_links_download_the_table(client: Client, showcase: Showcase) -> None:
    for page_url in ("/suites/glue/?rule=kemeny", "/benchmarks/glue/sst2/"):
        page = client.get(page_url).content.decode()
        links = re.findall(r'<a href="(/api/v1/[^"]+format=(\w+))" download>', page)
        assert {fmt for _, fmt in links} == {"csv", "json", "latex"}, page_url
        for url, fmt in links:
            response = client.get(html.unescape(url))
            assert response.status_code == 200, url
            if fmt == "csv":
                assert "Full fine-tuning" in response.content.decode()
