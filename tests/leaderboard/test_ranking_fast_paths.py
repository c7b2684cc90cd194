"""Each fast path of the ranking engine against the general code it shortcuts, on random
tables with ties, missing cells and weights: same numbers, same winners, same errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import rankdata

from leaderboard.ranking import RankingInputError, ScoreTable, get_rule, rank
from leaderboard.ranking import majority as maj
from leaderboard.ranking import positional as pos
from leaderboard.ranking.context import make_context, resolve_weights, weighted_pairwise
from leaderboard.ranking.result import (
    TIE_RTOL,
    competition_rank_array,
    first_block,
    result_from_levels,
)

SEEDS = range(40)


def random_scores(rng: np.random.Generator, n: int, t: int, *, nan: float = 0.0) -> np.ndarray:
    """Small integers (many ties) or uniform floats, with a share of missing cells."""
    ties = rng.random() < 0.5
    x = rng.integers(0, 4, size=(n, t)).astype(float) if ties else rng.random((n, t))
    if nan:
        x[rng.random((n, t)) < nan] = np.nan
    return x


def table_of(x: np.ndarray) -> ScoreTable:
    n, t = x.shape
    return ScoreTable(
        systems=tuple(f"s{i}" for i in range(n)), tasks=tuple(f"t{j}" for j in range(t)), scores=x
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_first_block_is_competition_rank_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n in (1, 2, 5, 31, 32, 33, 80):
        base = rng.choice([0.0, 1.0, -3.5, 1e12, 7e-3])
        # Keys a few TIE_RTOL apart chain into one block; some just beyond the chain.
        steps = rng.choice([0.0, 0.4, 0.9, 1.1, 5.0, 1e6], size=n) * TIE_RTOL
        keys = base + np.cumsum(steps) * max(1.0, abs(base))
        keys = keys[rng.permutation(n)]
        if rng.random() < 0.3:
            keys[rng.random(n) < 0.3] = np.nan
        if rng.random() < 0.1:
            keys[:] = np.nan
        if rng.random() < 0.1:
            keys[rng.integers(n)] = -np.inf
        expected = np.flatnonzero(competition_rank_array(keys) == 1).tolist()
        assert sorted(first_block(keys)) == expected


def test_result_from_levels_small_lists_match_arrays() -> None:
    rng = np.random.default_rng(0)
    names = [f"s{i}" for i in range(20)]
    for _ in range(50):
        levels = rng.integers(0, 4, size=20).tolist()
        fast = result_from_levels(rule="r", systems=names, levels=levels, scores=None, details={})
        slow = result_from_levels(
            rule="r", systems=names, levels=np.array(levels), scores=None, details={}
        )
        assert fast == slow
        low = min(levels)
        best = [name for name, level in zip(names, levels, strict=True) if level == low]
        assert fast.winners == tuple(sorted(best))


def _weights_by_entry(table: ScoreTable, weights: dict[str, object]) -> np.ndarray:
    """The entry-by-entry definition of resolve_weights (what its fast path shortcuts)."""
    w = np.ones(table.n_tasks)
    for task, value in weights.items():
        w[table.tasks.index(task)] = float(value)  # type: ignore[arg-type]
    return w


def test_weights_fast_path_matches_entry_by_entry() -> None:
    rng = np.random.default_rng(1)
    tab = table_of(rng.random((4, 6)))
    for _ in range(200):
        chosen = [t for t in tab.tasks if rng.random() < 0.7]
        values = rng.choice([0.0, 0.5, 1.0, 3.0, 1e-300], size=len(chosen)).tolist()
        weights: dict[str, object] = dict(zip(chosen, values, strict=True))
        if rng.random() < 0.2:  # plain ints are accepted too
            weights = {t: int(2 * v) for t, v in zip(chosen, values, strict=True)}
        w = _weights_by_entry(tab, weights)
        if not weights or (w > 0).any():
            got = resolve_weights(tab, weights)  # type: ignore[arg-type]
            np.testing.assert_array_equal(got, w)
        else:
            with pytest.raises(RankingInputError, match="positive weight"):
                resolve_weights(tab, weights)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"t0": -1.0}, "weight of 't0' must be a finite number >= 0, got -1.0"),
        ({"t0": math.nan, "t1": 1.0}, "weight of 't0' must be a finite number >= 0"),
        ({"t1": 1.0, "t0": math.inf}, "weight of 't0' must be a finite number >= 0"),
        ({"t0": "x"}, "weight of 't0' must be a number"),
        ({"t0": None}, "weight of 't0' must be a number"),
        ({"zz": 1.0}, "unknown column 'zz' in weights"),
        ({"t0": 0.0, "t1": 0.0, "t2": 0.0}, "at least one task needs a positive weight"),
    ],
)
def test_bad_weights_still_raise_precise_errors(weights: dict[str, object], message: str) -> None:
    tab = table_of(np.arange(9.0).reshape(3, 3))
    with pytest.raises(RankingInputError, match=message.replace("(", r"\(")):
        rank(tab, rule="borda", weights=weights)  # type: ignore[arg-type]


def test_numeric_string_weights_are_still_accepted() -> None:
    tab = table_of(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert rank(tab, rule="mean", weights={"t0": "3"}).winners == ("s0",)  # type: ignore[dict-item]


@pytest.mark.parametrize("seed", SEEDS)
def test_pairwise_known_complete_matches_checked(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = random_scores(rng, int(rng.integers(1, 30)), int(rng.integers(1, 8)))
    w = rng.choice([0.0, 0.3, 1.0, 2.5], size=x.shape[1])
    for strict in (False, True):
        checked = weighted_pairwise(x, w, strict=strict, impute=False)
        known = weighted_pairwise(x, w, strict=strict, impute=False, complete=True)
        np.testing.assert_array_equal(known, checked)
        # The definition: per task, 1 for a win and 1/2 (strict: 0) for a tie.
        gt = (x[:, None, :] > x[None, :, :]) + (0.0 if strict else 0.5) * (
            x[:, None, :] == x[None, :, :]
        )
        expected = gt @ w
        np.fill_diagonal(expected, 0.0)
        np.testing.assert_allclose(checked, expected, rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_positions_match_scipy_rankdata(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = random_scores(rng, int(rng.integers(1, 40)), int(rng.integers(1, 6)))
    ctx = make_context(
        rule=get_rule("borda"),
        table=table_of(x),
        weights=None,
        missing=None,
        convention="podium",
        params=None,
    )
    for method in ("min", "max", "average"):
        np.testing.assert_array_equal(ctx.positions(method), rankdata(-x, method=method, axis=0))


def _closure_pairs(n: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """Random edges that keep the relation acyclic (all go from lower to higher index
    of a random permutation)."""
    perm = rng.permutation(n)
    src, dst = [], []
    for _ in range(int(rng.integers(0, 3 * n))):
        a, b = sorted(rng.choice(n, size=2, replace=False))
        src.append(int(perm[a]))
        dst.append(int(perm[b]))
    return src, dst


@pytest.mark.parametrize("seed", SEEDS)
def test_bit_closure_matches_matrix_closure(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    src, dst = _closure_pairs(n, rng)
    bits, matrix, batch = maj._BitClosure(n), maj._MatrixClosure(n), maj._BitClosure(n)
    for a, c in zip(src, dst, strict=True):
        bits.lock(a, c)
        matrix.lock(a, c)
    batch.lock_all(src, dst)
    np.testing.assert_array_equal(bits.matrix(), matrix.matrix())
    np.testing.assert_array_equal(batch.matrix(), matrix.matrix())
    # Levels: the total-order shortcut and the general peel agree.
    general = matrix.matrix()
    np.fill_diagonal(general, False)
    assert bits.levels() == matrix.levels() == maj.peel_levels(general)
    # Cycle checks for a group of candidates: bitset products vs scipy's components.
    cand_src, cand_dst = _closure_pairs(n, rng)
    pairs = list(zip(cand_src, cand_dst, strict=True))
    keep = [i for i, (a, c) in enumerate(pairs) if not bits.reaches(c, a)]
    cand_src = [cand_src[i] for i in keep]
    cand_dst = [cand_dst[i] for i in keep]
    if len(cand_src) > maj._SMALL_GROUP:
        assert maj._off_cycle(bits, cand_src, cand_dst) == maj._off_cycle(
            matrix, cand_src, cand_dst
        )


@pytest.mark.parametrize("seed", SEEDS)
def test_ranked_pairs_bitset_path_matches_general_path(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 45))
    x = random_scores(rng, n, int(rng.integers(1, 12)), nan=0.1 if seed % 3 == 0 else 0.0)
    weights = {f"t{j}": float(rng.choice([1.0, 2.0, 0.5])) for j in range(x.shape[1])}
    ctx = make_context(
        rule=get_rule("ranked_pairs"),
        table=table_of(x),
        weights=weights,
        missing="pairwise" if np.isnan(x).any() else None,
        convention="podium",
        params=None,
    )
    p = ctx.pairwise
    margin = p - p.T
    src, dst = np.nonzero(maj.beats(p))
    vals = margin[src, dst]
    order = np.argsort(-vals, kind="stable")
    args = (src[order].tolist(), dst[order].tolist(), vals[order].tolist())
    tol = TIE_RTOL * max(1.0, float(np.abs(margin).max()))
    fast = maj._lock_in_order_bits(n, *args, tol)
    general = maj._lock_in_order(maj._MatrixClosure(n), *args, tol)
    assert fast == general


@pytest.mark.parametrize("seed", SEEDS)
def test_small_eliminations_match_array_eliminations(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(seed)
    x = random_scores(rng, int(rng.integers(2, 30)), int(rng.integers(1, 8)))
    tab = table_of(x)
    weights = {t: float(rng.choice([1.0, 0.5, 3.0])) for t in tab.tasks}
    small = {r: rank(tab, rule=r, weights=weights) for r in ("baldwin", "nanson")}
    monkeypatch.setattr(pos, "_PYTHON_ELIMINATION_MAX", 0)
    for rule, res in small.items():
        assert rank(tab, rule=rule, weights=weights) == res


def test_table_finite_check_survives_an_overflowing_sum() -> None:
    big = np.array([[1e308, 1e308], [1e308, 1e308]])
    assert not table_of(big).has_missing  # the sum overflows; the cells are finite
    assert table_of(np.array([[1.0, np.nan]])).has_missing
    with pytest.raises(RankingInputError, match="finite"):
        table_of(np.array([[1.0, -np.inf]]))
