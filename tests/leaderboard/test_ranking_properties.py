"""Axiomatic properties of the rules, checked with hypothesis (derandomized for CI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leaderboard.ranking import RULES, ScoreTable, rank
from leaderboard.ranking.kemeny import kemeny_brute_force, kemeny_dp, kemeny_milp

SETTINGS = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ALL_RULES = sorted(r for r in RULES if r != "normalized_mean")  # that one needs baselines
CONDORCET_RULES = ["copeland", "minimax", "schulze", "ranked_pairs", "kemeny", "baldwin", "nanson"]
RANK_BASED = sorted(
    set(ALL_RULES) - {"mean", "geometric_mean", "optimality_gap", "normalized_mean"}
)


@st.composite
def tables(draw: st.DrawFn, max_n: int = 6, max_t: int = 5, values: int = 5) -> ScoreTable:
    n = draw(st.integers(2, max_n))
    t = draw(st.integers(1, max_t))
    # Small integer scores (>= 1 so the geometric mean is defined) make ties common.
    cells = draw(st.lists(st.integers(1, values), min_size=n * t, max_size=n * t))
    return ScoreTable(
        systems=tuple(f"s{i}" for i in range(n)),
        tasks=tuple(f"t{j}" for j in range(t)),
        scores=np.array(cells, dtype=float).reshape(n, t),
    )


def weights_for(draw: Callable[..., Any], table: ScoreTable) -> dict[str, float]:
    ws = draw(
        st.lists(
            st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=table.n_tasks, max_size=table.n_tasks
        )
    )
    return dict(zip(table.tasks, ws, strict=True))


def condorcet_winner(table: ScoreTable, w: dict[str, float]) -> str | None:
    x = table.scores
    wv = np.array([w[t] for t in table.tasks])
    for a in range(table.n_systems):
        if all(wv @ (x[a] > x[b]) > wv @ (x[b] > x[a]) for b in range(table.n_systems) if b != a):
            return table.systems[a]
    return None


def rank_map(res: object) -> dict[str, int]:
    return {e.system: e.rank for e in res.ranking}  # type: ignore[attr-defined]


@SETTINGS
@given(data=st.data())
def test_condorcet_consistent_rules_elect_the_condorcet_winner(data: st.DataObject) -> None:
    table = data.draw(tables(max_n=6, max_t=5))
    w = weights_for(data.draw, table)
    cw = condorcet_winner(table, w)
    cond = rank(table, rule="condorcet", weights=w)
    assert cond.winners == ((cw,) if cw else ())
    if cw is None:
        return
    for rule in CONDORCET_RULES:
        assert rank(table, rule=rule, weights=w).winners == (cw,), rule


@SETTINGS
@given(table=tables(max_n=6, max_t=4), best=st.integers(0, 5))
def test_unanimity_and_pareto(table: ScoreTable, best: int) -> None:
    a = best % table.n_systems
    x = table.scores.copy()
    x[a] = x.max(axis=0) + 1  # strictly best everywhere
    t = table.with_scores(x)
    for rule in ALL_RULES:
        res = rank(t, rule=rule)
        assert res.winners == (t.systems[a],), rule
        ranks = rank_map(res)
        for b in t.systems:
            # Pareto: nobody ranks strictly above a system that beats it on every task.
            assert ranks[t.systems[a]] <= ranks[b], (rule, b)


@SETTINGS
@given(data=st.data())
def test_neutrality_under_relabelling(data: st.DataObject) -> None:
    table = data.draw(tables(max_n=6, max_t=4))
    perm = data.draw(st.permutations(range(table.n_systems)))
    shuffled = ScoreTable(
        systems=tuple(table.systems[i] for i in perm),
        tasks=table.tasks,
        scores=table.scores[list(perm)],
    )
    for rule in ALL_RULES:
        a = rank(table, rule=rule)
        b = rank(shuffled, rule=rule)
        assert rank_map(a) == rank_map(b), rule
        assert a.winners == b.winners, rule


@SETTINGS
@given(table=tables(max_n=6, max_t=4), col=st.integers(0, 3))
def test_rank_based_rules_ignore_monotone_rescaling(table: ScoreTable, col: int) -> None:
    j = col % table.n_tasks
    x = table.scores.copy()
    x[:, j] = np.exp(x[:, j] / 2.0) * 3.0 - 100.0  # strictly increasing, changes the scale
    t2 = table.with_scores(x)
    for rule in RANK_BASED:
        assert rank_map(rank(table, rule=rule)) == rank_map(rank(t2, rule=rule)), rule
    # ... while the arithmetic mean is scale dependent: on this data it may change.


@SETTINGS
@given(data=st.data())
def test_zero_weight_removes_a_task(data: st.DataObject) -> None:
    table = data.draw(tables(max_n=5, max_t=4))
    if table.n_tasks < 2:
        return
    drop = data.draw(st.sampled_from(table.tasks))
    x = table.scores.copy()
    x[:, table.tasks.index(drop)] = data.draw(st.sampled_from([-5.0, 0.0, 1e6]))
    t = table.with_scores(x)  # the dropped task holds anything, even GM-invalid scores
    rest = [c for c in table.tasks if c != drop]
    for rule in ALL_RULES:
        with_zero = rank(t, rule=rule, weights={drop: 0.0})
        without = rank(table.select(tasks=rest), rule=rule)
        assert rank_map(with_zero) == rank_map(without), rule
        assert [e.score for e in with_zero.ranking] == [e.score for e in without.ranking], rule


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    n=st.integers(2, 7),
    cells=st.lists(st.integers(0, 3), min_size=7 * 4, max_size=7 * 4),
    w=st.lists(st.sampled_from([0.5, 1.0, 1.5, 2.0]), min_size=4, max_size=4),
)
def test_exact_kemeny_equals_brute_force(n: int, cells: list[int], w: list[float]) -> None:
    x = np.array(cells, dtype=float).reshape(7, 4)[:n]
    wv = np.array(w)
    p = np.einsum(
        "t,abt->ab", wv, (x[:, None, :] > x[None, :, :]) + 0.5 * (x[:, None, :] == x[None, :, :])
    )
    np.fill_diagonal(p, 0.0)
    best, winners = kemeny_brute_force(p)
    dp = kemeny_dp(p)
    mip = kemeny_milp(p)
    assert dp.objective == best
    assert mip.objective == best
    assert mip.proven_optimal
    assert dp.proven_optimal
    assert set(dp.winners or ()) == winners
    assert set(mip.winners or ()) == winners
