"""Suite leaderboards: systems' seed means per task, the official score, and a ranking rule.

Every leaderboard is computed by the ranking engine (leaderboard.ranking) for the chosen
rule, cached under a key that names the suite's tasks with their leaderboard stamps
(tracking.models.BoardStamp), which every change to what a board shows moves on in its
own transaction (a new or withdrawn run, a visibility or review change, scores, flags,
deletes). Reading the key costs one small query whatever the number of runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache

from catalog.models import Suite, SuiteTask, SuiteVersion, Task
from catalog.selectors import suite_version_items
from leaderboard.catalog import get_benchmark, get_task
from leaderboard.ranking import RULES, RankingInputError, RankingResult, ScoreTable, rank
from leaderboard.suite_score import SuiteScore, suite_score, task_score
from tracking.models import ProvenanceTier
from tracking.selectors import SeedAggregate, SystemScores, system_scores

OFFICIAL = "official"
CACHE_SECONDS = 3600
# Rows a page of a board shows (the API's default page size), and the most an API page may.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Part of every board's cache key: bump it when what is cached changes shape, so a shared
# cache never hands a new release an old release's objects.
BOARD_FORMAT = 2
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class LeaderboardColumn:
    task: Task
    metric_key: str
    metric_name: str
    higher_is_better: bool
    weight: float


@dataclass(frozen=True, kw_only=True)
class LeaderboardRow:
    system: SystemScores
    cells: tuple[SeedAggregate | None, ...]  # one per column; None where no score
    official: SuiteScore | None  # the benchmark's own suite score, for official suites
    rank: int | None  # under the chosen rule; None where the rule leaves a system unranked
    rule_score: float | None

    @property
    def complete(self) -> bool:
        return all(cell is not None for cell in self.cells)


@dataclass(frozen=True, kw_only=True)
class SuiteBoard:
    columns: tuple[LeaderboardColumn, ...]
    rows: tuple[LeaderboardRow, ...]
    official_score_name: str  # "" where the suite has no official score
    rule: str
    missing: str
    winners: tuple[str, ...]
    error: str  # why the rule could not rank this table, with what to try instead
    result: RankingResult | None
    table: ScoreTable | None
    # The cache key this board is stored under; views derived from it extend it.
    cache_key: str = ""


def leaderboard_rules() -> list[str]:
    return [OFFICIAL, *sorted(RULES)]


def _task_score_rows(
    systems: list[SystemScores], columns: list[LeaderboardColumn]
) -> list[list[float]]:
    """Each system's score per task for ranking: the benchmark's own task score (paired
    metrics averaged, as its official score does), NaN where the system has none."""
    # Definitions are looked up once per column, not once per system and column.
    scorers = [
        (
            column.task.pk,
            get_task(benchmark=column.task.benchmark.key, key=column.task.key),
            get_benchmark(key=column.task.benchmark.key).suite_score,
        )
        for column in columns
    ]
    rows = []
    for system in systems:
        by_task: dict[int, dict[str, float]] = {}
        for (task_id, key), aggregate in system.scores.items():
            by_task.setdefault(task_id, {})[key] = aggregate.mean
        row = []
        for task_id, definition, method in scorers:
            score = task_score(task=definition, metrics=by_task.get(task_id, {}), method=method)
            row.append(math.nan if score is None else score)
        rows.append(row)
    return rows


def suite_board_key(
    *,
    suite_version: SuiteVersion,
    viewer: AbstractBaseUser | AnonymousUser | None,
    rule: str = OFFICIAL,
    missing: str = "",
) -> str:
    """The cache key of a board: its suite version, tasks and weights, and each task's
    leaderboard stamp, so it changes whenever anything the board shows does. One query on
    the suite's few tasks; a cached page or API answer derived from the board extends it
    (see `board_derived`) and need not load the board itself.

    Read it before computing the board: a change committed in between then leaves the
    board cached under the old key, never old data under the new one."""
    items = (
        SuiteTask.objects.filter(suite_version=suite_version)
        .order_by("position", "task_id")
        .values_list("task_id", "weight", "task__board_stamp__revision")
    )
    tasks = ",".join(f"{task}/{weight!r}@{revision or 0}" for task, weight, revision in items)
    scope = f"user{viewer.pk}" if viewer is not None and viewer.is_authenticated else "public"
    key_source = (
        f"{BOARD_FORMAT}:{suite_version.pk}:{suite_version.aggregation.get('official_score', '')}"
        f":{rule}:{missing}:{scope}:{tasks}"
    )
    return "suite-board:" + hashlib.sha256(key_source.encode()).hexdigest()


def suite_leaderboard(
    *,
    suite_version: SuiteVersion,
    viewer: AbstractBaseUser | AnonymousUser | None,
    rule: str = OFFICIAL,
    missing: str = "",
    key: str = "",
) -> SuiteBoard:
    """The leaderboard of a suite version under `rule` (and missing-score policy); `key`:
    its `suite_board_key`, when the caller has it already."""
    key = key or suite_board_key(
        suite_version=suite_version, viewer=viewer, rule=rule, missing=missing
    )
    cached: SuiteBoard | None = cache.get(key)
    if cached is not None:
        return cached
    items = list(suite_version_items(suite_version=suite_version))
    board = _compute(
        suite_version=suite_version, items=items, viewer=viewer, rule=rule, missing=missing
    )
    board = dataclasses.replace(board, cache_key=key)
    cache.set(key, board, CACHE_SECONDS)
    return board


def _compute(
    *,
    suite_version: SuiteVersion,
    items: list,  # type: ignore[type-arg]
    viewer: AbstractBaseUser | AnonymousUser | None,
    rule: str,
    missing: str,
) -> SuiteBoard:
    columns: list[LeaderboardColumn] = []
    for item in items:
        primary = next(m for m in item.task.metrics.all() if m.key == item.task.primary_metric)
        columns.append(
            LeaderboardColumn(
                task=item.task,
                metric_key=primary.key,
                metric_name=primary.name,
                higher_is_better=primary.higher_is_better,
                weight=item.weight,
            )
        )
    systems = system_scores(task_ids=[c.task.pk for c in columns], viewer=viewer)
    official_key = str(suite_version.aggregation.get("official_score", ""))
    benchmark = get_benchmark(key=official_key) if official_key else None
    task_keys = {c.task.pk: c.task.key for c in columns}

    officials: list[SuiteScore | None] = []
    for system in systems:
        official = None
        if benchmark is not None:
            results: dict[str, dict[str, float]] = {}
            for (task_id, metric_key), aggregate in system.scores.items():
                results.setdefault(task_keys[task_id], {})[metric_key] = aggregate.mean
            official = suite_score(benchmark=benchmark, results=results)
        officials.append(official)

    labels = [s.label for s in systems]
    table: ScoreTable | None = None
    result: RankingResult | None = None
    error = ""
    if systems and columns:
        table = ScoreTable.build(
            systems=labels,
            tasks=[c.task.key for c in columns],
            scores=_task_score_rows(systems, columns),
            lower_is_better=[c.task.key for c in columns if not c.higher_is_better],
        )
    if table is not None and rule != OFFICIAL:
        try:
            result = rank(
                table,
                rule=rule,
                weights={c.task.key: c.weight for c in columns},
                missing=missing or None,
            )
        except (RankingInputError, KeyError, ValueError) as problem:
            error = str(problem).strip("'\"")
    ranks = {e.system: (e.rank, e.score) for e in result.ranking} if result else {}

    rows = [
        LeaderboardRow(
            system=system,
            cells=tuple(system.scores.get((c.task.pk, c.metric_key)) for c in columns),
            official=official,
            rank=ranks.get(system.label, (None, None))[0],
            rule_score=ranks.get(system.label, (None, None))[1],
        )
        for system, official in zip(systems, officials, strict=True)
    ]
    if result is not None:
        rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.system.label))
    else:
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
        rule=rule,
        missing=missing,
        winners=result.winners if result else (),
        error=error,
        result=result,
        table=table,
    )


@dataclass(frozen=True, kw_only=True)
class BoardFilters:
    """What a leaderboard's rows can be narrowed to; "" keeps every row."""

    method: str = ""  # method key
    backbone: str = ""  # backbone key
    provenance: str = ""  # a ProvenanceTier value

    @property
    def active(self) -> bool:
        return bool(self.method or self.backbone or self.provenance)


