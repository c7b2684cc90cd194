"""Unit tests: semantics (direction, ties, weights, missing), each rule family, Kemeny
solvers, two-level ranking, bootstrap and diagnostics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from leaderboard.ranking import (
    RULES,
    RankingInputError,
    ScoreTable,
    UnknownRuleError,
    get_rule,
    rank,
    rank_all,
    register_rule,
)
from leaderboard.ranking.diagnostics import (
    agreement,
    condorcet_winner,
    kendall_tau_b,
    possible_condorcet_winners,
    robustness,
)
from leaderboard.ranking.kemeny import agreement as kemeny_agreement
from leaderboard.ranking.kemeny import kemeny_heuristic, kemeny_milp, solve_kemeny
from leaderboard.ranking.levels import InstanceScores, rank_groups, task_table, two_level_rank
from leaderboard.ranking.uncertainty import bootstrap_examples, bootstrap_seeds


def table(rows: dict[str, list[float | None]], tasks: str = "abcdefgh", **kw: object) -> ScoreTable:
    n_tasks = len(next(iter(rows.values())))
    return ScoreTable.from_rows(
        {s: dict(zip(tasks, v, strict=False)) for s, v in rows.items()},
        tasks=tuple(tasks[:n_tasks]),
        **kw,  # type: ignore[arg-type]
    )


def scores(res: object) -> dict[str, float | None]:
    return {e.system: e.score for e in res.ranking}  # type: ignore[attr-defined]


def test_registry_and_unknown_rule() -> None:
    assert get_rule("borda").name == "borda"
    with pytest.raises(UnknownRuleError, match=r"known rules: .*borda.*kemeny"):
        get_rule("bordaa")
    with pytest.raises(ValueError, match="already registered"):
        register_rule("borda", description="dup")(RULES["borda"].func)


def test_direction_lower_is_better() -> None:
    t = table({"A": [1.0, 10.0], "B": [2.0, 20.0]}, lower_is_better=["a", "b"])
    assert rank(t, rule="borda").winners == ("A",)
    assert rank(t, rule="mean").winners == ("A",)
    assert rank(t, rule="mean").details["score_order"] == "lower_is_better"
    mixed = table({"A": [1.0, 10.0], "B": [2.0, 20.0]}, lower_is_better=["a"])
    with pytest.raises(RankingInputError, match="one direction"):
        rank(mixed, rule="mean")
    assert rank(mixed, rule="copeland").winners == ("A", "B")


def test_tie_convention_is_shared_across_rules() -> None:
    # Task a: A and B tie for first; task b: C first, A and B tie second.
    t = table({"A": [5.0, 1.0], "B": [5.0, 1.0], "C": [0.0, 3.0]})
    assert scores(rank(t, rule="plurality")) == {"A": 0.5, "B": 0.5, "C": 1.0}
    assert scores(rank(t, rule="borda")) == {"A": 2.0, "B": 2.0, "C": 2.0}
    dow = scores(rank(t, rule="dowdall"))
    assert dow["A"] == pytest.approx((1 + 0.5) / 2 + (0.5 + 1 / 3) / 2)
    assert scores(rank(t, rule="average_rank")) == {"A": 2.0, "B": 2.0, "C": 2.0}
    assert rank(t, rule="borda").winners == ("A", "B", "C")
    # Vote'n'Rank: a shared first place gives nobody the plurality point.
    assert scores(rank(t, rule="plurality", convention="votenrank")) == {
        "A": 0.0,
        "B": 0.0,
        "C": 1.0,
    }


def test_competition_ranks_1224() -> None:
    t = table({"A": [3.0], "B": [2.0], "C": [2.0], "D": [1.0]})
    res = rank(t, rule="mean")
    assert [(e.system, e.rank) for e in res.ranking] == [("A", 1), ("B", 2), ("C", 2), ("D", 4)]
    assert json.loads(json.dumps(res.to_dict()))["ranking"][1] == {
        "system": "B",
        "rank": 2,
        "score": 2.0,
    }


def test_weights_validation() -> None:
    t = table({"A": [1.0, 2.0], "B": [2.0, 1.0]})
    assert rank(t, rule="mean", weights={"a": 3.0}).winners == ("B",)
    with pytest.raises(RankingInputError, match="unknown column 'z'"):
        rank(t, rule="mean", weights={"z": 1.0})
    with pytest.raises(RankingInputError, match=">= 0"):
        rank(t, rule="mean", weights={"a": -1.0})
    with pytest.raises(RankingInputError, match="positive weight"):
        rank(t, rule="mean", weights={"a": 0.0, "b": 0.0})


def test_missing_policies() -> None:
    t = table({"A": [9.0, None, 9.0], "B": [5.0, 5.0, 5.0], "C": [1.0, 8.0, 1.0]})
    with pytest.raises(RankingInputError, match="missing policy"):
        rank(t, rule="copeland")
    with pytest.raises(RankingInputError, match="cannot rank with missing policy 'pairwise'"):
        rank(t, rule="plurality", missing="pairwise")
    with pytest.raises(RankingInputError, match="cannot rank"):
        rank(t, rule="borda", missing="pairwise")
    # Pairwise deletion: A beats B and C on the two tasks it has.
    assert rank(t, rule="copeland", missing="pairwise").winners == ("A",)
    # Median fill: A's missing b becomes median(5, 8) = 6.5.
    assert scores(rank(t, rule="mean", missing="median"))["A"] == pytest.approx((9 + 6.5 + 9) / 3)
    # Imputation, task b: C (observed rank 0 of k=2) is above A with prob (2-0)/3, B (rank 1)
    # with (2-1)/3, so A collects 1/3 + 2/3 there; B loses 1/3 of its comparison with A.
    imp = rank(t, rule="borda", missing="impute")
    assert scores(imp)["A"] == pytest.approx(2 + (1 / 3 + 2 / 3) + 2)
    assert scores(imp)["B"] == pytest.approx(1 + (1 / 3 + 0) + 1)
    # HELM skips missing cells.
    assert scores(rank(t, rule="mean_win_rate", missing="pairwise"))["A"] == pytest.approx(1.0)


def test_grouped_and_normalized_means() -> None:
    t = table({"A": [80.0, 60.0, 70.0], "B": [70.0, 70.0, 72.0]})
    plain = scores(rank(t, rule="mean"))
    grouped = scores(rank(t, rule="mean", params={"groups": {"a": "ab", "b": "ab"}}))
    assert plain["A"] == pytest.approx(70.0)
    assert grouped["A"] == pytest.approx((70.0 + 70.0) / 2)
    norm = rank(t, rule="normalized_mean", params={"baselines": {"a": 50, "b": 65, "c": 25}})
    a = (100 * 30 / 50 + 0.0 + 100 * 45 / 75) / 3  # A's b score is below chance: counts 0
    assert scores(norm)["A"] == pytest.approx(a)
    with pytest.raises(RankingInputError, match="baseline"):
        rank(t, rule="normalized_mean")
    with pytest.raises(RankingInputError, match="scores > 0"):
        rank(table({"A": [0.0], "B": [1.0]}), rule="geometric_mean")
    og = rank(table({"A": [99.0, 90.0], "B": [94.0, 94.0]}), rule="optimality_gap")
    assert scores(og) == {"A": pytest.approx(-2.5), "B": pytest.approx(-1.0)}


def test_mean_win_rate_matches_helm_definition() -> None:
    t = table({"A": [3.0, 1.0], "B": [3.0, 2.0], "C": [1.0, 3.0]})
    wr = scores(rank(t, rule="mean_win_rate"))
    # Task a: A and B tie above C: (1 + 0.5)/2 each; task b: A 0, B 1/2, C 1.
    assert wr == {"A": pytest.approx(0.375), "B": pytest.approx(0.625), "C": pytest.approx(0.5)}


def test_cycle_has_no_condorcet_winner_and_all_tie() -> None:
    cyc = table({"A": [3.0, 1.0, 2.0], "B": [2.0, 3.0, 1.0], "C": [1.0, 2.0, 3.0]})
    for rule in ("condorcet",):
        assert rank(cyc, rule=rule).winners == ()
    for rule in ("copeland", "minimax", "schulze", "ranked_pairs", "kemeny", "borda"):
        assert rank(cyc, rule=rule).winners == ("A", "B", "C"), rule
    assert condorcet_winner(cyc) is None


def test_schulze_and_ranked_pairs_differ_from_copeland() -> None:
    # Classic 5-voter-style profile (tasks as voters) where Copeland ties but Schulze does not.
    rows = {"A": [4, 4, 1, 3, 2], "B": [3, 1, 4, 4, 3], "C": [2, 3, 3, 1, 4], "D": [1, 2, 2, 2, 1]}
    t = table({k: [float(v) for v in vals] for k, vals in rows.items()})
    p_rule = {r: rank(t, rule=r).winners for r in ("schulze", "ranked_pairs", "kemeny", "minimax")}
    for winners in p_rule.values():
        assert len(winners) >= 1
    assert rank(t, rule="schulze").details["strongest_paths"][0][0] == 0.0


def test_kemeny_solvers_agree_and_heuristic_reports_gap() -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 10, size=(14, 6)).astype(float)
    t = ScoreTable(systems=tuple(f"s{i:02d}" for i in range(14)), tasks=tuple("abcdef"), scores=x)
    dp = rank(t, rule="kemeny", params={"method": "dp"})
    mip = rank(t, rule="kemeny", params={"method": "milp"})
    heur = rank(t, rule="kemeny", params={"method": "heuristic"})
    assert dp.details["objective"] == pytest.approx(mip.details["objective"])
    assert dp.winners == mip.winners
    assert [e.rank for e in dp.ranking] == [e.rank for e in mip.ranking]
    assert heur.details["objective"] <= dp.details["objective"] + 1e-9
    assert heur.details["upper_bound"] >= dp.details["objective"] - 1e-6
    assert heur.details["optimality_gap"] == pytest.approx(
        heur.details["upper_bound"] - heur.details["objective"]
    )
    assert mip.details["proof"].startswith("HiGHS MILP status optimal")
    with pytest.raises(RankingInputError, match="unknown Kemeny method"):
        rank(t, rule="kemeny", params={"method": "magic"})


def test_kemeny_milp_on_forty_systems_is_certified() -> None:
    rng = np.random.default_rng(3)
    p_t = np.sort(rng.random((40, 1)), axis=0) + 0.3 * rng.random((40, 8))
    wins = (p_t[:, None, :] > p_t[None, :, :]).sum(axis=2).astype(float)
    sol = kemeny_milp(wins)
    assert sol.proven_optimal
    assert sol.upper_bound == pytest.approx(sol.objective)
    assert kemeny_agreement(wins, sol.order) == pytest.approx(sol.objective)
    heur = kemeny_heuristic(wins)
    assert heur.objective <= sol.objective + 1e-9
    assert solve_kemeny(wins[:5, :5], method="auto").method == "dp"


def test_two_level_each_task_counts_once() -> None:
    # Task a: 1 example, A best. Task b: 50 examples, B best on each.
    a = np.array([[1.0], [0.0]])
    b = np.vstack([np.zeros(50), np.ones(50)])
    c = np.array([[1.0, 1.0], [0.0, 0.0]])
    inst = InstanceScores(
        systems=("A", "B"), tasks=("a", "b", "c"), per_task=(a, b, c), higher_is_better=(True,) * 3
    )
    res = two_level_rank(inst, rule="borda")
    assert res.winners == ("A",)  # wins 2 of 3 tasks even though B wins 50 of 53 examples
    assert res.details["level1"] == "borda"
    tt = task_table(inst, level1="mean")
    assert tt.scores[:, 1].tolist() == [0.0, 1.0]
    lower = InstanceScores(
        systems=("A", "B"), tasks=("a",), per_task=(a,), higher_is_better=(False,)
    )
    assert two_level_rank(lower, rule="borda").winners == ("B",)


def test_task_groups_with_group_weights() -> None:
    t = table({"A": [9.0, 9.0, 1.0], "B": [1.0, 1.0, 9.0]})
    groups = {"a": "g1", "b": "g1", "c": "g2"}
    even = rank_groups(t, groups=groups, rule="borda")
    assert even.winners == ("A", "B")  # one group each
    heavy = rank_groups(t, groups=groups, rule="borda", group_weights={"g2": 2.0})
    assert heavy.winners == ("B",)
    assert heavy.details["group_winners"] == {"g1": ("A",), "g2": ("B",)}
    with pytest.raises(RankingInputError, match="unknown group"):
        rank_groups(t, groups=groups, rule="borda", group_weights={"g9": 1.0})


def test_bootstrap_is_deterministic_and_sensible() -> None:
    rng = np.random.default_rng(0)
    strong = rng.normal(0.9, 0.05, size=200)
    weak = rng.normal(0.1, 0.05, size=200)
    mid = rng.normal(0.5, 0.3, size=200)
    inst = InstanceScores(
        systems=("strong", "weak", "mid"),
        tasks=("a",),
        per_task=(np.vstack([strong, weak, mid]),),
        higher_is_better=(True,),
    )
    r1 = bootstrap_examples(inst, rule="mean", n_boot=40, seed=11)
    r2 = bootstrap_examples(inst, rule="mean", n_boot=40, seed=11)
    assert r1 == r2
    assert r1.win_probability["strong"] == 1.0
    assert r1.rank_interval["weak"] == (3.0, 3.0)
    assert ("strong", "weak") in r1.significant
    assert ("weak", "strong") not in r1.significant
    assert json.loads(json.dumps(r1.to_dict()))["n_boot"] == 40

    seeds = np.array([[[0.8, 0.82, 0.81]], [[0.5, 0.9, np.nan]]])
    s1 = bootstrap_seeds(
        systems=("A", "B"), tasks=("a",), scores=seeds, rule="mean", n_boot=50, seed=5
    )
    s2 = bootstrap_seeds(
        systems=("A", "B"), tasks=("a",), scores=seeds, rule="mean", n_boot=50, seed=5
    )
    assert s1 == s2
    assert 0.0 < s1.win_probability["B"] < 1.0  # B's two seeds straddle A
    assert s1.prob_better[0][1] + s1.prob_better[1][0] == pytest.approx(1.0)


def test_agreement_robustness_and_lp() -> None:
    t = table({"A": [9.0, 9.0, 1.0, 9.0], "B": [5.0, 5.0, 9.0, 5.0], "C": [1.0, 1.0, 5.0, 1.0]})
    res = rank_all(t, rules=["borda", "copeland", "mean"])
    ag = agreement(res.results)
    assert ag.tau[0][0] == pytest.approx(1.0)
    reversed_t = t.with_scores(-t.scores)
    tau = kendall_tau_b(rank(t, rule="borda"), rank(reversed_t, rule="borda"))
    assert tau == pytest.approx(-1.0)
    rob = robustness(t, rule="borda")
    assert set(rob.tau_without) == {"a", "b", "c", "d"}
    assert rob.winners_without["c"] == ("A",)
    assert all(v is not None and v > 0 for v in rob.tau_without.values())
    feas = {f.system: f for f in possible_condorcet_winners(t)}
    assert feas["A"].strict
    assert feas["B"].strict  # weight on task c alone makes B win
    assert not feas["C"].weak  # B beats C on every task
    assert feas["B"].weights["c"] > 0.5


def test_rank_all_reports_skipped_rules() -> None:
    t = table({"A": [1.0, None], "B": [2.0, 3.0]})
    res = rank_all(t, missing="pairwise")
    assert "copeland" in res.results
    assert "cannot rank" in res.skipped["plurality"]
    assert set(res.results) | set(res.skipped) == set(RULES)


def test_table_validation() -> None:
    with pytest.raises(RankingInputError, match="duplicate system"):
        ScoreTable(systems=("A", "A"), tasks=("a",), scores=np.zeros((2, 1)))
    with pytest.raises(RankingInputError, match="matrix"):
        ScoreTable(systems=("A",), tasks=("a",), scores=np.zeros((2, 1)))
    with pytest.raises(RankingInputError, match="finite"):
        ScoreTable(systems=("A",), tasks=("a",), scores=np.array([[np.inf]]))
