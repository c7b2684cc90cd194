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
import numpy.typing as npt
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_array, vstack

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
# The LP bound has n^3/6 triangle rows: 0.7 s at n=60, over a minute at n=100.
LP_BOUND_MAX = 60


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


@dataclass(frozen=True)
class _Model:
    """The pair-variable integer program: x_ab = 1 means a above b (a < b)."""

    n: int
    pairs: list[tuple[int, int]]
    gain: FloatArray  # objective coefficient of x_ab: P[a, b] - P[b, a]
    const: float  # agreement when every x_ab = 0
    cons: LinearConstraint  # transitivity: 0 <= x_ab + x_bc - x_ac <= 1 per triple

    def top_bounds(self, top: int | None) -> tuple[FloatArray, FloatArray]:
        """Variable bounds, with ``top`` (if any) fixed above everybody."""
        lb = np.zeros(len(self.pairs))
        ub = np.ones(len(self.pairs))
        if top is not None:
            first = np.array([a for a, _ in self.pairs])
            second = np.array([b for _, b in self.pairs])
            lb[first == top] = 1.0
            ub[second == top] = 0.0
        return lb, ub


IntArray = npt.NDArray[np.int64]


def _pair_index(n: int, a: IntArray, b: IntArray) -> IntArray:
    """Position of the pair (a, b), a < b, in the row-major list of pairs."""
    out: IntArray = a * n - a * (a + 1) // 2 + (b - a - 1)
    return out


def _model(p: FloatArray) -> _Model:
    n = p.shape[0]
    iu, ju = np.triu_indices(n, 1)
    pairs = [(int(a), int(b)) for a, b in zip(iu, ju, strict=True)]
    gain = p[iu, ju] - p[ju, iu]
    const = float(p[ju, iu].sum())
    if n >= 3:
        # Every triple a < b < c, vectorised (the Python loop dominated model building).
        triples = np.array(list(itertools.combinations(range(n), 3)), dtype=np.int64)
        a, b, c = triples[:, 0], triples[:, 1], triples[:, 2]
        m = len(triples)
        cols = np.stack(
            [_pair_index(n, a, b), _pair_index(n, b, c), _pair_index(n, a, c)], axis=1
        ).ravel()
        rows = np.repeat(np.arange(m), 3)
        vals = np.tile([1.0, 1.0, -1.0], m)
        mat = coo_array((vals, (rows, cols)), shape=(m, len(pairs))).tocsr()
    else:
        m = 0
        mat = coo_array((0, max(1, len(pairs)))).tocsr()
    cons = LinearConstraint(mat, np.zeros(m), np.ones(m))
    return _Model(n=n, pairs=pairs, gain=gain, const=const, cons=cons)


def _order_from_x(n: int, pairs: list[tuple[int, int]], x: FloatArray) -> tuple[int, ...]:
    above = np.zeros(n)
    for (a, b), v in zip(pairs, x, strict=True):
        if v > 0.5:
            above[b] += 1
        else:
            above[a] += 1
    return tuple(int(i) for i in np.argsort(above, kind="stable"))


def _solve_milp(
    p: FloatArray,
    *,
    top: int | None,
    time_limit: float,
    integral: bool = True,
    model: _Model | None = None,
) -> tuple[tuple[int, ...] | None, float, float, bool]:
    """(order, objective, upper bound, proven) of the IP (or its LP relaxation)."""
    n = p.shape[0]
    mod = model if model is not None else _model(p)
    lb, ub = mod.top_bounds(top)
    res = milp(
        -mod.gain,
        constraints=[mod.cons] if mod.cons.A.shape[0] else [],
        integrality=np.ones(len(mod.pairs)) if integral else np.zeros(len(mod.pairs)),
        bounds=Bounds(lb, ub),
        options={"time_limit": time_limit, "mip_rel_gap": 0.0},
    )
    if res.x is None:
        raise RankingInputError(f"Kemeny MILP found no solution in {time_limit} s")
    value = mod.const - float(res.fun)
    if not integral:
        return None, value, value, res.status == 0
    dual = getattr(res, "mip_dual_bound", None)
    bound = mod.const - float(dual) if dual is not None and np.isfinite(dual) else np.inf
    order = _order_from_x(n, mod.pairs, res.x)
    obj = agreement(p, order)
    proven = res.status == 0 and bound <= obj + _tol(p)
    return order, obj, float(bound), bool(proven)


