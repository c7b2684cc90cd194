"""The dashboard in a real headless Chromium (Debian's, driven by Playwright; nothing is
downloaded): switching the ranking rule, a run's curves drawn and updated live, comparing
runs, sorting by keyboard, a narrow screen. Any JavaScript error fails the test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from tests.dashboard.scenario import Showcase, build_showcase
from tracking.models import MetricPoint, Score
from tracking.services import run_transition
from tracking.status import RunStatus

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.django_db(transaction=True),  # the live server reads from another thread
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no chromium on PATH: install Debian's package (apt-get install chromium)",
    ),
]
TIMEOUT_MS = 20_000


@dataclass
class Browser:
    page: Any  # playwright.sync_api.Page
    base: str
    errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.page.goto(self.base + path, wait_until="load")

    def assert_clean(self) -> None:
        assert self.errors == [], "the browser reported errors: " + "; ".join(self.errors)


@pytest.fixture
def browser(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
    # meanwhile are still plain synchronous calls, which Django allows with this switch.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = chromium.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        opened = Browser(page=page, base=live_server.url)

        def console(message: Any) -> None:
            if message.type == "error":
                opened.errors.append(f"console error: {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda error: opened.errors.append(f"page error: {error}"))
        page.on("dialog", lambda dialog: opened.errors.append(f"dialog: {dialog.message}"))
        yield opened
        chromium.close()
        # Connections opened while Playwright's loop ran belong to that context: close them
        # here, or the test database cannot be dropped at the end of the session.
        connections.close_all()


@pytest.fixture
def showcase() -> Showcase:
    return build_showcase()


def board_order(browser: Browser) -> list[str]:
    names = browser.page.locator("#leaderboard tbody .system-name").all_inner_texts()
    return [name.split(" · ")[0] for name in names]


def choose_rule(browser: Browser, rule: str) -> None:
    browser.page.select_option("#rule-select", rule)
    with browser.page.expect_navigation():
        browser.page.click("#apply-options")
    assert f"rule={rule}" in browser.page.url


def test_switching_the_rule_reorders_the_leaderboard(browser: Browser, showcase: Showcase) -> None:
    browser.open("/suites/glue/")
    official = board_order(browser)
    assert official[0] == "Specialist"  # the best GLUE score
    choose_rule(browser, "mean")
    by_mean = board_order(browser)
    choose_rule(browser, "kemeny")
    by_kemeny = board_order(browser)
    assert by_mean[0] == "Specialist"
    assert by_kemeny[0] == "Full fine-tuning"  # wins 7 of 10 tasks against the Specialist
    assert by_mean != by_kemeny
    assert sorted(by_mean) == sorted(by_kemeny)
    page = browser.page
    assert "Winner under kemeny" in page.inner_text("main")
    assert page.locator("#leaderboard thead th", has_text="P(win)").count() == 1
    browser.assert_clean()


def test_columns_sort_from_the_keyboard(browser: Browser, showcase: Showcase) -> None:
    browser.open("/suites/glue/?rule=kemeny")
    header = browser.page.locator("#leaderboard thead th", has_text="System")
    header.locator("button").focus()
    browser.page.keyboard.press("Enter")
    assert header.get_attribute("aria-sort") == "ascending"
    assert board_order(browser) == sorted(board_order(browser))
    browser.page.keyboard.press("Enter")
    assert header.get_attribute("aria-sort") == "descending"
    assert board_order(browser) == sorted(board_order(browser), reverse=True)
    browser.assert_clean()


def test_a_run_page_draws_its_curves(browser: Browser, showcase: Showcase) -> None:
    browser.open(f"/runs/{showcase.curve_run.uuid}/")
    lines = browser.page.locator("#curves.js-plotly-plot .scatterlayer path.js-line")
    lines.first.wait_for()
    assert lines.count() == 3  # train/loss, eval/accuracy, learning_rate
    # Each line is drawn: a move and at least one segment.
    assert all("L" in (path.get_attribute("d") or "") for path in lines.all())
    text = browser.page.inner_text("main")
    assert "Reproductions of this run" in text
    assert "agrees" in text
    browser.assert_clean()


def test_hostile_metric_names_show_literally_in_charts(
    browser: Browser, showcase: Showcase
) -> None:
    hostile = '<img src=x onerror="alert(1)"><b>bold</b>'
    MetricPoint.objects.bulk_create(
        MetricPoint(
            run=showcase.curve_run, key=hostile, step=s, value=s / 10, recorded_at=timezone.now()
        )
        for s in range(1, 4)
    )
    browser.open(f"/runs/{showcase.curve_run.uuid}/")
    browser.page.locator("#curves .scatterlayer path.js-line").first.wait_for()
    titles = browser.page.locator("#curves text[class*='title']")
    assert hostile in [t.text_content() for t in titles.all()]
    assert browser.page.locator("#curves img").count() == 0
    browser.assert_clean()  # includes: no alert dialog opened


def test_live_curves_grow_while_the_run_trains(
    browser: Browser, showcase: Showcase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dashboard.views.LIVE_POLL_SECONDS", 1)
    run = showcase.live_run
    browser.open(f"/runs/{run.uuid}/")
    browser.page.locator("#curves .scatterlayer path.js-line").first.wait_for()
    points = "document.getElementById('curves').data[0].x.length"
    assert browser.page.evaluate(points) == 40
    now = timezone.now()
    MetricPoint.objects.bulk_create(
        MetricPoint(run=run, key="train/loss", step=s, value=0.3, recorded_at=now)
        for s in range(41, 81)
    )
    browser.page.wait_for_function(f"{points} === 80")
    Score.objects.create(run=run, metric=run.task.metrics.get(key="accuracy"), value=0.7125)
    with browser.page.expect_navigation():  # the final state reloads the page once
        run_transition(run_id=run.pk, to=RunStatus.SUCCEEDED, reason="result recorded")
    main = browser.page.inner_text("main")
    assert "0.7125" in main
    assert browser.page.locator("[data-live-url]").count() == 0
    browser.assert_clean()


def test_runs_picked_from_a_list_are_compared(browser: Browser, showcase: Showcase) -> None:
    browser.open(f"/benchmarks/glue/{showcase.curve_run.task.key}/")
    for run in (showcase.curve_run, showcase.reproduction):
        browser.page.check(f"#pick-{run.uuid}")
    with browser.page.expect_navigation():
        browser.page.click("text=Compare selected runs")
    assert browser.page.url.endswith(
        f"/compare/?runs={showcase.curve_run.uuid},{showcase.reproduction.uuid}"
    ) or browser.page.url.endswith(
        f"/compare/?runs={showcase.reproduction.uuid},{showcase.curve_run.uuid}"
    )
    lines = browser.page.locator(".chart .scatterlayer path.js-line")
    lines.first.wait_for()
    assert lines.count() == 6  # three curves, two runs each
    browser.assert_clean()


def test_pages_fit_a_narrow_screen(browser: Browser, showcase: Showcase) -> None:
    browser.page.set_viewport_size({"width": 390, "height": 844})
    run = f"/runs/{showcase.curve_run.uuid}/"
    for path in ("/", "/suites/glue/?rule=kemeny", "/suites/glue/rules/", run):
        browser.open(path)
        overflow = browser.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
    browser.assert_clean()
