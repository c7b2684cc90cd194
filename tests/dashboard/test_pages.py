"""The other pages: rules compared, efficiency, task, methods and backbones, home; empty
states, staff links, privacy and escaping on each."""

from __future__ import annotations

import pytest
from django.test import Client

from catalog.models import Method, Task
from tests.dashboard.pages import embedded_json
from tests.dashboard.scenario import Showcase
from tests.factories import BackboneFactory, MethodFactory, UserFactory
from tracking.models import Run, Visibility
from tracking.services import run_create_external

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>'


def test_every_page_renders_for_everyone(client: Client, showcase: Showcase) -> None:
    pages = [
        "/",
        "/benchmarks/glue/",
        "/benchmarks/glue/rte/",
        "/suites/glue/",
        "/suites/glue/rules/",
        "/suites/glue/efficiency/",
        "/jobs/",
        "/methods/",
        "/methods/lora/",
        "/backbones/",
        f"/backbones/{showcase.backbone.key}/",
        f"/runs/{showcase.curve_run.uuid}/",
        f"/compare/?runs={showcase.curve_run.uuid},{showcase.reproduction.uuid}",
    ]
    for user in (None, showcase.owner, UserFactory.create(username="root", is_staff=True)):
        if user is not None:
            client.force_login(user)
        for path in pages:
            assert client.get(path).status_code == 200, (path, user)
    assert client.get("/suites/nope/rules/").status_code == 404
    assert client.get("/suites/glue/efficiency/?missing=guess").status_code == 400
    assert client.get("/methods/nope/").status_code == 404


def test_rules_page_draws_a_bump_chart_and_the_agreement(
    client: Client, showcase: Showcase
) -> None:
    page = client.get("/suites/glue/rules/").content.decode()
    assert "Yes: Full fine-tuning" in page
    bump = embedded_json(page, "bump-data")
    names = {trace["name"].split(" · ")[0] for trace in bump["data"]}
    assert names == {"Full fine-tuning", "Specialist", "LoRA", "BitFit"}
    assert "kemeny" in bump["data"][0]["x"]
    heatmap = embedded_json(page, "agreement-data")["data"][0]
    assert heatmap["x"] == heatmap["y"]
    assert len(heatmap["z"]) == len(heatmap["x"])
    assert "can be the strict Condorcet winner" in page
    assert "normalized_mean" in page  # listed with why it cannot rank


def test_rules_page_without_results_says_how_to_submit(client: Client, catalog: None) -> None:
    page = client.get("/suites/superglue/rules/").content.decode()
    assert "No public results on this suite yet" in page
    assert "bump-data" not in page


def test_hostile_system_names_are_escaped_in_chart_labels(
    client: Client, showcase: Showcase
) -> None:
    Method.objects.filter(key="specialist").update(name=HOSTILE)
    page = client.get("/suites/glue/rules/").content.decode()
    assert HOSTILE not in page
    names = [trace["name"] for trace in embedded_json(page, "bump-data")["data"]]
    escaped = '&lt;script&gt;alert("x")&lt;/script&gt;'
    assert any(name.startswith(escaped) for name in names)
    efficiency = client.get("/suites/glue/efficiency/").content.decode()
    assert HOSTILE not in efficiency


def test_efficiency_page_plots_score_against_cost(client: Client, showcase: Showcase) -> None:
    page = client.get("/suites/glue/efficiency/").content.decode()
    figure = embedded_json(page, "efficiency-trainable_parameters-data")
    front = next(trace for trace in figure["data"] if trace["name"] == "Pareto front")
    assert sorted(front["x"]) == sorted(
        [335_141_888, 786_432, 273_408]  # full fine-tuning, LoRA, BitFit on BERT-large
    )
    assert figure["layout"]["xaxis"]["type"] == "log"
    assert page.count('class="badge front"') == 9  # three systems on three fronts


def test_efficiency_without_cost_figures_says_where_they_come_from(
    client: Client, catalog: None
) -> None:
    owner = UserFactory.create()
    method, backbone = MethodFactory.create(), BackboneFactory.create()
    run_create_external(
        owner=owner,
        method=method,
        backbone=backbone,
        task=Task.objects.get(benchmark__key="glue", key="sst2", is_current=True),
        config={},
        seed=0,
        scores={"accuracy": 0.9},
    )
    page = client.get("/suites/glue/efficiency/").content.decode()
    assert "No system has cost figures yet" in page


def test_task_page_ranks_every_system_and_shows_per_class_metrics(
    client: Client, showcase: Showcase
) -> None:
    Run.objects.filter(pk=showcase.curve_run.pk).update(
        extra_scores={"per_class/negative/f1": 0.94, "per_class/positive/f1": 0.955}
    )
    page = client.get("/benchmarks/glue/sst2/").content.decode()
    table = page[page.index('id="task-board"') : page.index("</table>", page.index("task-board"))]
    # SST-2 accuracy: LoRA shifted up, BitFit down the most.
    assert table.index("LoRA") < table.index("Full fine-tuning") < table.index("BitFit")
    assert "Per-class metrics" in page
    assert "0.9550" in page
    assert page.index("negative") < page.index("positive")
    assert "compare-form" in page  # recent runs can be picked for comparison


def test_task_without_results_says_how_to_submit(client: Client, catalog: None) -> None:
    page = client.get("/benchmarks/glue/cola/").content.decode()
    assert "No public results on this task yet" in page
    assert "Per-class metrics" not in page


def test_method_and_backbone_pages_list_visible_runs(client: Client, showcase: Showcase) -> None:
    owner = UserFactory.create(username="private-owner")
    run_create_external(
        owner=owner,
        method=showcase.curve_run.method,
        backbone=showcase.backbone,
        task=showcase.curve_run.task,
        config={},
        seed=99,
        scores={"accuracy": 0.5},
        visibility=Visibility.PRIVATE,
        description=HOSTILE,
    )
    page = client.get("/methods/full_finetuning/").content.decode()
    assert "Podium can execute this method" in page
    assert "(32)" in page  # 30 leaderboard runs + the curve run and its reproduction
    listing = client.get("/methods/").content.decode()
    assert "Full fine-tuning" in listing
    backbone = client.get(f"/backbones/{showcase.backbone.key}/").content.decode()
    assert "google-bert/bert-large-cased" in backbone
    assert "The 50 newest are shown" in backbone  # 123 public runs on it
    client.force_login(owner)
    assert "(33)" in client.get("/methods/full_finetuning/").content.decode()


def test_staff_see_admin_links_others_do_not(client: Client, showcase: Showcase) -> None:
    pages = [
        "/suites/glue/",
        "/benchmarks/glue/sst2/",
        "/methods/lora/",
        f"/backbones/{showcase.backbone.key}/",
        f"/runs/{showcase.curve_run.uuid}/",
    ]
    for path in pages:
        assert "/admin/" not in client.get(path).content.decode(), path
    client.force_login(UserFactory.create(username="root", is_staff=True))
    for path in pages:
        assert "/admin/" in client.get(path).content.decode(), path


def test_home_shows_the_queue_and_how_to_start(client: Client, catalog: None) -> None:
    page = client.get("/").content.decode()
    assert "No runs yet." in page
    assert 'href="/submit/"' in page
    assert "0</strong> running" in page


def test_home_counts_the_queue(client: Client, showcase: Showcase) -> None:
    page = client.get("/").content.decode()
    assert "1</strong> running" in page  # the live run
    assert "Compare selected runs" in page
