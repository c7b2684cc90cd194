"""HTML and script in user strings are shown, never run.

Method and backbone names, tags, descriptions, status reasons, log tails, worker names,
metric keys, display names and the system labels made of them all carry markup here. Every
dashboard page (enumerated from the URL resolver, so a new page needs a case) must show them
escaped: never raw in the HTML, and inside charts only through `json_script` with the markup
escaped for plotly (whose labels understand a subset of HTML). A browser test loads every
page in Chromium and fails if any of that markup ever runs.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import Profile
from catalog.models import Backbone, Method, Suite, Task
from catalog.selectors import suite_version_latest
from dashboard.selectors import suite_leaderboard
from dashboard.snapshots import snapshot_freeze
from tests.factories import UserFactory
from tracking.jobs import runs_request
from tracking.models import Job, LeaderboardSnapshot, MetricPoint, Run, Tag, Visibility
from tracking.services import run_create_external

SCRIPT = '<script>alert("xss-script")</script>'
IMAGE = '"><img src=x onerror=alert("xss-img")>'
HOSTILE = f"{SCRIPT}{IMAGE}"
RAW = ("<script>alert(", "<img src=x")  # the tags themselves: their text is harmless
ESCAPED = ("&lt;script&gt;alert(", "&lt;img src=x onerror=alert(")
JSON_BLOCK = re.compile(r'<script id="([^"]+)" type="application/json">(.*?)</script>', re.S)


@dataclass(frozen=True, kw_only=True)
class Hostile:
    owner: User
    run: Run  # scored, public, with hostile everything
    queued: Run
    snapshot: LeaderboardSnapshot


def build_hostile_world() -> Hostile:
    call_command("load_catalog", verbosity=0)
    owner = UserFactory.create(username="mallory")
    Profile.objects.create(user=owner, display_name=f"Mallory {HOSTILE}")
    method = Method.objects.create(
        key="evil", name=f"Evil {SCRIPT}", description=HOSTILE, executable=False
    )
    backbone = Backbone.objects.create(
        key="evilbone", name=f"Bone {IMAGE}", source="hub", hub_id="org/evil"
    )
    sst2 = Task.objects.get(benchmark__key="glue", key="sst2", is_current=True)
    runs = [
        run_create_external(
            owner=owner,
            method=method,
            backbone=backbone,
            task=sst2,
            config={"note": HOSTILE, HOSTILE: 1},
            seed=seed,
            scores={"accuracy": 0.7 + seed / 100},
            description=f"Run {HOSTILE}",
        )
        for seed in (1, 2)
    ]
    # Tags are slugs when they come through the services; the page must not rely on it.
    runs[0].tags.add(Tag.objects.create(name=IMAGE))  # a tag is at most 64 characters
    Run.objects.filter(pk=runs[0].pk).update(status_reason=f"Reason {HOSTILE}")
    MetricPoint.objects.bulk_create(
        MetricPoint(run=runs[0], key=f"loss {SCRIPT}", step=step, value=1 / step, recorded_at=now)
        for step, now in ((s, timezone.now()) for s in range(1, 6))
    )
    (queued,) = runs_request(
        owner=owner,
        method=Method.objects.get(key="majority"),
        backbone=backbone,
        config={},
        seeds=[3],
        task=sst2,
        visibility=Visibility.PUBLIC,
    )
    Job.objects.filter(run=queued).update(worker=f"gpu {SCRIPT}", log_tail=f"log {HOSTILE}")
    version = suite_version_latest(suite=Suite.objects.get(key="glue"))
    assert version is not None
    board = suite_leaderboard(suite_version=version, viewer=None, rule="official", missing="")
    return Hostile(
        owner=owner,
        run=runs[0],
        queued=queued,
        snapshot=snapshot_freeze(board=board, suite_version=version, created_by=owner),
    )


def none(h: Hostile) -> str:
    return ""


# Each page: the query string it is read with (pages are GETs; POST-only routes say None).
PAGES: dict[str, tuple[Callable[[Hostile], dict[str, Any]], Callable[[Hostile], str] | None]] = {
    "dashboard:home": (lambda h: {}, none),
    "dashboard:benchmark": (lambda h: {"key": "glue"}, none),
    "dashboard:task": (lambda h: {"benchmark": "glue", "key": "sst2"}, none),
    "dashboard:suite": (lambda h: {"key": "glue"}, none),
    "dashboard:suite-rules": (lambda h: {"key": "glue"}, none),
    "dashboard:suite-efficiency": (lambda h: {"key": "glue"}, none),
    "dashboard:suite-freeze": (lambda h: {"key": "glue"}, None),
    "dashboard:snapshot": (lambda h: {"uuid": h.snapshot.uuid}, none),
    "dashboard:jobs": (lambda h: {}, none),
    "dashboard:run": (lambda h: {"uuid": h.run.uuid}, none),
    "dashboard:run-live": (lambda h: {"uuid": h.run.uuid}, none),
    "dashboard:run-reproduce": (lambda h: {"uuid": h.run.uuid}, None),
    "dashboard:compare": (lambda h: {}, lambda h: f"runs={h.run.uuid},{h.queued.uuid}"),
    "dashboard:methods": (lambda h: {}, none),
    "dashboard:method": (lambda h: {"key": "evil"}, none),
    "dashboard:backbones": (lambda h: {}, none),
    "dashboard:backbone": (lambda h: {"key": "evilbone"}, none),
    "dashboard:submit": (lambda h: {}, lambda h: f"task={h.run.task.pk}"),
    "dashboard:plotly-js": (lambda h: {}, None),  # plotly.js itself
}
# Pages that must show the hostile strings (escaped): proof that the check is not vacuous.
SHOWS_THEM = {
    "dashboard:home",
    "dashboard:suite",
    "dashboard:suite-rules",
    "dashboard:suite-efficiency",
    "dashboard:snapshot",
    "dashboard:jobs",
    "dashboard:run",
    "dashboard:compare",
    "dashboard:methods",
    "dashboard:method",
    "dashboard:backbones",
    "dashboard:backbone",
}


def dashboard_routes() -> set[str]:
    names: set[str] = set()

    def walk(patterns: list[Any], namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, inner)
            elif isinstance(pattern, URLPattern) and namespace == "dashboard:":
                names.add(namespace + str(pattern.name))

    walk(get_resolver().url_patterns, "")
    return names


def test_every_dashboard_page_has_an_escaping_case() -> None:
    assert dashboard_routes() == set(PAGES)


def page_urls(hostile: Hostile) -> Iterator[tuple[str, str]]:
    for name, (kwargs, query) in PAGES.items():
        if query is None:
            continue
        path = reverse(name, kwargs=kwargs(hostile))
        filled = query(hostile)
        yield name, f"{path}?{filled}" if filled else path


def json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)


@pytest.mark.django_db
def test_every_page_shows_user_strings_escaped() -> None:
    hostile = build_hostile_world()
    viewer = Client()
    viewer.force_login(hostile.owner)  # the owner sees the most: forms, own runs
    shown_in_charts = False
    for name, url in page_urls(hostile):
        response = viewer.get(url)
        assert response.status_code == 200, (url, response.status_code)
        text = response.content.decode()
        if response["Content-Type"].startswith("application/json"):
            continue  # data for scripts, never parsed as HTML
        for raw in RAW:
            assert raw not in text, f"{url} shows {raw!r} unescaped"
        if name in SHOWS_THEM:
            assert any(escaped in text for escaped in ESCAPED), f"{url} shows no user string"
        for block_id, content in JSON_BLOCK.findall(text):
            for string in json_strings(json.loads(content)):
                # plotly reads label markup: tags must arrive escaped, as entities.
                assert "<script" not in string, (url, block_id, string)
                assert "<img" not in string, (url, block_id, string)
                shown_in_charts = shown_in_charts or "&lt;script&gt;" in string
    assert shown_in_charts, "no chart carried a user string: the chart check proves nothing"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
@pytest.mark.django_db(transaction=True)
def test_no_user_markup_runs_in_a_browser(live_server: Any) -> None:
    from playwright.sync_api import Dialog, sync_playwright

    hostile = build_hostile_world()
    ran: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()

            def on_dialog(dialog: Dialog) -> None:
                ran.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", on_dialog)
            for name, url in page_urls(hostile):
                if name == "dashboard:run-live":
                    continue  # JSON
                page.goto(live_server.url + url, wait_until="networkidle")
                injected = page.locator("img[src='x']").count()
                assert injected == 0, f"{url}: an <img> from a user string became an element"
                assert not ran, f"{url}: user markup ran: {ran}"
            # The run page draws its curves: the hostile metric key is a chart label.
            page.goto(f"{live_server.url}/runs/{hostile.run.uuid}/", wait_until="networkidle")
            assert page.locator(".js-plotly-plot").count() > 0
            assert "loss <script>" in page.locator(".js-plotly-plot").first.inner_text()
        finally:
            browser.close()
    assert not ran
