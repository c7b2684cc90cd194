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


# Up to this many systems the peel runs on Python int bitsets (one mask per system);
# numpy's per-level overhead dominates there.
_PEEL_BITSET_MAX = 64


def peel_levels(dominates: BoolArray) -> list[int]:
    """Levels by repeatedly taking the undominated systems of an acyclic relation.

    Kahn's algorithm by layers: in-degrees are updated by the removed rows, so the whole
    peel costs O(n^2) instead of re-slicing the relation every level.
    """
    n = dominates.shape[0]
    if n <= _PEEL_BITSET_MAX:
        packed = np.packbits(dominates.T, axis=1, bitorder="little")
        dominated_by = [int.from_bytes(row.tobytes(), "little") for row in packed]
        return _peel_bitsets(dominated_by)
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


def _peel_bitsets(dominated_by: list[int]) -> list[int]:
    """``peel_levels`` where bit y of ``dominated_by[x]`` says y dominates x (bits of x
    itself are ignored)."""
    n = len(dominated_by)
    level = [-1] * n
    others = [mask & ~(1 << x) for x, mask in enumerate(dominated_by)]
    alive, k = (1 << n) - 1, 0
    remaining = list(range(n))
    while remaining:
        top = [x for x in remaining if not others[x] & alive]
        if not top:  # cannot happen for an acyclic relation; guard against loops
            raise RuntimeError("dominance relation has a cycle")
        for x in top:
            level[x] = k
            alive ^= 1 << x
        remaining = [x for x in remaining if level[x] < 0]
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


# Ranked pairs keeps its locked relation as Python int bitsets up to this many systems
# (a lock touches only the ancestors and descendants involved) and as a numpy matrix
# above, where row updates beat walking hundreds of bits per lock.
_BITSET_MAX = 64


class _BitClosure:
    """Reachability of an acyclic locked relation as Python int bitsets.

    ``down[x]`` has bit y set when x reaches y, ``up[y]`` has bit x set then too (both
    reflexive).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.down = [1 << i for i in range(n)]
        self.up = [1 << i for i in range(n)]

    def reaches(self, x: int, y: int) -> bool:
        return bool(self.down[x] >> y & 1)

    def reaches_each(self, xs: list[int], ys: list[int]) -> list[bool]:
        down = self.down
        return [bool(down[x] >> y & 1) for x, y in zip(xs, ys, strict=True)]

    def lock(self, a: int, c: int) -> None:
        """Add a -> c (the caller made sure that c does not reach a)."""
        down, up = self.down, self.up
        if down[a] >> c & 1:
            return  # already implied: nothing to add
        below, above = down[c], up[a]
        rest = above
        while rest:
            low = rest & -rest
            down[low.bit_length() - 1] |= below
            rest ^= low
        rest = below
        while rest:
            low = rest & -rest
            up[low.bit_length() - 1] |= above
            rest ^= low

    def reach_rows(self, rows: list[int], cols: list[int]) -> list[int]:
        """For each x in rows, the bitmask over positions j of cols[j] that x reaches."""
        down = self.down
        return [sum(1 << j for j, y in enumerate(cols) if down[x] >> y & 1) for x in rows]

    def matrix(self) -> BoolArray:
        """closure[x, y]: x reaches y (reflexive), as a dense boolean matrix."""
        width = (self.n + 7) // 8
        packed = np.frombuffer(
            b"".join(row.to_bytes(width, "little") for row in self.down), dtype=np.uint8
        ).reshape(self.n, width)
        out: BoolArray = np.unpackbits(packed, axis=1, count=self.n, bitorder="little").astype(bool)
        return out

    def levels(self) -> list[int]:
        """``peel_levels`` of the relation without its diagonal."""
        return _peel_bitsets(self.up)


class _MatrixClosure:
    """The same as ``_BitClosure`` on a dense boolean matrix (for large tables)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.closure = np.eye(n, dtype=bool)

    def reaches(self, x: int, y: int) -> bool:
        return bool(self.closure[x, y])

    def reaches_each(self, xs: list[int], ys: list[int]) -> list[bool]:
        out: list[bool] = self.closure[xs, ys].tolist()
        return out

    def lock(self, a: int, c: int) -> None:
        closure = self.closure
        if closure[a, c]:
            return
        closure[np.flatnonzero(closure[:, a])] |= closure[c]

    def reach_rows(self, rows: list[int], cols: list[int]) -> list[int]:
        sub = np.packbits(self.closure[np.ix_(rows, cols)], axis=1, bitorder="little")
        return [int.from_bytes(row.tobytes(), "little") for row in sub]

    def matrix(self) -> BoolArray:
        out: BoolArray = self.closure.copy()
        return out

    def levels(self) -> list[int]:
        closure = self.matrix()
        np.fill_diagonal(closure, False)
        return peel_levels(closure)