def _lp_top_bounds(mod: _Model, time_limit: float) -> FloatArray | None:
    """Upper bound, for every system x, on the agreement of any order with x on top.

    One LP relaxation (all 3-cycle rows) plus reduced-cost fixing: the LP dual stays
    feasible when variable bounds change, and the dual objective is linear in the bounds,
    so LP* minus the reduced costs of the variables that "x on top" fixes bounds the LP
    (hence the IP) with x on top. None when the LP is not solved to optimality.
    """
    a_mat = mod.cons.A
    if a_mat.shape[0] == 0:
        return None
    res = linprog(
        -mod.gain,
        A_ub=vstack([a_mat, -a_mat]).tocsr(),
        b_ub=np.concatenate([np.ones(a_mat.shape[0]), np.zeros(a_mat.shape[0])]),
        bounds=(0.0, 1.0),
        method="highs",
        options={"time_limit": time_limit},
    )
    if res.status != 0:
        return None
    # scipy reports d(objective)/d(bound): >= 0 for lower bounds, <= 0 for upper bounds
    # of this minimisation; clip float noise of the wrong sign (that only loosens the bound).
    raise_cost = np.maximum(np.asarray(res.lower.marginals, dtype=np.float64), 0.0)
    drop_cost = np.maximum(-np.asarray(res.upper.marginals, dtype=np.float64), 0.0)
    first = np.array([a for a, _ in mod.pairs])
    second = np.array([b for _, b in mod.pairs])
    # x on top: x_xb -> 1 for b > x (raise from lb 0), x_ax -> 0 for a < x (drop ub 1).
    pen = np.bincount(first, weights=raise_cost, minlength=mod.n) + np.bincount(
        second, weights=drop_cost, minlength=mod.n
    )
    lp_value = mod.const - float(res.fun)
    out: FloatArray = np.asarray(lp_value - pen, dtype=np.float64)
    return out


def _heads_optimal_order(
    p: FloatArray, x: int, order: tuple[int, ...], opt: float, tol: float
) -> bool:
    """Witness search: x on top of a locally optimal order of the others reaches opt."""
    rest = local_search(p, [i for i in order if i != x])
    return float(p[x].sum()) + agreement(p, rest) >= opt - tol


def kemeny_milp(
    p: FloatArray, *, time_limit: float = 60.0, co_winners: bool = True
) -> KemenySolution:
    """Exact Kemeny by MILP, then (``co_winners``) the set of co-optimal winners.

    Without ``co_winners`` the result is one optimal order and its proof (winners None).

    Winners: only Smith-set members can head an optimal order. Each candidate is settled
    by the cheapest argument that works: (1) a combinatorial bound (its row plus the best
    case of every other pair), (2) the LP-relaxation bound with reduced-cost fixing (one
    LP for all candidates), (3) a witness (it on top of a local optimum of the others
    reaches the optimum), and only then (4) a MILP with the candidate fixed on top.
    """
    start = time.perf_counter()
    n = p.shape[0]
    mod = _model(p)
    order, obj, bound, proven = _solve_milp(p, top=None, time_limit=time_limit, model=mod)
    assert order is not None
    winners: tuple[int, ...] | None = None
    if proven and co_winners:
        tol = _tol(p)
        found = {order[0]}
        lp_bounds: FloatArray | None = None
        lp_done = False
        for x in smith_set(p):  # Kemeny orders put the Smith set on top
            if x in found:
                continue
            # Cheap bound: x's own row plus the best case for every other pair.
            rest = [i for i in range(n) if i != x]
            sub = p[np.ix_(rest, rest)]
            cheap = float(p[x].sum()) + float(np.triu(np.maximum(sub, sub.T), 1).sum())
            if cheap < obj - tol:
                continue
            if not lp_done:
                lp_bounds = _lp_top_bounds(mod, time_limit)
                lp_done = True
            if lp_bounds is not None and float(lp_bounds[x]) < obj - tol:
                continue
            if _heads_optimal_order(p, x, order, obj, tol):
                found.add(x)
                continue
            _o2, v2, _, ok = _solve_milp(p, top=x, time_limit=time_limit, model=mod)
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
    if lp_bound and 3 <= n <= LP_BOUND_MAX:
        try:
            _, lp, _, ok = _solve_milp(p, top=None, time_limit=time_limit, integral=False)
        except RankingInputError:  # LP not solved in time: keep the trivial bound
            ok, lp = False, np.inf
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
    p: FloatArray, *, method: str = "auto", time_limit: float = 60.0, co_winners: bool = True
) -> KemenySolution:
    """Solve Kemeny-Young on the pairwise matrix ``p``.

    ``co_winners=False`` skips the winner-set search of the MILP method (one optimal
    order and its proof only; ``winners`` is then None). The DP gets the set for free.
    """
    n = p.shape[0]
    if method not in METHODS:
        raise RankingInputError(f"unknown Kemeny method {method!r}; choose one of {METHODS}")
    if method == "auto":
        method = "dp" if n <= DP_AUTO else "milp" if n <= MILP_AUTO else "heuristic"
    if method == "dp":
        return kemeny_dp(p)
    if method == "milp":
        return kemeny_milp(p, time_limit=time_limit, co_winners=co_winners)
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