@dataclass(frozen=True, kw_only=True)
class FilterOptions:
    methods: tuple[tuple[str, str], ...]  # (key, name) of the methods on the board
    backbones: tuple[tuple[str, str], ...]
    provenance: tuple[tuple[str, str], ...]  # (tier, label)


def board_rows_filtered(*, board: SuiteBoard, filters: BoardFilters) -> list[LeaderboardRow]:
    """The board's rows that match every filter. Ranks stay those among all systems: a
    filter narrows what is shown, it does not re-run the election."""
    return [
        row
        for row in board.rows
        if (not filters.method or row.system.method.key == filters.method)
        and (not filters.backbone or row.system.backbone.key == filters.backbone)
        and (not filters.provenance or filters.provenance in row.system.provenance_tiers)
    ]


def board_filter_options(*, board: SuiteBoard) -> FilterOptions:
    methods = {row.system.method.key: row.system.method.name for row in board.rows}
    backbones = {row.system.backbone.key: row.system.backbone.name for row in board.rows}
    tiers = {tier for row in board.rows for tier in row.system.provenance_tiers}
    return FilterOptions(
        methods=tuple(sorted(methods.items(), key=lambda kv: kv[1].lower())),
        backbones=tuple(sorted(backbones.items(), key=lambda kv: kv[1].lower())),
        provenance=tuple((t.value, t.label) for t in ProvenanceTier if t.value in tiers),
    )


