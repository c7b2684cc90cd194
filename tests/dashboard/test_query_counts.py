"""Every page reads as many queries with 20 runs of each kind as with one (no N+1).

One of each kind (five visible runs) stays below every list's cap (the home page shows the
10 newest runs), so a query per listed run would show up as a difference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.models import SuiteVersion
from dashboard.selectors import suite_leaderboard
from dashboard.snapshots import snapshot_freeze
from tests.dashboard.population import Population, populate

pytestmark = pytest.mark.django_db

Page = Callable[[Population], str]

PAGES: dict[str, Page] = {
    "home": lambda p: "/",
    "benchmark": lambda p: "/benchmarks/glue/",
    "task": lambda p: "/benchmarks/glue/sst2/",
    "suite": lambda p: "/suites/glue/?missing=pairwise",
    "suite-kemeny": lambda p: "/suites/glue/?rule=kemeny&missing=pairwise",
    "suite-filtered": lambda p: "/suites/glue/?rule=borda&missing=median&method=lora",
    "rules": lambda p: "/suites/glue/rules/?missing=pairwise",
    "efficiency": lambda p: "/suites/glue/efficiency/?missing=pairwise",
    "jobs": lambda p: "/jobs/",
    "run": lambda p: f"/runs/{p.executed[0].uuid}/",
    "run-external": lambda p: f"/runs/{p.external[0].uuid}/",
    "run-live": lambda p: f"/runs/{p.executed[0].uuid}/live/",
    "compare": lambda p: "/compare/?runs=" + ",".join(str(r.uuid) for r in p.executed),
    "methods": lambda p: "/methods/",
    "method": lambda p: f"/methods/{p.method.key}/",
    "backbones": lambda p: "/backbones/",
    "backbone": lambda p: f"/backbones/{p.backbone.key}/",
    "submit": lambda p: f"/submit/?task={p.executed[0].task_id}",
    "snapshot": lambda p: f"/snapshots/{_snapshot(p)}/",
}


def _snapshot(population: Population) -> str:
    version = SuiteVersion.objects.get(suite__key="glue")
    board = suite_leaderboard(
        suite_version=version, viewer=None, rule="copeland", missing="pairwise"
    )
    snapshot = snapshot_freeze(board=board, suite_version=version, created_by=population.owner)
    return str(snapshot.uuid)


def _count(client: Client, url: str) -> int:
    cache.clear()  # cold: computed leaderboards are cached
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_queries_do_not_grow_with_runs(client: Client, catalog: None, page: str) -> None:
    few = populate(per_kind=1)
    client.force_login(few.owner)
    with_few = _count(client, PAGES[page](few))
    more = populate(per_kind=19, start=1)
    many = dataclasses.replace(
        few, executed=few.executed + more.executed, external=few.external + more.external
    )
    with_many = _count(client, PAGES[page](many))
    assert with_few == with_many, (
        f"{page}: {with_few} queries with 1 run per kind, {with_many} with 20"
    )