# Up to this many equal-margin candidates, find their cycles in pure Python (k^2 bit
# operations); above it scipy's strongly connected components, which costs ~0.2 ms a call.
_SMALL_GROUP = 24


def _off_cycle(
    locked: _BitClosure | _MatrixClosure, sources: list[int], targets: list[int]
) -> list[bool]:
    """For candidate pairs a -> c, whether each lies on no cycle of locked + candidates."""
    k = len(sources)
    if k <= _SMALL_GROUP:
        # Candidate i leads to candidate j when c_i reaches a_j in the locked closure; a
        # pair lies on a cycle iff it reaches itself in that graph (closure by Warshall).
        reach = locked.reach_rows(targets, sources)
        for pivot in range(k):
            bit, via = 1 << pivot, reach[pivot]
            for i in range(k):
                if reach[i] & bit:
                    reach[i] |= via
        return [not reach[i] >> i & 1 for i in range(k)]
    # A pair lies on such a cycle iff a and c share a strongly connected component of
    # that graph (the closure has the locked graph's reachability).
    n = locked.n
    trial = csr_array(locked.matrix()) + csr_array(
        (np.ones(k, dtype=bool), (sources, targets)), shape=(n, n), dtype=bool
    )
    _, comp = connected_components(trial, directed=True, connection="strong")
    out: list[bool] = (comp[sources] != comp[targets]).tolist()
    return out


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
    n = ctx.n
    src_idx, dst_idx = np.nonzero(beats(p))
    vals = margin[src_idx, dst_idx]
    by_margin = np.argsort(-vals, kind="stable")
    sources: list[int] = src_idx[by_margin].tolist()
    targets: list[int] = dst_idx[by_margin].tolist()
    values: list[float] = vals[by_margin].tolist()
    locked = _BitClosure(n) if n <= _BITSET_MAX else _MatrixClosure(n)
    reaches, lock = locked.reaches, locked.lock
    tol = TIE_RTOL * max(1.0, float(np.abs(margin).max(initial=0.0)))
    skipped: list[tuple[int, int]] = []
    i, m = 0, len(values)
    while i < m:
        j = i + 1
        while j < m and values[i] - values[j] <= tol:
            j += 1
        if j == i + 1:  # a margin of its own (the usual case with weights): no tie to settle
            a, c = sources[i], targets[i]
            if reaches(c, a):
                skipped.append((a, c))  # it would close a cycle
            else:
                lock(a, c)
            i = j
            continue
        # Candidates: pairs of this margin that close no cycle with what is locked already.
        group = range(i, j)
        closes = locked.reaches_each(targets[i:j], sources[i:j])
        candidates = [k for k, cycle in zip(group, closes, strict=True) if not cycle]
        if len(candidates) > 1:
            # Lock only candidates on no cycle of (locked + candidates): order-independent.
            off_cycle = _off_cycle(
                locked, [sources[k] for k in candidates], [targets[k] for k in candidates]
            )
            candidates = [k for k, fine in zip(candidates, off_cycle, strict=True) if fine]
        for k in candidates:
            lock(sources[k], targets[k])
        if len(candidates) < len(group):
            kept = set(candidates)
            skipped += [(sources[k], targets[k]) for k in group if k not in kept]
        i = j
    levels = locked.levels()
    names = ctx.systems
    return result_from_levels(
        rule=ctx.rule.name,
        systems=names,
        levels=levels,
        scores=None,
        details={"skipped_pairs": [[names[a], names[c]] for a, c in skipped]},
    )
