"""Read side of a leaderboard's deeper views: bootstrap rank intervals, how rules compare,
efficiency against cost with the Pareto front, and curators' flags.

Each starts from a computed `SuiteBoard` (itself cached) and caches its own result under
the board's key, so it is recomputed exactly when the board's runs change. Cached values
hold plain data only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache

from dashboard.charts import ScatterPoint
from dashboard.selectors import CACHE_SECONDS, OFFICIAL, SuiteBoard
from leaderboard.catalog import get_benchmark, get_task
from leaderboard.ranking import RULES, RankingInputError, RankingResult, rank, rank_all
from leaderboard.ranking.diagnostics import (
    agreement,
    condorcet_winner,
    possible_condorcet_winners,
)
from leaderboard.ranking.uncertainty import bootstrap_seeds
from leaderboard.suite_score import task_score
from tracking.models import Flag, FlagKind, Run, Score
from tracking.selectors import SystemScores, visible_runs_filter
from tracking.status import RunStatus

Viewer = AbstractBaseUser | AnonymousUser | None
SystemKey = tuple[int, int, str, bool]  # method id, backbone id, config hash, official split
T = TypeVar("T")

N_BOOT = 200  # replicates up to FULL_BOOT_SYSTEMS systems
FULL_BOOT_SYSTEMS = 20
MIN_BOOT = 30
BOOTSTRAP_SEED = 0
ALPHA = 0.05
# Exact Kemeny in each of N_BOOT replicates takes minutes on 20 systems; the heuristic
# solver agrees with it on every published table we validate against and takes seconds.
BOOTSTRAP_PARAMS: dict[str, dict[str, Any]] = {"kemeny": {"method": "heuristic"}}


def system_key(system: SystemScores) -> SystemKey:
    return (system.method.pk, system.backbone.pk, system.config_hash, system.official_split)


def _cached(board: SuiteBoard, name: str, compute: Callable[[], T]) -> T:
    key = f"{board.cache_key}:{name}"
    found: T | None = cache.get(key)
    if found is not None:
        return found
    value = compute()
    cache.set(key, value, CACHE_SECONDS)
    return value


def _weights(board: SuiteBoard) -> dict[str, float]:
    return {c.task.key: c.weight for c in board.columns}


# --- Bootstrap over seeds ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RankUncertainty:
    low: float
    high: float
    win_probability: float

    @property
    def interval(self) -> str:
        low, high = round(self.low), round(self.high)
        return str(low) if low == high else f"{low}\N{EN DASH}{high}"


@dataclass(frozen=True, kw_only=True)
class Uncertainty:
    rule: str  # the rule the replicates were ranked by
    systems: dict[str, RankUncertainty]  # by system label
    reason: str  # why there is none, when `systems` is empty
    n_boot: int = N_BOOT
    alpha: float = ALPHA


def replicates(n_systems: int) -> int:
    """Bootstrap replicates for a board of `n_systems`: N_BOOT up to FULL_BOOT_SYSTEMS, then
    fewer, so that the pairwise rules (about n^2 work per replicate) cost the page about what
    20 systems do (a few seconds for Kemeny at 50 systems, computed once per change)."""
    scaled = round(N_BOOT * (FULL_BOOT_SYSTEMS / max(n_systems, 1)) ** 2)
    return max(MIN_BOOT, min(N_BOOT, scaled))


def _seed_scores(
    board: SuiteBoard, viewer: Viewer, labels: Mapping[SystemKey, str]
) -> dict[str, list[list[float]]]:
    """Each system's task score from every one of its runs: label -> per column, per run."""
    columns = {c.task.pk: i for i, c in enumerate(board.columns)}
    definitions = [
        (
            get_task(benchmark=c.task.benchmark.key, key=c.task.key),
            get_benchmark(key=c.task.benchmark.key).suite_score,
        )
        for c in board.columns
    ]
    per_run: dict[tuple[SystemKey, int, int], dict[str, float]] = {}
    for method_id, backbone_id, config_hash, official, task_id, run_id, metric, value in (
        Score.objects.filter(
            visible_runs_filter(viewer=viewer, prefix="run__"),
            run__task_id__in=list(columns),
            run__status=RunStatus.SUCCEEDED,
        )
        .order_by("run_id")
        .values_list(
            "run__method_id",
            "run__backbone_id",
            "run__config_hash",
            "run__on_official_split",
            "run__task_id",
            "run_id",
            "metric__key",
            "value",
        )
    ):
        key = (method_id, backbone_id, config_hash, official)
        per_run.setdefault((key, task_id, run_id), {})[metric] = value
    out: dict[str, list[list[float]]] = {}
    for (key, task_id, _), metrics in per_run.items():
        label = labels.get(key)
        if label is None:
            continue
        column = columns[task_id]
        definition, method = definitions[column]
        score = task_score(task=definition, metrics=metrics, method=method)
        if score is not None:
            cells = out.setdefault(label, [[] for _ in board.columns])
            cells[column].append(score)
    return out


