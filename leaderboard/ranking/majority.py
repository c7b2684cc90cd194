"""Pairwise-majority rules: Condorcet, Copeland, Minimax, Schulze, ranked pairs."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components

from leaderboard.ranking.context import RuleContext, ranked_by_score
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
    """Levels by repeatedly taking the undominated systems of an acyclic relation.

    Kahn's algorithm by layers: in-degrees are updated by the removed rows, so the whole
    peel costs O(n^2) instead of re-slicing the relation every level.
    """
    n = dominates.shape[0]
    level = [-1] * n
    dom = dominates.astype(np.int64)
    indeg = dom.sum(axis=0)
    alive = np.ones(n, dtype=bool)
    k = 0
    while alive.any():
        top = np.flatnonzero(alive & (indeg == 0))
        if len(top) == 0:  # cannot happen for an acyclic relation; guard against loops
            raise RuntimeError("dominance relation has a cycle")
        for i in top:
            level[int(i)] = k
        alive[top] = False
        indeg -= dom[top].sum(axis=0)
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
    return ranked_by_score(ctx, scores.astype(float).tolist())


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
    tmp = np.empty_like(d)
    for k in range(n):  # widest paths (Floyd-Warshall with max-min), in place
        np.minimum(d[:, k, None], d[None, k, :], out=tmp)
        np.maximum(d, tmp, out=d)
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


def _lock(closure: BoolArray, a: int, c: int) -> None:
    """Add a -> c to an acyclic relation kept as its reflexive transitive closure."""
    if closure[a, c]:
        return  # already implied: nothing to add
    anc = np.flatnonzero(closure[:, a])
    closure[anc] |= closure[c]


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
    src_idx, dst_idx = np.nonzero(b)
    vals = margin[src_idx, dst_idx]
    by_margin = np.argsort(-vals, kind="stable")
    src_idx, dst_idx, vals = src_idx[by_margin], dst_idx[by_margin], vals[by_margin]
    # Reachability of the locked relation, reflexive: a pair (a, c) closes a cycle iff
    # c already reaches a. Kept as a closure matrix, so each test is one lookup.
    closure = np.eye(n, dtype=bool)
    tol = TIE_RTOL * max(1.0, float(np.abs(margin).max(initial=0.0)))
    i = 0
    skipped: list[list[str]] = []
    m = len(vals)
    while i < m:
        j = i
        while j < m and vals[i] - vals[j] <= tol:
            j += 1
        ba, bc = src_idx[i:j], dst_idx[i:j]
        # Candidates: pairs that close no cycle with what is locked already.
        ok = ~closure[bc, ba]
        ca, cc = ba[ok], bc[ok]
        keep = np.zeros(len(ca), dtype=bool)
        if len(ca) == 1:
            keep[0] = True  # a lone candidate closes no cycle (checked just above)
            _lock(closure, int(ca[0]), int(cc[0]))
        elif len(ca):
            # Lock only candidates on no cycle of (locked + candidates): order-independent.
            # A pair a -> c lies on such a cycle iff a and c share a strongly connected
            # component of that graph (the closure has the locked graph's reachability).
            trial = csr_array(closure)
            trial = trial + csr_array(
                (np.ones(len(ca), dtype=bool), (ca, cc)), shape=(n, n), dtype=bool
            )
            _, comp = connected_components(trial, directed=True, connection="strong")
            keep = comp[ca] != comp[cc]
            for a, c in zip(ca[keep], cc[keep], strict=True):
                _lock(closure, int(a), int(c))
        kept = set(zip(ca[keep].tolist(), cc[keep].tolist(), strict=True))
        skipped += [
            [ctx.systems[a], ctx.systems[c]]
            for a, c in zip(ba.tolist(), bc.tolist(), strict=True)
            if (a, c) not in kept
        ]
        i = j
    np.fill_diagonal(closure, False)
    levels = peel_levels(closure)
    return result_from_levels(
        rule=ctx.rule.name,
        systems=ctx.systems,
        levels=levels,
        scores=None,
        details={"skipped_pairs": skipped},
    )