def board_ranks(*, board: SuiteBoard) -> dict[str, int]:
    """Each ranked system's rank by label: the rule's own, or under the official score its
    competition rank by that score (equal scores share a rank); unranked systems absent."""
    if board.result is not None:
        return {row.system.label: row.rank for row in board.rows if row.rank is not None}
    scored = [
        (row.system.label, row.official.value)
        for row in board.rows
        if row.official is not None
        and row.official.value is not None
        and not math.isnan(row.official.value)
    ]
    # Competition ranks: 1 + how many score strictly higher (sorted once, not n^2).
    ranks: dict[str, int] = {}
    ordered = sorted(scored, key=lambda pair: -pair[1])
    for position, (label, value) in enumerate(ordered):
        if position and ordered[position - 1][1] == value:
            ranks[label] = ranks[ordered[position - 1][0]]  # tied with the one above
        else:
            ranks[label] = position + 1
    return ranks


@dataclass(frozen=True, kw_only=True)
class BoardPage:
    """One page of a board's (filtered) rows; ranks stay those over the whole board."""

    rows: tuple[LeaderboardRow, ...]
    number: int  # from 1
    size: int
    count: int  # rows over all pages

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.count / self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


class PageOutOfRange(ValueError):
    """A page number past the board's last page; the message says which is the last."""


def board_page(*, rows: Sequence[LeaderboardRow], number: int, size: int) -> BoardPage:
    """Page `number` (from 1) of `rows` at `size` rows a page. The first page of an empty
    board exists (and is empty); any page past the last raises PageOutOfRange."""
    if number < 1 or size < 1:
        raise ValueError(f"page {number} of size {size}: both start at 1")
    last = max(1, math.ceil(len(rows) / size))
    if number > last:
        raise PageOutOfRange(
            f"Page {number} is past the last page, {last} ({len(rows)} systems, {size} a page)."
        )
    start = (number - 1) * size
    return BoardPage(
        rows=tuple(rows[start : start + size]), number=number, size=size, count=len(rows)
    )


def suite_text_stamp(*, suite: Suite) -> str:
    """What of a suite its pages and API answers show besides the board (name, description:
    editable, and in no stamp), for the keys of what is derived from a board."""
    return hashlib.sha256(f"{suite.name}\0{suite.description}".encode()).hexdigest()[:16]


def board_derived(*, key: str, part: str, build: Callable[[], T]) -> T:
    """Something derived from the board under `key` (a page of its API answer, a rendered
    page), cached beside it: whatever changes the board changes the key, so this too.
    `part` must name everything else the result depends on (page, filters, host)."""
    derived_key = f"{key}:{part}"
    found: T | None = cache.get(derived_key)
    if found is None:
        found = build()
        cache.set(derived_key, found, CACHE_SECONDS)
    return found