def _uncertainty(board: SuiteBoard, viewer: Viewer) -> Uncertainty:
    rule = "mean" if board.rule == OFFICIAL else board.rule
    if board.table is None or board.error:
        return Uncertainty(rule=rule, systems={}, reason="")
    labels = {system_key(row.system): row.system.label for row in board.rows}
    params: dict[str, Any] = dict(BOOTSTRAP_PARAMS.get(rule, {}))
    systems = [row.system.label for row in board.rows]
    if board.rule == OFFICIAL:
        # The official score ranks complete systems by the mean of score groups (MNLI-m and
        # -mm count as one task): the mean rule over those groups orders them the same way.
        systems = [
            row.system.label
            for row in board.rows
            if row.official is not None and row.official.value is not None
        ]
        if board.official_score_name:
            params["groups"] = {
                c.task.key: get_task(benchmark=c.task.benchmark.key, key=c.task.key).score_group
                for c in board.columns
            }
    if len(systems) < 2:
        return Uncertainty(rule=rule, systems={}, reason="Fewer than two systems can be ranked.")
    runs = _seed_scores(board, viewer, labels)
    depth = max((len(cell) for label in systems for cell in runs.get(label, [])), default=0)
    if depth < 2:
        return Uncertainty(
            rule=rule,
            systems={},
            reason="Every system has a single run per task, so there is no seed-to-seed "
            "variation to resample; submit more seeds for rank intervals.",
        )
    scores = np.full((len(systems), len(board.columns), depth), np.nan)
    for i, label in enumerate(systems):
        for t, cell in enumerate(runs.get(label, [])):
            scores[i, t, : len(cell)] = cell
    try:
        result = bootstrap_seeds(
            systems=systems,
            tasks=[c.task.key for c in board.columns],
            scores=scores,
            rule=rule,
            higher_is_better=[c.higher_is_better for c in board.columns],
            n_boot=replicates(len(systems)),
            seed=BOOTSTRAP_SEED,
            alpha=ALPHA,
            weights=_weights(board),
            missing=board.missing or None,
            params=params or None,
        )
    except (RankingInputError, ValueError) as problem:
        return Uncertainty(rule=rule, systems={}, reason=str(problem).strip("'\""))
    return Uncertainty(
        rule=rule,
        n_boot=result.n_boot,
        systems={
            label: RankUncertainty(
                low=result.rank_interval[label][0],
                high=result.rank_interval[label][1],
                win_probability=result.win_probability[label],
            )
            for label in systems
        },
        reason="",
    )


def suite_uncertainty(*, board: SuiteBoard, viewer: Viewer = None) -> Uncertainty:
    """Rank intervals and the probability of winning under the board's rule, from
    resampling each system's seeds (see `replicates`; a fixed seed: deterministic)."""
    return _cached(board, "uncertainty", lambda: _uncertainty(board, viewer))


# --- Rules side by side --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PossibleWinner:
    system: str
    strict: bool  # some weights make it beat everybody; else only "nobody beats it"
    weights: tuple[tuple[str, float], ...]  # weights attaining it, largest first


@dataclass(frozen=True, kw_only=True)
class RuleComparison:
    rules: tuple[str, ...]  # rules that could rank the table
    skipped: tuple[tuple[str, str], ...]  # (rule, why not)
    descriptions: dict[str, str]
    systems: tuple[str, ...]  # ordered by their rank under the first rule
    ranks: dict[str, dict[str, int]]  # rule -> system -> rank
    winners: dict[str, tuple[str, ...]]
    tau: tuple[tuple[float | None, ...], ...]  # Kendall tau-b, rules x rules
    condorcet: str | None
    condorcet_note: str  # why the Condorcet question could not be answered, if so
    possible_winners: tuple[PossibleWinner, ...]
    possible_note: str

    @property
    def legend(self) -> list[tuple[str, str]]:
        """(rule, what it does) for the rules that ranked the table."""
        return [(rule, self.descriptions.get(rule, "")) for rule in self.rules]


