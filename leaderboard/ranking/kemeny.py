"""Kemeny-Young: exact (subset DP, or an integer program on scipy's HiGHS ``milp``) with a
certificate and the full set of co-optimal winners; a heuristic with an LP bound beyond.

Objective: maximise the agreement sum over ordered pairs (a above b) of P[a, b], where
P is the weighted pairwise matrix of the package semantics (a task tie gives each side
1/2; adding a constant to both P[a, b] and P[b, a] shifts every order's agreement equally,
so the optimal orders are those of the strict-wins objective too).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array

from leaderboard.ranking.context import RuleContext
from leaderboard.ranking.majority import PAIRWISE_POLICIES, smith_set
from leaderboard.ranking.registry import register_rule
from leaderboard.ranking.result import RankingResult, build_result, competition_ranks
from leaderboard.ranking.table import FloatArray, RankingInputError

DP_MAX = 18  # 2^n floats per table: n=18 is 2 MB per array
DP_AUTO = 10
MILP_AUTO = 60  # above this the O(n^3) triangle rows dominate; use the heuristic
METHODS = ("auto", "dp", "milp", "heuristic")
ITERATE_AUTO = 30  # above this, re-solving per rank level gets slow on unstructured data


@dataclass(frozen=True)
class KemenySolution:
    order: tuple[int, ...]
    objective: float
    upper_bound: float
    method: str
    proven_optimal: bool
    proof: str
    # Every system first in some optimal order (None when optimality is not proven).
    winners: tuple[int, ...] | None
    seconds: float


def agreement(p: FloatArray, order: tuple[int, ...] | list[int]) -> float:
    idx = np.asarray(order)
    sub = p[np.ix_(idx, idx)]
    return float(np.triu(sub, 1).sum())


def _tol(p: FloatArray) -> float:
    return 1e-7 * max(1.0, float(np.abs(p).sum()))


def kemeny_brute_force(p: FloatArray) -> tuple[float, set[int]]:
    """Optimum and winner set by enumeration; for tests and n <= 8."""
    n = p.shape[0]
    best = -np.inf
    winners: set[int] = set()
    tol = _tol(p)
    for perm in itertools.permutations(range(n)):
        v = agreement(p, perm)
        if v > best + tol:
            best, winners = v, {perm[0]}
        elif v >= best - tol:
            winners.add(perm[0])
    return float(best), winners


def kemeny_dp(p: FloatArray) -> KemenySolution:
    """Exhaustive DP over subsets: f[S] = best internal agreement of the systems in S."""
    start = time.perf_counter()
    n = p.shape[0]
    if n > DP_MAX:
        raise RankingInputError(f"Kemeny DP is limited to {DP_MAX} systems; use method='milp'")
    size = 1 << n
    # into[i][S] = sum_{j in S} P[j, i]: agreement gained by putting i below all of S.
    into = np.zeros((n, size))
    for k in range(n):
        half = 1 << k
        into[:, half : 2 * half] = into[:, :half] + p[k][:, None]
    f = np.full(size, -np.inf)
    f[0] = 0.0
    choice = np.full(size, -1, dtype=np.int64)
    masks = np.arange(size)
    popcount = np.zeros(size, dtype=np.int64)
    for k in range(n):
        popcount += (masks >> k) & 1
    for layer in range(1, n + 1):
        sel = masks[popcount == layer]
        for i in range(n):
            bit = 1 << i
            s = sel[(sel & bit) != 0]
            prev = s ^ bit
            cand = f[prev] + into[i, prev]
            better = cand > f[s]
            f[s[better]] = cand[better]
            choice[s[better]] = i
    full = size - 1
    order: list[int] = []
    s = full
    while s:
        i = int(choice[s])
        order.append(i)  # i was placed at the bottom of s
        s ^= 1 << i
    order.reverse()
    opt = float(f[full])
    tol = _tol(p)
    winners = tuple(
        x for x in range(n) if float(p[x].sum()) + float(f[full ^ (1 << x)]) >= opt - tol
    )
    return KemenySolution(
        order=tuple(order),
        objective=opt,
        upper_bound=opt,
        method="dp",
        proven_optimal=True,
        proof="exhaustive dynamic programming over all subsets",
        winners=winners,
        seconds=time.perf_counter() - start,
    )


def _model(p: FloatArray) -> tuple[list[tuple[int, int]], FloatArray, float, LinearConstraint]:
    n = p.shape[0]
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    index = {pr: k for k, pr in enumerate(pairs)}
    gain = np.array([p[a, b] - p[b, a] for a, b in pairs])
    const = float(sum(p[b, a] for a, b in pairs))
    triples = np.array(list(itertools.combinations(range(n), 3)), dtype=np.int64).reshape(-1, 3)
    m = len(triples)
    if m:
        ab = np.array([index[(int(a), int(b))] for a, b, _ in triples])
        bc = np.array([index[(int(b), int(c))] for _, b, c in triples])
        ac = np.array([index[(int(a), int(c))] for a, _, c in triples])
        rows = np.repeat(np.arange(m), 3)
        cols = np.stack([ab, bc, ac], axis=1).ravel()
        vals = np.tile([1.0, 1.0, -1.0], m)
        mat = coo_array((vals, (rows, cols)), shape=(m, len(pairs))).tocsr()
    else:
        mat = coo_array((0, max(1, len(pairs)))).tocsr()
    # x_ab = 1 means a above b; transitivity: 0 <= x_ab + x_bc - x_ac <= 1.
    return pairs, gain, const, LinearConstraint(mat, np.zeros(m), np.ones(m))


def _order_from_x(n: int, pairs: list[tuple[int, int]], x: FloatArray) -> tuple[int, ...]:
    above = np.zeros(n)
    for (a, b), v in zip(pairs, x, strict=True):
        if v > 0.5:
            above[b] += 1
        else:
            above[a] += 1
    return tuple(int(i) for i in np.argsort(above, kind="stable"))


def _solve_milp(
    p: FloatArray, *, top: int | None, time_limit: float, integral: bool = True
) -> tuple[tuple[int, ...] | None, float, float, bool]:
    """(order, objective, upper bound, proven) of the IP (or its LP relaxation)."""
    n = p.shape[0]
    pairs, gain, const, cons = _model(p)
    lb = np.zeros(len(pairs))
    ub = np.ones(len(pairs))
    if top is not None:
        for k, (a, b) in enumerate(pairs):
            if a == top:
                lb[k] = 1.0
            elif b == top:
                ub[k] = 0.0
    res = milp(
        -gain,
        constraints=[cons] if cons.A.shape[0] else [],
        integrality=np.ones(len(pairs)) if integral else np.zeros(len(pairs)),
        bounds=Bounds(lb, ub),
        options={"time_limit": time_limit, "mip_rel_gap": 0.0},
    )
    if res.x is None:
        raise RankingInputError(f"Kemeny MILP found no solution in {time_limit} s")
    value = const - float(res.fun)
    if not integral:
        return None, value, value, res.status == 0
    dual = getattr(res, "mip_dual_bound", None)
    bound = const - float(dual) if dual is not None and np.isfinite(dual) else np.inf
    order = _order_from_x(n, pairs, res.x)
    obj = agreement(p, order)
    proven = res.status == 0 and bound <= obj + _tol(p)
    return order, obj, float(bound), bool(proven)


def kemeny_milp(p: FloatArray, *, time_limit: float = 60.0) -> KemenySolution:
    start = time.perf_counter()
    n = p.shape[0]
    order, obj, bound, proven = _solve_milp(p, top=None, time_limit=time_limit)
    assert order is not None
    winners: tuple[int, ...] | None = None
    if proven:
        tol = _tol(p)
        found = {order[0]}
        for x in smith_set(p):  # Kemeny orders put the Smith set on top
            if x in found:
                continue
            # Cheap bound: x's own row plus the best case for every other pair.
            rest = [i for i in range(n) if i != x]
            sub = p[np.ix_(rest, rest)]
            cheap = float(p[x].sum()) + float(np.triu(np.maximum(sub, sub.T), 1).sum())
            if cheap < obj - tol:
                continue
            _o2, v2, _, ok = _solve_milp(p, top=x, time_limit=time_limit)
            if not ok:
                proven = False
                break
            if v2 >= obj - tol:
                found.add(x)
        winners = tuple(sorted(found)) if proven else None
    return KemenySolution(
        order=order,
        objective=obj,
        upper_bound=bound,
        method="milp",
        proven_optimal=proven,
        proof=(
            "HiGHS MILP status optimal with dual bound equal to the objective"
            if proven
            else "MILP stopped before proving optimality (time limit)"
        ),
        winners=winners,
        seconds=time.perf_counter() - start,
    )


def local_search(p: FloatArray, order: list[int]) -> list[int]:
    """Insertion moves (take one system out, put it back at its best place) to a local
    optimum: the Kemenisation of a start order."""
    n = len(order)
    order = list(order)
    tol = _tol(p)
    improved = True
    while improved:
        improved = False
        for e in list(order):
            rest = [r for r in order if r != e]
            up = p[rest, e]  # gained when r stays above e
            down = p[e, rest]  # gained when e goes above r
            # value(k): e inserted at position k of rest.
            vals = np.concatenate([[0.0], np.cumsum(up)]) + np.concatenate(
                [np.cumsum(down[::-1])[::-1], [0.0]]
            )
            cur = order.index(e)
            k = int(np.argmax(vals))
            if vals[k] > vals[cur] + tol:
                order = [*rest[:k], e, *rest[k:]]
                improved = True
    assert len(order) == n
    return order


def kemeny_heuristic(
    p: FloatArray, *, time_limit: float = 60.0, lp_bound: bool = True
) -> KemenySolution:
    start = time.perf_counter()
    n = p.shape[0]
    borda = p.sum(axis=1)
    order = local_search(p, [int(i) for i in np.argsort(-borda, kind="stable")])
    obj = agreement(p, order)
    trivial = float(np.triu(np.maximum(p, p.T), 1).sum())
    bound = trivial
    how = "sum over pairs of the larger direction (trivial bound)"
    if lp_bound and n >= 3:
        _, lp, _, ok = _solve_milp(p, top=None, time_limit=time_limit, integral=False)
        if ok and lp < bound:
            bound, how = lp, "LP relaxation with all 3-cycle constraints"
    proven = bound <= obj + _tol(p)
    return KemenySolution(
        order=tuple(order),
        objective=obj,
        upper_bound=bound,
        method="heuristic",
        proven_optimal=proven,
        proof=f"Borda start + insertion local search; upper bound: {how}",
        winners=None,
        seconds=time.perf_counter() - start,
    )


def solve_kemeny(
    p: FloatArray, *, method: str = "auto", time_limit: float = 60.0
) -> KemenySolution:
    n = p.shape[0]
    if method not in METHODS:
        raise RankingInputError(f"unknown Kemeny method {method!r}; choose one of {METHODS}")
    if method == "auto":
        method = "dp" if n <= DP_AUTO else "milp" if n <= MILP_AUTO else "heuristic"
    if method == "dp":
        return kemeny_dp(p)
    if method == "milp":
        return kemeny_milp(p, time_limit=time_limit)
    return kemeny_heuristic(p, time_limit=time_limit)


def iterated_winners(p: FloatArray, sol: KemenySolution, *, time_limit: float) -> list[int]:
    """Levels: 0 = every system heading some optimal order, then the same among the rest.

    Label-independent, unlike any single optimal order (co-optimal orders are common).
    """
    n = p.shape[0]
    level = [-1] * n
    alive = list(range(n))
    current: KemenySolution | None = sol
    k = 0
    while alive:
        if current is None:
            sub = p[np.ix_(alive, alive)]
            current = (
                kemeny_dp(sub) if len(alive) <= DP_AUTO else kemeny_milp(sub, time_limit=time_limit)
            )
        if current.winners is None:
            raise RankingInputError(
                "Kemeny optimality was not proven within the time limit; raise time_limit"
            )
        for w in current.winners:
            level[alive[w]] = k
        alive = [a for i, a in enumerate(alive) if i not in set(current.winners)]
        current = None
        k += 1
    return level


@register_rule(
    "kemeny",
    description="Kemeny-Young consensus (params: method=auto|dp|milp|heuristic, "
    "time_limit seconds, ranking=iterated|order); rank 1 = every system heading some "
    "optimal order; 'iterated' (default up to 30 systems) repeats that among the rest, "
    "'order' follows one optimal order (details hold it in full)",
    missing=PAIRWISE_POLICIES,
    condorcet_consistent=True,
)
def kemeny(ctx: RuleContext) -> RankingResult:
    p = ctx.pairwise
    time_limit = float(ctx.params.get("time_limit", 60.0))
    sol = solve_kemeny(p, method=str(ctx.params.get("method", "auto")), time_limit=time_limit)
    names = ctx.systems
    iterate = ctx.params.get("ranking", "iterated" if ctx.n <= ITERATE_AUTO else "order")
    if iterate not in ("iterated", "order"):
        raise RankingInputError("Kemeny params ranking must be 'iterated' or 'order'")
    if sol.winners is not None and iterate == "iterated":
        levels = iterated_winners(p, sol, time_limit=time_limit)
        winners = [names[i] for i in sol.winners]
    elif sol.winners is not None:
        # Co-winners share rank 1, the rest follow the optimal order found (cheaper than
        # re-solving per level on large unstructured tables, but tie-order dependent).
        rest = [i for i in sol.order if i not in sol.winners]
        levels = [0] * ctx.n
        for pos, i in enumerate(rest, start=1):
            levels[i] = pos
        winners = [names[i] for i in sol.winners]
    else:
        # Heuristic: no certificate, so the order found is all we can report.
        levels = [sol.order.index(i) for i in range(ctx.n)]
        winners = [names[sol.order[0]]]
    ranks = competition_ranks([float(v) for v in levels])
    total = float(p.sum())
    gap = max(0.0, sol.upper_bound - sol.objective)
    return build_result(
        rule=ctx.rule.name,
        systems=names,
        ranks=ranks,
        scores=None,
        winners=winners,
        details={
            "optimal_order": [names[i] for i in sol.order],
            "objective": sol.objective,
            "disagreement": total - sol.objective,
            "upper_bound": sol.upper_bound,
            "optimality_gap": gap,
            "relative_gap": gap / max(1e-12, abs(sol.upper_bound)),
            "proven_optimal": sol.proven_optimal,
            "proof": sol.proof,
            "method": sol.method,
            "winners_certified": sol.winners is not None,
            "ranking_semantics": (
                "heuristic order (not certified)"
                if sol.winners is None
                else "iterated Kemeny winners"
                if iterate == "iterated"
                else "co-winners first, then one optimal order"
            ),
            "seconds": sol.seconds,
        },
    )
