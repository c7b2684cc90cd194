"""Positional rules: Plurality, Borda, Dowdall, Threshold, and the Borda eliminations
Baldwin and Nanson."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from leaderboard.ranking.context import RuleContext, ranked_by_score
from leaderboard.ranking.registry import register_rule
from leaderboard.ranking.result import (
    TIE_RTOL,
    RankingResult,
    result_from_levels,
)
from leaderboard.ranking.table import FloatArray


def _block_share(ctx: RuleContext, points: FloatArray) -> FloatArray:
    """Per system and task, the mean of ``points[position-1]`` over the positions its tie
    block occupies: tied systems share the points of the places they jointly take."""
    lo = ctx.positions("min").astype(int)
    hi = ctx.positions("max").astype(int)
    cum = np.concatenate([[0.0], np.cumsum(points)])
    out: FloatArray = (cum[hi] - cum[lo - 1]) / (hi - lo + 1)
    return out


@register_rule(
    "plurality",
    description="weighted number of tasks won (a tie for first splits the point)",
    votenrank=True,
)
def plurality(ctx: RuleContext) -> RankingResult:
    if ctx.votenrank:
        # Vote'n'Rank: a tie for first gives nobody the point (max rank must be 1).
        per_task = (ctx.positions("max") <= 1).astype(np.float64)
    else:
        # The tied top block of each task shares the point (what _block_share gives for
        # points [1, 0, ..., 0]), without ranking every task.
        x = ctx.x
        top = (x == x.max(axis=0)).astype(np.float64)
        per_task = top / top.sum(axis=0)
    scores = per_task @ ctx.weights
    return ranked_by_score(ctx, scores)


@register_rule(
    "borda",
    description="weighted Borda count: systems beaten per task, a tie worth 1/2 "
    "(with missing='impute', Himmi et al.'s expected count)",
    missing=("median", "impute"),
    votenrank=True,
)
def borda(ctx: RuleContext) -> RankingResult:
    if ctx.votenrank:
        # Vote'n'Rank: n - max_rank, so tied systems all get the lowest share.
        scores = (ctx.n - ctx.positions("max")) @ ctx.weights
    elif ctx.missing == "median" or ctx.complete:
        # Complete scores: systems beaten + ties/2 = n - average position, so Borda needs
        # only per-task sorts (T n log n), not the n x n pairwise matrix.
        scores = (ctx.n - ctx.positions("average")) @ ctx.weights
    else:
        scores = ctx.pairwise.sum(axis=1)
    return ranked_by_score(ctx, scores)


@register_rule(
    "dowdall",
    description="weighted Dowdall (Nauru) count: 1/position per task",
    votenrank=True,
)
def dowdall(ctx: RuleContext) -> RankingResult:
    if ctx.votenrank:
        per_task = 1.0 / ctx.positions("min")  # Vote'n'Rank: ties take the best position
    else:
        per_task = _block_share(ctx, 1.0 / np.arange(1, ctx.n + 1))
    scores = per_task @ ctx.weights
    return ranked_by_score(ctx, scores)


@register_rule(
    "threshold",
    description="Threshold rule (Aleskerov et al.): fewest last places, then fewest "
    "second-to-last, ... (lexicographic)",
    votenrank=True,
)
def threshold(ctx: RuleContext) -> RankingResult:
    n = ctx.n
    counts = np.zeros((n, n))  # counts[a, k-1]: weighted tasks where a takes position k
    if ctx.votenrank:
        pos = ctx.positions("max").astype(int)
        for k in range(1, n + 1):
            counts[:, k - 1] = (pos == k).astype(np.float64) @ ctx.weights
    else:
        for k in range(1, n + 1):
            points = np.zeros(n)
            points[k - 1] = 1.0
            counts[:, k - 1] = _block_share(ctx, points) @ ctx.weights
    scale = max(1.0, float(ctx.weights.sum()))
    # Lexicographic on (last places, second-to-last, ..., second places), fewer is better;
    # rounded so that float sums of equal weights compare equal.
    keys = [tuple(np.round(counts[a, :0:-1] / (scale * TIE_RTOL)).tolist()) for a in range(n)]
    distinct = sorted(set(keys))
    levels = [distinct.index(k) for k in keys]
    return result_from_levels(
        rule=ctx.rule.name,
        systems=ctx.systems,
        levels=levels,
        scores=None,
        details={"position_counts": {s: counts[i].tolist() for i, s in enumerate(ctx.systems)}},
    )


def _borda_votenrank(ctx: RuleContext, alive: npt.NDArray[np.bool_]) -> FloatArray:
    idx = np.flatnonzero(alive)
    sub = ctx.x[idx]
    # Re-rank among survivors with max-rank ties, as Vote'n'Rank's baldwin_election does.
    worse_or_equal = (sub[:, None, :] <= sub[None, :, :]).sum(axis=1)  # count b with x_b >= x_a
    max_rank = worse_or_equal.astype(np.float64)
    out: FloatArray = (len(idx) - max_rank) @ ctx.weights
    return out


# Up to this many systems the Podium eliminations run on Python floats: a round costs
# a few list passes instead of a dozen numpy calls.
_PYTHON_ELIMINATION_MAX = 64


def _eliminate(ctx: RuleContext, *, nanson: bool) -> RankingResult:
    if not ctx.votenrank and ctx.n <= _PYTHON_ELIMINATION_MAX:
        dropped, eliminated_round, _ = _eliminate_small(ctx.pairwise, nanson=nanson)
        r = len(dropped)
        # Later elimination = better; survivors (never eliminated) best of all.
        levels = [0 if e < 0 else r - e for e in eliminated_round]
        return result_from_levels(
            rule=ctx.rule.name,
            systems=ctx.systems,
            levels=levels,
            scores=None,
            details={
                "eliminated_by_round": [sorted(ctx.systems[i] for i in drop) for drop in dropped]
            },
        )
    alive = np.ones(ctx.n, dtype=bool)
    names_by_round: list[list[str]] = []
    eliminated = np.full(ctx.n, -1)
    r = 0
    # Podium: Borda among the survivors is the row sum of P over the survivors; keep it
    # up to date by subtracting the dropped columns (O(n) per dropped system, not O(n^2)
    # per round).
    full = None if ctx.votenrank else ctx.pairwise.sum(axis=1)
    while True:
        idx = np.flatnonzero(alive)
        b = _borda_votenrank(ctx, alive) if full is None else full[idx]
        tol = TIE_RTOL * max(1.0, float(np.abs(b).max()))
        if b.max() - b.min() <= tol:
            break  # all survivors tie: they are the winners
        cut = b.mean() if nanson else b.min()
        drop = idx[b < cut - tol] if nanson else idx[b <= cut + tol]
        alive[drop] = False
        eliminated[drop] = r
        names_by_round.append(sorted(ctx.systems[i] for i in drop))
        if full is not None:
            full = full - ctx.pairwise[:, drop].sum(axis=1)
        r += 1
    # Later elimination = better; survivors best of all.
    levels = [0 if alive[i] else r - int(eliminated[i]) for i in range(ctx.n)]
    return result_from_levels(
        rule=ctx.rule.name,
        systems=ctx.systems,
        levels=levels,
        scores=None,
        details={"eliminated_by_round": names_by_round},
    )


def _eliminate_small(
    pairwise: FloatArray, *, nanson: bool
) -> tuple[list[list[int]], list[int], list[int]]:
    """The elimination above on Python lists: (dropped per round, round each system was
    dropped in (-1: never), survivors)."""
    p = pairwise.tolist()
    full: list[float] = pairwise.sum(axis=1).tolist()
    alive = list(range(len(p)))
    eliminated = [-1] * len(p)
    rounds: list[list[int]] = []
    while True:
        b = [full[i] for i in alive]
        high, low = max(b), min(b)
        tol = TIE_RTOL * max(1.0, abs(high), abs(low))
        if high - low <= tol:
            return rounds, eliminated, alive
        if nanson:
            cut = sum(b) / len(b) - tol
            drop = [i for i, v in zip(alive, b, strict=True) if v < cut]
        else:
            cut = low + tol
            drop = [i for i, v in zip(alive, b, strict=True) if v <= cut]
        for i in drop:
            eliminated[i] = len(rounds)
        rounds.append(drop)
        if len(drop) == 1:  # the usual Baldwin round: one system, no generator per row
            d = drop[0]
            alive.remove(d)
            for i in alive:
                full[i] -= p[i][d] + 0.0  # + 0.0: what sum() of one term gives, bit for bit
            continue
        gone = set(drop)
        alive = [i for i in alive if i not in gone]
        for i in alive:
            row = p[i]
            full[i] -= sum(row[d] for d in drop)


@register_rule(
    "baldwin",
    description="Baldwin: repeatedly drop every system with the lowest Borda score among "
    "the survivors",
    missing=("median", "impute"),
    votenrank=True,
    condorcet_consistent=True,
)
def baldwin(ctx: RuleContext) -> RankingResult:
    return _eliminate(ctx, nanson=False)


@register_rule(
    "nanson",
    description="Nanson: repeatedly drop every system with a Borda score below the survivors' mean",
    missing=("median", "impute"),
    condorcet_consistent=True,
)
def nanson(ctx: RuleContext) -> RankingResult:
    return _eliminate(ctx, nanson=True)