def _rule_comparison(board: SuiteBoard) -> RuleComparison | None:
    table = board.table
    if table is None:
        return None
    weights = _weights(board)
    missing = board.missing or None
    outcome = rank_all(table, weights=weights, missing=missing)
    results: dict[str, RankingResult] = dict(sorted(outcome.results.items()))
    ranks = {rule: {e.system: e.rank for e in r.ranking} for rule, r in results.items()}
    reference = "mean" if "mean" in ranks else next(iter(ranks), "")
    systems = tuple(
        sorted(table.systems, key=lambda s: (ranks.get(reference, {}).get(s, math.inf), s))
    )
    try:
        tau = agreement(results).tau
    except RankingInputError:
        tau = ()
    condorcet: str | None = None
    condorcet_note = ""
    try:
        condorcet = condorcet_winner(table, weights=weights, missing=missing)
    except RankingInputError as problem:
        condorcet_note = str(problem)
    possible: list[PossibleWinner] = []
    possible_note = ""
    lp_missing = missing if missing in ("pairwise", "median") else None
    if table.has_missing and lp_missing is None:
        possible_note = (
            "Some systems lack scores: choose the pairwise or median missing-score policy "
            "to ask which systems some weights would make win."
        )
    elif table.n_systems > 1:
        for found in possible_condorcet_winners(table, missing=lp_missing):
            if found.weak:
                weights_used = sorted(
                    ((task, w) for task, w in found.weights.items() if w > 1e-6),
                    key=lambda tw: -tw[1],
                )
                possible.append(
                    PossibleWinner(
                        system=found.system, strict=found.strict, weights=tuple(weights_used)
                    )
                )
    return RuleComparison(
        rules=tuple(results),
        skipped=tuple(sorted(outcome.skipped.items())),
        descriptions={name: RULES[name].description for name in RULES},
        systems=systems,
        ranks=ranks,
        winners={rule: r.winners for rule, r in results.items()},
        tau=tuple(tuple(row) for row in tau),
        condorcet=condorcet,
        condorcet_note=condorcet_note,
        possible_winners=tuple(sorted(possible, key=lambda p: (not p.strict, p.system))),
        possible_note=possible_note,
    )


def suite_rule_comparison(*, board: SuiteBoard) -> RuleComparison | None:
    """Every rule on the board's table, their agreement, and the Condorcet questions."""
    return _cached(board, "rules", lambda: _rule_comparison(board))


# --- Efficiency ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CostAxis:
    key: str  # the key in Run.system
    label: str
    combine: str  # "mean" over runs, "max" over runs, or "suite": sum over tasks of the mean


COST_AXES = (
    CostAxis(key="trainable_parameters", label="trainable parameters", combine="mean"),
    CostAxis(key="peak_accelerator_memory_mb", label="peak accelerator memory (MB)", combine="max"),
    CostAxis(key="peak_host_memory_mb", label="peak host memory (MB)", combine="max"),
    # One seed of every task: systems with more seeds do not look more expensive.
    CostAxis(key="wall_time_s", label="compute time, one run per task (s)", combine="suite"),
)


@dataclass(frozen=True, kw_only=True)
class EfficiencyRow:
    label: str
    score: float | None  # 0-100
    costs: dict[str, float | None]  # axis key -> cost
    front: frozenset[str]  # axis keys on whose Pareto front the system lies

    def cells(self, axes: tuple[CostAxis, ...]) -> list[tuple[float | None, bool]]:
        """(cost, on the front) per axis, in the axes' order."""
        return [(self.costs.get(a.key), a.key in self.front) for a in axes]


@dataclass(frozen=True, kw_only=True)
class Efficiency:
    score_name: str
    note: str  # why there are no scores, if so
    axes: tuple[CostAxis, ...]  # axes some system has figures for
    rows: tuple[EfficiencyRow, ...]
    points: dict[str, tuple[ScatterPoint, ...]]  # axis key -> plotted points


