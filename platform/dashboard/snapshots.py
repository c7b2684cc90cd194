"""Freezing a leaderboard into a citable snapshot."""

from __future__ import annotations

import math
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from catalog.models import SuiteVersion
from dashboard.selectors import SuiteBoard
from tracking.models import LeaderboardSnapshot


def _number(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def snapshot_content(*, board: SuiteBoard, suite_version: SuiteVersion) -> dict[str, Any]:
    return {
        "suite": suite_version.suite.key,
        "suite_name": suite_version.suite.name,
        "suite_version": suite_version.number,
        "rule": board.rule,
        "missing": board.missing,
        "frozen_at": timezone.now().isoformat(),
        "columns": [
            {
                "task": f"{c.task.benchmark.key}/{c.task.key}",
                "task_name": c.task.name,
                "task_version": c.task.version,
                "metric": c.metric_key,
                "higher_is_better": c.higher_is_better,
                "weight": c.weight,
            }
            for c in board.columns
        ],
        "rows": [
            {
                "system": row.system.label,
                "method": row.system.method.key,
                "backbone": row.system.backbone.key,
                "config": row.system.config,
                "provenance": sorted(row.system.provenance_tiers),
                "rank": row.rank,
                "rule_score": _number(row.rule_score),
                "official": _number(row.official.value) if row.official else None,
                "cells": [
                    None
                    if cell is None
                    else {"mean": cell.mean, "std": cell.std, "count": cell.count}
                    for cell in row.cells
                ],
            }
            for row in board.rows
        ],
        "winners": list(board.winners),
        "details": board.result.to_dict().get("details", {}) if board.result else {},
    }


def snapshot_freeze(
    *, board: SuiteBoard, suite_version: SuiteVersion, created_by: User | None
) -> LeaderboardSnapshot:
    if board.error:
        raise ValueError(f"this leaderboard cannot be frozen: {board.error}")
    if not board.rows:
        raise ValueError("this leaderboard has no systems yet; there is nothing to freeze")
    rule = "official score" if board.rule == "official" else board.rule
    return LeaderboardSnapshot.objects.create(
        suite_version=suite_version,
        rule=board.rule,
        missing=board.missing,
        title=f"{suite_version.suite.name} v{suite_version.number} leaderboard ({rule})",
        content=snapshot_content(board=board, suite_version=suite_version),
        created_by=created_by,
    )


def snapshot_bibtex(*, snapshot: LeaderboardSnapshot, url: str) -> str:
    key = f"podium-{snapshot.content['suite']}-{snapshot.uuid.hex[:8]}"
    return (
        f"@misc{{{key},\n"
        f"  title        = {{{{{snapshot.title}}}}},\n"
        f"  howpublished = {{\\url{{{url}}}}},\n"
        f"  year         = {{{snapshot.created_at:%Y}}},\n"
        f"  note         = {{Podium leaderboard snapshot, frozen {snapshot.created_at:%Y-%m-%d}}}\n"
        f"}}\n"
    )
