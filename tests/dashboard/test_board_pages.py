"""The suite page shows a board a page at a time: filters narrow the rows first, ranks
stay those over the whole board, and the pager keeps the rule and filters."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from tests.dashboard.pages import board_systems
from tests.dashboard.scenario import Showcase

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dashboard.views.PAGE_SIZE", 2)


def ranks(page: str) -> list[str]:
    table = re.search(r'<table id="leaderboard".*?</table>', page, re.S)
    assert table
    return re.findall(r'<tr>\s*<td class="num" data-sort="(\d*)">', table.group(0))


def pager_links(page: str) -> dict[str, str]:
    """The pager's links by rel (prev, next), unescaped."""
    return {
        rel: html.unescape(href)
        for href, rel in re.findall(r'<a href="([^"]+)" rel="(prev|next)">', page)
    }


def test_the_board_comes_in_pages_with_global_ranks(
    client: Client, showcase: Showcase, two_a_page: None
) -> None:
    first = client.get("/suites/glue/").content.decode()
    assert board_systems(first) == ["Specialist", "Full fine-tuning"]
    assert ranks(first) == ["1", "2"]
    assert "Systems 1\N{EN DASH}2 of 4 · page 1 of 2" in first
    assert "prev" not in pager_links(first)
    second = client.get("/suites/glue/" + pager_links(first)["next"]).content.decode()
    assert board_systems(second) == ["LoRA", "BitFit"]
    assert ranks(second) == ["3", "4"]  # over the whole board, not restarting per page
    assert "Systems 3\N{EN DASH}4 of 4 · page 2 of 2" in second
    assert "next" not in pager_links(second)
    assert pager_links(second)["prev"] == "?"


def test_filters_apply_before_paging_and_the_pager_keeps_them(
    client: Client, showcase: Showcase, two_a_page: None
) -> None:
    # Kemeny ranks Full fine-tuning first; the executed systems are all but Specialist.
    query = "?rule=kemeny&missing=pairwise&provenance=executed"
    first = client.get(f"/suites/glue/{query}").content.decode()
    assert "Showing 3 of 4 systems" in first
    assert "Systems 1\N{EN DASH}2 of 3 · page 1 of 2" in first
    assert "Specialist" not in board_systems(first)
    following = pager_links(first)["next"]
    assert following == "?rule=kemeny&missing=pairwise&provenance=executed&page=2"
    second = client.get(f"/suites/glue/{following}").content.decode()
    assert len(board_systems(second)) == 1
    assert "Specialist" not in board_systems(second)
    shown = board_systems(first) + board_systems(second)
    assert sorted(shown) == ["BitFit", "Full fine-tuning", "LoRA"]


def test_a_board_on_one_page_has_no_pager(client: Client, showcase: Showcase) -> None:
    page = client.get("/suites/glue/").content.decode()
    assert len(board_systems(page)) == 4
    assert 'class="pager"' not in page


@pytest.mark.parametrize(
    ("page", "says"),
    [("0", "not a page number"), ("x", "not a page number"), ("3", "past the last page, 2")],
)
def test_a_bad_page_is_a_400(
    client: Client, showcase: Showcase, two_a_page: None, page: str, says: str
) -> None:
    response = client.get("/suites/glue/", {"page": page})
    assert response.status_code == 400
    assert says in response.content.decode()
