"""Reading rendered dashboard pages in tests."""

from __future__ import annotations

import html
import json
import re
from typing import Any


def board_systems(page: str) -> list[str]:
    """The method names of the leaderboard's rows, top to bottom."""
    table = re.search(r'<table id="leaderboard".*?</table>', page, re.S)
    assert table, "the page has a leaderboard table"
    labels = re.findall(r'<span class="system-name">(.*?)</span>', table.group(0))
    return [html.unescape(label).split(" · ")[0] for label in labels]


def embedded_json(page: str, element_id: str) -> Any:
    """The JSON a page embeds with json_script under `element_id`."""
    match = re.search(
        rf'<script id="{re.escape(element_id)}" type="application/json">(.*?)</script>', page
    )
    assert match, f"the page embeds {element_id} as JSON"
    return json.loads(match.group(1))
