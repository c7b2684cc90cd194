"""Bootstrap uncertainty for any rule: over test examples or over training seeds.

Deterministic under a fixed ``seed`` (one numpy Generator drives every resample).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from leaderboard.ranking.api import rank
from leaderboard.ranking.levels import InstanceScores, task_table
from leaderboard.ranking.result import jsonable_dict
from leaderboard.ranking.table import FloatArray, RankingInputError, ScoreTable


@dataclass(frozen=True)
class BootstrapResult:
    rule: str
    systems: tuple[str, ...]
    n_boot: int
    seed: int
    alpha: float
    # Central (1 - alpha) percentile interval of each system's competition rank.
    rank_interval: Mapping[str, tuple[float, float]]
    median_rank: Mapping[str, float]
    # Share of replicates where the system is in the winner set (co-winners all count).
    win_probability: Mapping[str, float]
    # prob_better[a][b]: share of replicates with a ranked strictly above b.
    prob_better: tuple[tuple[float, ...], ...]
    # (a, b) pairs with a above b in at least 1 - alpha of the replicates.
    significant: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return jsonable_dict(self.__dict__)


def _summarise(
    *,
    rule: str,
    systems: tuple[str, ...],
    draw: Callable[[np.random.Generator], ScoreTable],
    n_boot: int,
    seed: int,
    alpha: float,
    kwargs: Mapping[str, Any],
) -> BootstrapResult:
    if n_boot < 1:
        raise RankingInputError("n_boot must be >= 1")
    if not 0 < alpha < 1:
        raise RankingInputError("alpha must be in (0, 1)")
    rng = np.random.default_rng(seed)
    n = len(systems)
    ranks = np.zeros((n_boot, n))
    wins = np.zeros(n)
    for b in range(n_boot):
        res = rank(draw(rng), rule=rule, **kwargs)
        ranks[b] = res.rank_vector(systems)
        wins += np.isin(np.array(systems), np.array(res.winners, dtype=object))
    lo = np.percentile(ranks, 100 * alpha / 2, axis=0)
    hi = np.percentile(ranks, 100 * (1 - alpha / 2), axis=0)
    better = (ranks[:, :, None] < ranks[:, None, :]).mean(axis=0)
    sig = tuple(
        (systems[a], systems[c])
        for a in range(n)
        for c in range(n)
        if a != c and better[a, c] >= 1 - alpha
    )
    return BootstrapResult(
        rule=rule,
        systems=systems,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
        rank_interval={s: (float(lo[i]), float(hi[i])) for i, s in enumerate(systems)},
        median_rank={s: float(np.median(ranks[:, i])) for i, s in enumerate(systems)},
        win_probability={s: float(wins[i] / n_boot) for i, s in enumerate(systems)},
        prob_better=tuple(tuple(float(v) for v in row) for row in better),
        significant=sig,
    )


def bootstrap_examples(
    inst: InstanceScores,
    *,
    rule: str,
    level1: str = "mean",
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    weights: Mapping[str, float] | None = None,
    missing: str | None = None,
    convention: str = "podium",
    params: Mapping[str, Any] | None = None,
) -> BootstrapResult:
    """Resample each task's test examples with replacement (the same examples for every
    system, since they answered the same items), aggregate per task with ``level1``,
    then rank with ``rule``."""

    def draw(rng: np.random.Generator) -> ScoreTable:
        per_task = tuple(m[:, rng.integers(0, m.shape[1], m.shape[1])] for m in inst.per_task)
        sample = InstanceScores(
            systems=inst.systems,
            tasks=inst.tasks,
            per_task=per_task,
            higher_is_better=inst.higher_is_better,
        )
        return task_table(sample, level1=level1)

    kwargs = {"weights": weights, "missing": missing, "convention": convention, "params": params}
    return _summarise(
        rule=rule,
        systems=inst.systems,
        draw=draw,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
        kwargs=kwargs,
    )


def bootstrap_seeds(
    *,
    systems: Sequence[str],
    tasks: Sequence[str],
    scores: npt.ArrayLike,
    rule: str,
    higher_is_better: Sequence[bool] | None = None,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    weights: Mapping[str, float] | None = None,
    missing: str | None = None,
    convention: str = "podium",
    params: Mapping[str, Any] | None = None,
) -> BootstrapResult:
    """``scores[system, task, seed]`` (NaN for absent runs). Each system's runs are
    independent, so seeds are resampled per system and task; the cell is their mean."""
    arr: FloatArray = np.asarray(scores, dtype=np.float64)
    names = tuple(systems)
    if arr.ndim != 3 or arr.shape[:2] != (len(names), len(tuple(tasks))):
        raise RankingInputError("scores must have shape (systems, tasks, seeds)")
    hib = tuple(higher_is_better) if higher_is_better is not None else (True,) * arr.shape[1]
    runs = [
        [arr[i, t][~np.isnan(arr[i, t])] for t in range(arr.shape[1])] for i in range(arr.shape[0])
    ]
    base = ScoreTable(systems=names, tasks=tuple(tasks), scores=arr[:, :, 0], higher_is_better=hib)

    def draw(rng: np.random.Generator) -> ScoreTable:
        out = np.full(arr.shape[:2], np.nan)
        for i, row in enumerate(runs):
            for t, v in enumerate(row):
                if len(v):
                    out[i, t] = float(v[rng.integers(0, len(v), len(v))].mean())
        return base.with_scores(out)

    kwargs = {"weights": weights, "missing": missing, "convention": convention, "params": params}
    return _summarise(
        rule=rule,
        systems=names,
        draw=draw,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
        kwargs=kwargs,
    )