def pareto_front(points: Sequence[tuple[float, float]]) -> set[int]:
    """Indices of the points no other point dominates (lower or equal cost and higher or
    equal score, one of them strictly). Equal points are all on the front."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: set[int] = set()
    best = -math.inf
    best_cost = math.nan
    for i in order:
        cost, score = points[i]
        if score > best or (score == best and cost == best_cost):
            front.add(i)
            best, best_cost = score, cost
    return front


def _suite_scores(board: SuiteBoard) -> tuple[dict[str, float], str, str]:
    if board.official_score_name:
        scores = {
            row.system.label: row.official.value
            for row in board.rows
            if row.official is not None and row.official.value is not None
        }
        return scores, board.official_score_name, ""
    if board.table is None:
        return {}, "", ""
    complete = [row.system.label for row in board.rows if row.complete]
    if not complete:
        return {}, "", "No system has a score on every task yet."
    try:
        result = rank(board.table.select(systems=complete), rule="mean", weights=_weights(board))
    except RankingInputError as problem:
        return {}, "", f"This suite has no single score to plot: {problem}"
    scores = {e.system: 100.0 * e.score for e in result.ranking if e.score is not None}
    return scores, "mean task score", ""


def _system_costs(board: SuiteBoard, viewer: Viewer) -> dict[SystemKey, dict[str, float | None]]:
    task_ids = [c.task.pk for c in board.columns]
    figures: dict[SystemKey, dict[str, dict[int, list[float]]]] = {}
    for method_id, backbone_id, config_hash, official, task_id, system in Run.objects.filter(
        visible_runs_filter(viewer=viewer), task_id__in=task_ids, status=RunStatus.SUCCEEDED
    ).values_list(
        "method_id", "backbone_id", "config_hash", "on_official_split", "task_id", "system"
    ):
        per_axis = figures.setdefault((method_id, backbone_id, config_hash, official), {})
        for axis in COST_AXES:
            value = (system or {}).get(axis.key)
            if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
                per_axis.setdefault(axis.key, {}).setdefault(task_id, []).append(float(value))
    out: dict[SystemKey, dict[str, float | None]] = {}
    for key, per_axis in figures.items():
        costs: dict[str, float | None] = {}
        for axis in COST_AXES:
            by_task = per_axis.get(axis.key, {})
            values = [v for vs in by_task.values() for v in vs]
            if not values:
                costs[axis.key] = None
            elif axis.combine == "mean":
                costs[axis.key] = sum(values) / len(values)
            elif axis.combine == "max":
                costs[axis.key] = max(values)
            else:  # a suite's compute: every task needs a figure
                complete = all(t in by_task for t in task_ids)
                costs[axis.key] = (
                    sum(sum(vs) / len(vs) for vs in by_task.values()) if complete else None
                )
        out[key] = costs
    return out


def _efficiency(board: SuiteBoard, viewer: Viewer) -> Efficiency:
    scores, score_name, note = _suite_scores(board)
    costs = _system_costs(board, viewer)
    # (label, score, costs by axis) per system, best score first
    systems: list[tuple[str, float | None, dict[str, float | None]]] = sorted(
        (
            (
                row.system.label,
                scores.get(row.system.label),
                {a.key: costs.get(system_key(row.system), {}).get(a.key) for a in COST_AXES},
            )
            for row in board.rows
        ),
        key=lambda s: (s[1] is None, -(s[1] or 0.0)),
    )
    axes = tuple(a for a in COST_AXES if any(c[a.key] is not None for _, _, c in systems))
    points: dict[str, tuple[ScatterPoint, ...]] = {}
    fronts: dict[str, set[str]] = {}
    for axis in axes:
        plotted = [
            (label, cost, score)
            for label, score, by_axis in systems
            if score is not None and (cost := by_axis[axis.key]) is not None
        ]
        front = pareto_front([(cost, score) for _, cost, score in plotted])
        fronts[axis.key] = {plotted[i][0] for i in front}
        points[axis.key] = tuple(
            ScatterPoint(label=label, cost=cost, score=score, on_front=i in front)
            for i, (label, cost, score) in enumerate(plotted)
        )
    return Efficiency(
        score_name=score_name,
        note=note,
        axes=axes,
        rows=tuple(
            EfficiencyRow(
                label=label,
                score=score,
                costs=by_axis,
                front=frozenset(a for a, labels in fronts.items() if label in labels),
            )
            for label, score, by_axis in systems
        ),
        points=points,
    )


def suite_efficiency(*, board: SuiteBoard, viewer: Viewer = None) -> Efficiency:
    """Each system's suite score against what it cost, with the Pareto front per cost."""
    return _cached(board, "efficiency", lambda: _efficiency(board, viewer))


# --- Flags ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SystemFlag:
    kind: str
    label: str
    reason: str


def board_flags(*, board: SuiteBoard, viewer: Viewer = None) -> dict[str, list[SystemFlag]]:
    """Curators' flags on the runs behind each system, by system label. Cached with the
    board: adding, editing or removing a flag moves its task's leaderboard stamp."""
    scope = f"user{viewer.pk}" if viewer is not None and viewer.is_authenticated else "public"
    return _cached(board, f"flags:{scope}", lambda: _board_flags(board, viewer))


def _board_flags(board: SuiteBoard, viewer: Viewer) -> dict[str, list[SystemFlag]]:
    labels = {system_key(row.system): row.system.label for row in board.rows}
    out: dict[str, list[SystemFlag]] = {}
    for method_id, backbone_id, config_hash, official, kind, reason in (
        Flag.objects.filter(
            visible_runs_filter(viewer=viewer, prefix="run__"),
            run__task_id__in=[c.task.pk for c in board.columns],
            run__status=RunStatus.SUCCEEDED,
        )
        .order_by("-created_at")
        .values_list(
            "run__method_id",
            "run__backbone_id",
            "run__config_hash",
            "run__on_official_split",
            "kind",
            "reason",
        )
    ):
        label = labels.get((method_id, backbone_id, config_hash, official))
        if label is not None:
            flag = SystemFlag(kind=kind, label=FlagKind(kind).label, reason=reason)
            if flag not in out.setdefault(label, []):
                out[label].append(flag)
    return out
