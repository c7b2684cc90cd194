"""Pairwise-majority rules: Condorcet, Copeland, Minimax, Schulze, ranked pairs."""

from __future__ import annotations

import functools
import math

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
    return ranked_by_score(ctx, scores)


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


# Ranked pairs keeps its locked relation as one Python int up to this many systems (a
# lock is a few big-int operations) and as a numpy matrix above, where row updates beat
# multiplying thousands-of-bits integers per lock.
_BITSET_MAX = 64


class _BitClosure:
    """Reachability of an acyclic locked relation as one Python int (reflexive).

    Bit x * n + y is set when x reaches y: row x holds x's descendants, and the bits
    y, n + y, 2n + y, ... (column y) its ancestors.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.row, self.column, self.bits = _bit_masks(n)

    def reaches(self, x: int, y: int) -> bool:
        return bool(self.bits >> (x * self.n + y) & 1)

    def reaches_each(self, xs: list[int], ys: list[int]) -> list[bool]:
        bits, n = self.bits, self.n
        return [bool(bits >> (x * n + y) & 1) for x, y in zip(xs, ys, strict=True)]

    def lock(self, a: int, c: int) -> None:
        """Add a -> c (the caller made sure that c does not reach a)."""
        bits, n = self.bits, self.n
        if bits >> (a * n + c) & 1:
            return  # already implied: nothing to add
        below = bits >> (c * n) & self.row  # c's descendants
        above = bits >> a & self.column  # a's ancestors, one bit per row
        # Every ancestor of a now reaches every descendant of c. The rows of the product
        # do not overlap (below < 2^n), so the sum is their union.
        self.bits = bits | below * above

    def reach_rows(self, rows: list[int], cols: list[int]) -> list[int]:
        """For each x in rows, the bitmask over positions j of cols[j] that x reaches."""
        bits, n, row = self.bits, self.n, self.row
        out = []
        for x in rows:
            mask = bits >> (x * n) & row
            out.append(sum(1 << j for j, y in enumerate(cols) if mask >> y & 1))
        return out

    def matrix(self) -> BoolArray:
        """closure[x, y]: x reaches y (reflexive), as a dense boolean matrix."""
        n = self.n
        raw = np.frombuffer(self.bits.to_bytes((n * n + 7) // 8, "little"), dtype=np.uint8)
        flat = np.unpackbits(raw, count=n * n, bitorder="little")
        out: BoolArray = flat.reshape(n, n).astype(bool)
        return out

    def levels(self) -> list[int]:
        """``peel_levels`` of the relation without its diagonal."""
        n, bits, row = self.n, self.bits, self.row
        # In a transitive relation, n distinct descendant counts mean a total order (each
        # system is above exactly those with fewer descendants): its level is the number
        # of systems above it.
        counts = [(bits >> (x * n) & row).bit_count() for x in range(n)]
        if len(set(counts)) == n:
            return [n - k for k in counts]
        return _peel_bitsets(_pack_rows(self.matrix().T))

    def lock_all(self, sources: list[int], targets: list[int]) -> None:
        """Lock every a -> c at once (together they close no cycle): the same closure as
        one lock after another, in a few matrix products instead of k locks."""
        reach = _closure_with(self.matrix(), sources, targets)
        packed = np.packbits(reach.ravel(), bitorder="little")
        self.bits = int.from_bytes(packed.tobytes(), "little")


@functools.cache
def _bit_masks(n: int) -> tuple[int, int, int]:
    """(row 0's bits, column 0's bits, the diagonal) of an n x n bit matrix. Column 0 has
    one bit per row: multiplying a row by (a subset of) it copies the row to those rows."""
    return (
        (1 << n) - 1,
        sum(1 << (x * n) for x in range(n)),
        sum(1 << (x * n + x) for x in range(n)),
    )


def _pack_rows(m: BoolArray) -> list[int]:
    """Row x of a boolean matrix as an int with bit y set when m[x, y]."""
    packed = np.packbits(m, axis=1, bitorder="little")
    raw, width = packed.tobytes(), packed.shape[1]
    return [int.from_bytes(raw[i : i + width], "little") for i in range(0, len(raw), width)]


def _closure_with(closure: BoolArray, sources: list[int], targets: list[int]) -> BoolArray:
    """Reachability (reflexive) of a reflexive transitive relation plus the edges
    sources[i] -> targets[i], by squaring until nothing changes (each product doubles
    the number of added edges a path may chain; float32 counts stay exact)."""
    reach = closure.copy()
    reach[sources, targets] = True
    while True:
        f = reach.astype(np.float32)
        grown: BoolArray = (f @ f) > 0  # reflexive, so it contains reach
        if np.array_equal(grown, reach):
            return reach
        reach = grown


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
        # A total order shows as n distinct ancestor counts (see _BitClosure.levels).
        counts = np.count_nonzero(self.closure, axis=0) - 1
        if len(np.unique(counts)) == self.n:
            out: list[int] = counts.tolist()
            return out
        closure = self.matrix()
        np.fill_diagonal(closure, False)
        return peel_levels(closure)


# Up to this many equal-margin candidates, find their cycles in pure Python (k^2 bit
# operations); above it by matrix products (bitset closures) or scipy's strongly
# connected components (matrix closures), which cost ~0.05 and ~0.2 ms a call.
_SMALL_GROUP = 24
# Above this many pairs locked together, a bitset closure is rebuilt by matrix products
# rather than locked pair by pair (~1 us a pair at 50 systems).
_BATCH_LOCK = 32


def _acyclic_members(reach: list[int]) -> list[bool]:
    """Bit j of reach[i]: candidate i leads to candidate j. Whether each candidate lies
    on no cycle (it does not reach itself; transitive closure by Warshall, in place)."""
    k = len(reach)
    for pivot in range(k):
        bit, via = 1 << pivot, reach[pivot]
        for i in range(k):
            if reach[i] & bit:
                reach[i] |= via
    return [not reach[i] >> i & 1 for i in range(k)]


def _off_cycle(
    locked: _BitClosure | _MatrixClosure, sources: list[int], targets: list[int]
) -> list[bool]:
    """For candidate pairs a -> c, whether each lies on no cycle of locked + candidates."""
    k = len(sources)
    if k <= _SMALL_GROUP:
        # Candidate i leads to candidate j when c_i reaches a_j in the locked closure; a
        # pair lies on a cycle iff it reaches itself in that graph (closure by Warshall).
        return _acyclic_members(locked.reach_rows(targets, sources))
    if isinstance(locked, _BitClosure):
        # The pair a -> c lies on a cycle iff c reaches a once every candidate is added
        # (a few 64 x 64 products; far cheaper than scipy's setup at this size).
        full = _closure_with(locked.matrix(), sources, targets)
        on_cycle: list[bool] = full[targets, sources].tolist()
        return [not cycle for cycle in on_cycle]
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
    # beats(p), with the margin already at hand (P >= 0, so max |P| is max P).
    flat = np.flatnonzero(margin > TIE_RTOL * max(1.0, float(p.max())))
    vals = margin.take(flat)
    by_margin = np.argsort(-vals, kind="stable")
    src_idx, dst_idx = np.divmod(flat.take(by_margin), n)
    sources: list[int] = src_idx.tolist()
    targets: list[int] = dst_idx.tolist()
    values: list[float] = vals.take(by_margin).tolist()
    # The margin is antisymmetric, so its largest absolute value is its maximum, which
    # is the first sorted value when any pair is won (none is: tol goes unused).
    tol = TIE_RTOL * max(1.0, values[0]) if values else 0.0
    if n <= _BITSET_MAX:
        levels, skipped = _lock_in_order_bits(n, sources, targets, values, tol)
    else:
        levels, skipped = _lock_in_order(_MatrixClosure(n), sources, targets, values, tol)
    names = ctx.systems
    return result_from_levels(
        rule=ctx.rule.name,
        systems=names,
        levels=levels,
        scores=None,
        details={"skipped_pairs": [[names[a], names[c]] for a, c in skipped]},
    )


def _lock_in_order(
    locked: _BitClosure | _MatrixClosure,
    sources: list[int],
    targets: list[int],
    values: list[float],
    tol: float,
) -> tuple[list[int], list[tuple[int, int]]]:
    """Lock the pairs, sorted by margin, that close no cycle: (levels, skipped pairs)."""
    skipped: list[tuple[int, int]] = []
    i, m = 0, len(values)
    while i < m:
        j = i + 1
        while j < m and values[i] - values[j] <= tol:
            j += 1
        if j == i + 1:  # a margin of its own: no tie to settle
            a, c = sources[i], targets[i]
            if locked.reaches(c, a):
                skipped.append((a, c))  # it would close a cycle
            else:
                locked.lock(a, c)
        else:
            _lock_group(locked, sources, targets, range(i, j), skipped)
        i = j
    return locked.levels(), skipped


def _lock_group(
    locked: _BitClosure | _MatrixClosure,
    sources: list[int],
    targets: list[int],
    group: range,
    skipped: list[tuple[int, int]],
) -> None:
    """Lock the pairs of one margin: only those on no cycle of (locked + the group's
    pairs that close none alone), so that no order among them is ever chosen."""
    closes = locked.reaches_each(
        targets[group.start : group.stop], sources[group.start : group.stop]
    )
    candidates = [k for k, cycle in zip(group, closes, strict=True) if not cycle]
    if len(candidates) > 1:
        off_cycle = _off_cycle(
            locked, [sources[k] for k in candidates], [targets[k] for k in candidates]
        )
        candidates = [k for k, fine in zip(candidates, off_cycle, strict=True) if fine]
    if len(candidates) > _BATCH_LOCK and isinstance(locked, _BitClosure):
        locked.lock_all([sources[k] for k in candidates], [targets[k] for k in candidates])
    else:
        for k in candidates:
            locked.lock(sources[k], targets[k])
    if len(candidates) < len(group):
        kept = set(candidates)
        skipped += [(sources[k], targets[k]) for k in group if k not in kept]


def _lock_in_order_bits(
    n: int, sources: list[int], targets: list[int], values: list[float], tol: float
) -> tuple[list[int], list[tuple[int, int]]]:
    """``_lock_in_order`` on a ``_BitClosure`` with its reaches/lock inlined on a local
    int: this loop is most of the rule's time on small tables."""
    bits = _BitClosure(n)
    closure, row, column = bits.bits, bits.row, bits.column
    skipped: list[tuple[int, int]] = []
    i, m = 0, len(values)
    values = [*values, -math.inf]  # a sentinel: the last pair has a margin of its own
    while i < m:
        if values[i] - values[i + 1] > tol:
            a, c = sources[i], targets[i]
            if closure >> (c * n + a) & 1:
                skipped.append((a, c))  # it would close a cycle
            elif not closure >> (a * n + c) & 1:  # (else already implied)
                closure |= (closure >> (c * n) & row) * (closure >> a & column)
            i += 1
            continue
        j = i + 2
        while j < m and values[i] - values[j] <= tol:
            j += 1
        if j - i > _SMALL_GROUP:
            bits.bits = closure
            _lock_group(bits, sources, targets, range(i, j), skipped)
            closure = bits.bits
            i = j
            continue
        # _lock_group for a few pairs (a weighted table has a few such groups), inlined.
        fine = [k for k in range(i, j) if not closure >> (targets[k] * n + sources[k]) & 1]
        if len(fine) > 1:
            reach = []
            for x in fine:
                below = closure >> (targets[x] * n) & row
                reach.append(sum(1 << q for q, y in enumerate(fine) if below >> sources[y] & 1))
            if any(reach):
                fine = [k for k, ok in zip(fine, _acyclic_members(reach), strict=True) if ok]
        for k in fine:
            a, c = sources[k], targets[k]
            if not closure >> (a * n + c) & 1:
                closure |= (closure >> (c * n) & row) * (closure >> a & column)
        if len(fine) < j - i:
            kept = set(fine)
            skipped += [(sources[k], targets[k]) for k in range(i, j) if k not in kept]
        i = j
    bits.bits = closure
    return bits.levels(), skipped
