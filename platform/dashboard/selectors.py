"""Leaderboard tables for the dashboard, built from the tracking selectors."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from catalog.models import SuiteVersion, Task
from catalog.selectors import suite_version_items
from leaderboard.catalog import get_benchmark
from leaderboard.suite_score import SuiteScore, suite_score
from tracking.selectors import SeedAggregate, SystemScores, system_scores


@dataclass(frozen=True, kw_only=True)
class LeaderboardColumn:
    task: Task
    metric_key: str
    metric_name: str
    higher_is_better: bool


@dataclass(frozen=True, kw_only=True)
class LeaderboardRow:
    system: SystemScores
    cells: tuple[SeedAggregate | None, ...]  # one per column; None where no score
    official: SuiteScore | None  # the benchmark's own suite score, for official suites

    @property
    def complete(self) -> bool:
        return all(cell is not None for cell in self.cells)


@dataclass(frozen=True, kw_only=True)
class SuiteBoard:
    columns: tuple[LeaderboardColumn, ...]
    rows: tuple[LeaderboardRow, ...]
    official_score_name: str  # "" where the suite has no official score


def suite_leaderboard(
    *, suite_version: SuiteVersion, viewer: AbstractBaseUser | AnonymousUser | None
) -> SuiteBoard:
    """Every system's seed-mean primary metric on each task of a suite version."""
    columns: list[LeaderboardColumn] = []
    for item in suite_version_items(suite_version=suite_version):
        primary = next(m for m in item.task.metrics.all() if m.key == item.task.primary_metric)
        columns.append(
            LeaderboardColumn(
                task=item.task,
                metric_key=primary.key,
                metric_name=primary.name,
                higher_is_better=primary.higher_is_better,
            )
        )
    systems = system_scores(task_ids=[c.task.pk for c in columns], viewer=viewer)
    official_key = str(suite_version.aggregation.get("official_score", ""))
    benchmark = get_benchmark(key=official_key) if official_key else None
    task_keys = {c.task.pk: c.task.key for c in columns}
    rows = []
    for system in systems:
        official = None
        if benchmark is not None:
            results: dict[str, dict[str, float]] = {}
            for (task_id, metric_key), aggregate in system.scores.items():
                results.setdefault(task_keys[task_id], {})[metric_key] = aggregate.mean
            official = suite_score(benchmark=benchmark, results=results)
        rows.append(
            LeaderboardRow(
                system=system,
                cells=tuple(system.scores.get((c.task.pk, c.metric_key)) for c in columns),
                official=official,
            )
        )
    # The official score orders the table; systems without one (incomplete) follow.
    rows.sort(
        key=lambda r: (
            r.official is None or r.official.value is None,
            -(r.official.value or 0.0) if r.official else 0.0,
            r.system.label,
        )
    )
    return SuiteBoard(
        columns=tuple(columns),
        rows=tuple(rows),
        official_score_name=f"{benchmark.name} score" if benchmark else "",
    )
