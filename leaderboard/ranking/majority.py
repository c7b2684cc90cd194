"""Pairwise-majority rules: Condorcet, Copeland, Minimax, Schulze, ranked pairs."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from leaderboard.ranking.context import RuleContext
from leaderboard.ranking.registry import register_rule
from leaderboard.ranking.result import (
    TIE_RTOL,
    RankingResult,
    build_result,
    result_from_levels,
    result_from_scores,
)
from leaderboard.ranking.table import FloatArray

BoolArray = npt.NDArray[np.bool_]
PAIRWISE_POLICIES = ("pairwise", "impute", "median")


def beats(p: FloatArray) -> BoolArray:
    """beats[a, b]: a wins the weighted majority against b (strictly, beyond float noise)."""
    tol = TIE_RTOL * max(1.0, float(np.abs(p).max(initial=0.0)))
    out: BoolArray = (p - p.T) > tol
    return out


def condorcet_winner_index(p: FloatArray) -> int | None:
    b = beats(p)
    n = p.shape[0]
    for a in range(n):
        if b[a].sum() == n - 1:
            return a
    return None


def smith_set(p: FloatArray) -> list[int]:
    """Smallest non-empty set whose members all beat every non-member."""
    n = p.shape[0]
    not_lose = ~beats(p).T  # not_lose[a, b]: b does not beat a
    reach = not_lose.copy()
    np.fill_diagonal(reach, True)
    for k in range(n):  # transitive closure (Warshall)
        reach |= reach[:, [k]] & reach[[k], :]
    # The Smith set: systems that reach everybody through "does not lose to".
    return [a for a in range(n) if reach[a].all()]


def peel_levels(dominates: BoolArray) -> list[int]:
    """Levels by repeatedly taking the undominated systems of an acyclic relation."""
    n = dominates.shape[0]
    level = [-1] * n
    alive = np.ones(n, dtype=bool)
    k = 0
    while alive.any():
        sub = dominates[np.ix_(alive, alive)]
        top = ~sub.any(axis=0)
        idx = np.flatnonzero(alive)[top]
        if len(idx) == 0:  # cannot happen for an acyclic relation; guard against loops
            raise RuntimeError("dominance relation has a cycle")
        for i in idx:
            level[int(i)] = k
        alive[idx] = False
        k += 1
    return level


@register_rule(
    "condorcet",
    description="the system that beats every other in the weighted pairwise majority, if any",
    missing=PAIRWISE_POLICIES,
    votenrank=True,
    votenrank_missing="pairwise",
    condorcet_consistent=True,
)
def condorcet(ctx: RuleContext) -> RankingResult:
    w = condorcet_winner_index(ctx.pairwise)
    # With a winner: it ranks 1 and everybody else 2. Without: nobody is separated and
    # the winner set is empty.
    ranks = [1 if w is None or i == w else 2 for i in range(ctx.n)]
    winners = [] if w is None else [ctx.systems[w]]
    return build_result(
        rule=ctx.rule.name,
        systems=ctx.systems,
        ranks=ranks,
        scores=None,
        details={"condorcet_winner": winners[0] if winners else None},
        winners=winners,
    )


@register_rule(
    "copeland",
    description="Copeland: pairwise majority wins minus losses",
    missing=PAIRWISE_POLICIES,
    votenrank=True,
    votenrank_missing="pairwise",
    condorcet_consistent=True,
)
def copeland(ctx: RuleContext) -> RankingResult:
    b = beats(ctx.pairwise)
    scores = b.sum(axis=1) - b.sum(axis=0)
    return result_from_scores(
        rule=ctx.rule.name,
        systems=ctx.systems,
        scores=scores.astype(float).tolist(),
        higher_is_better=True,
        details={},
    )


@register_rule(
    "minimax",
    description="Minimax (Simpson-Kramer): minus the worst pairwise defeat "
    "(podium: margin; votenrank: winning votes)",
    missing=PAIRWISE_POLICIES,
    votenrank=True,
    votenrank_missing="pairwise",
    condorcet_consistent=True,
)
def minimax(ctx: RuleContext) -> RankingResult:
    p = ctx.pairwise
    b = beats(p)
    # defeat[a, c] when c beats a: c's votes (Vote'n'Rank) or c's margin (podium).
    defeat = np.where(b.T, p.T, 0.0) if ctx.votenrank else np.where(b.T, p.T - p, 0.0)
    scores = -defeat.max(axis=1)
    return result_from_scores(
        rule=ctx.rule.name,
        systems=ctx.systems,
        scores=(scores + 0.0).tolist(),
        higher_is_better=True,
        details={"measure": "winning_votes" if ctx.votenrank else "margins"},
    )


@register_rule(
    "schulze",
    description="Schulze (beat-path, winning votes); the ranking peels the unbeaten sets",
    missing=PAIRWISE_POLICIES,
    condorcet_consistent=True,
)
def schulze(ctx: RuleContext) -> RankingResult:
    p = ctx.pairwise
    n = ctx.n
    d = np.where(beats(p), p, 0.0)
    for k in range(n):  # widest paths (Floyd-Warshall with max-min)
        d = np.maximum(d, np.minimum(d[:, [k]], d[[k], :]))
    np.fill_diagonal(d, 0.0)
    tol = TIE_RTOL * max(1.0, float(np.abs(d).max(initial=0.0)))
    dominates = (d - d.T) > tol
    levels = peel_levels(dominates)
    return result_from_levels(
        rule=ctx.rule.name,
        systems=ctx.systems,
        levels=levels,
        scores=None,
        details={"strongest_paths": d.tolist()},
    )


def _reaches(adj: BoolArray, src: int, dst: int) -> bool:
    seen = {src}
    stack = [src]
    while stack:
        u = stack.pop()
        if u == dst:
            return True
        for v in np.flatnonzero(adj[u]):
            iv = int(v)
            if iv not in seen:
                seen.add(iv)
                stack.append(iv)
    return False


@register_rule(
    "ranked_pairs",
    description="ranked pairs (Tideman) by margin; pairs of equal margin are locked together "
    "when they close no cycle, so no tie-break order is ever chosen",
    missing=PAIRWISE_POLICIES,
    condorcet_consistent=True,
)
def ranked_pairs(ctx: RuleContext) -> RankingResult:
    p = ctx.pairwise
    margin = p - p.T
    b = beats(p)
    n = ctx.n
    pairs = [(float(margin[a, c]), a, c) for a in range(n) for c in range(n) if b[a, c]]
    locked = np.zeros((n, n), dtype=bool)
    tol = TIE_RTOL * max(1.0, float(np.abs(margin).max(initial=0.0)))
    pairs.sort(key=lambda t: -t[0])
    i = 0
    skipped: list[list[str]] = []
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[i][0] - pairs[j][0] <= tol:
            j += 1
        batch = pairs[i:j]
        # Candidates: pairs that close no cycle with what is locked already.
        cand = [(a, c) for _, a, c in batch if not _reaches(locked, c, a)]
        trial = locked.copy()
        for a, c in cand:
            trial[a, c] = True
        # Lock only candidates on no cycle of (locked + candidates): order-independent.
        keep = [(a, c) for a, c in cand if not _reaches(trial, c, a)]
        for a, c in keep:
            locked[a, c] = True
        kept = set(keep)
        skipped += [[ctx.systems[a], ctx.systems[c]] for _, a, c in batch if (a, c) not in kept]
        i = j
    levels = peel_levels(locked)
    return result_from_levels(
        rule=ctx.rule.name,
        systems=ctx.systems,
        levels=levels,
        scores=None,
        details={"skipped_pairs": skipped},
    )
