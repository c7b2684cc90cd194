"""Vote'n'Rank's published results (GLUE, SuperGLUE, VALUE) reproduced in compatible mode."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from leaderboard.ranking import RankingInputError, ScoreTable, rank, read_scores_csv
from leaderboard.ranking.diagnostics import possible_condorcet_winners
from leaderboard.ranking.kemeny import agreement

RULE_NAMES = {
    "AM": "mean",
    "GM": "geometric_mean",
    "Borda": "borda",
    "Dowdall": "dowdall",
    "Plurality": "plurality",
    "Copeland": "copeland",
    "Minimax": "minimax",
    "OG_leaderboard": "optimality_gap",
    "Threshold": "threshold",
    "Baldwin": "baldwin",
    "Condorcet": "condorcet",
}


@pytest.fixture(scope="module")
def ranking_dir() -> Path:
    root = os.environ.get("PODIUM_VALIDATION_DIR")
    if not root:
        pytest.fail("set PODIUM_VALIDATION_DIR to the shared validation folder (holding ranking/)")
    path = Path(root) / "ranking"
    if not path.is_dir():
        pytest.fail(f"PODIUM_VALIDATION_DIR={root} has no ranking/ folder")
    return path


def load(ranking_dir: Path, case: str) -> tuple[ScoreTable, dict[str, Any]]:
    table = read_scores_csv(ranking_dir / f"votenrank_{case}_scores.csv")
    expected = json.loads((ranking_dir / f"votenrank_{case}_expected.json").read_text())
    return table, expected


def as_sets(groups: list[list[str]]) -> list[frozenset[str]]:
    return [frozenset(g) for g in groups]


def check_scores(res: Any, printed: dict[str, float | None]) -> None:
    got = {e.system: e.score for e in res.ranking}
    assert set(got) == set(printed)
    for name, value in printed.items():
        if value is None:
            assert got[name] is None, name
        else:
            assert got[name] is not None, name
            assert abs(got[name] - value) <= 0.006, (name, got[name], value)


@pytest.mark.parametrize("case", ["glue", "superglue"])
@pytest.mark.parametrize("label", sorted(RULE_NAMES))
def test_published_rules(ranking_dir: Path, case: str, label: str) -> None:
    table, expected = load(ranking_dir, case)
    spec = expected["rules"][label]
    res = rank(
        table, rule=RULE_NAMES[label], weights=expected["task_weights"], convention="votenrank"
    )
    assert list(res.winners) == sorted(spec["winners"])
    assert sorted(expected["published_elect_all_winners"][label.split("_")[0]]) == sorted(
        res.winners
    )
    if "ranking_groups_best_first" in spec:
        assert as_sets(res.groups()) == as_sets(spec["ranking_groups_best_first"])
    if "scores_as_printed_2dp" in spec:
        check_scores(res, spec["scores_as_printed_2dp"])


@pytest.mark.parametrize("case", ["glue", "superglue"])
def test_exact_kemeny_cross_check(ranking_dir: Path, case: str) -> None:
    table, expected = load(ranking_dir, case)
    extra = expected["extra_NOT_published"]["kemeny_weighted"]
    res = rank(table, rule="kemeny", weights=expected["task_weights"])
    assert res.details["proven_optimal"] is True
    assert res.details["upper_bound"] == pytest.approx(res.details["objective"])
    assert list(res.winners) == sorted(extra["all_possible_kemeny_winners"])
    # The strict-wins objective of our optimal order equals the published optimum.
    w = np.array([expected["task_weights"][t] for t in table.tasks])
    x = table.scores
    strict = np.einsum("t,abt->ab", w, (x[:, None, :] > x[None, :, :]).astype(float))
    order = [table.systems.index(s) for s in res.details["optimal_order"]]
    assert agreement(strict, order) == pytest.approx(extra["optimal_agreement"])
    assert strict.sum() == pytest.approx(extra["sum_of_all_C"])


def test_value_with_missing_scores(ranking_dir: Path) -> None:
    table, expected = load(ranking_dir, "value")
    block = expected["with_missing_7_systems"]
    assert table.has_missing
    cop = rank(table, rule="copeland", convention="votenrank")
    check_scores(cop, block["Copeland_difference"]["scores"])
    assert as_sets(cop.groups()) == as_sets(
        block["Copeland_difference"]["ranking_groups_best_first"]
    )
    mm = rank(table, rule="minimax", convention="votenrank")
    check_scores(mm, block["Minimax_winning_votes"]["scores"])
    assert as_sets(mm.groups()) == as_sets(
        block["Minimax_winning_votes"]["ranking_groups_best_first"]
    )
    og = rank(table, rule="optimality_gap", convention="votenrank")
    check_scores(og, block["OG_leaderboard_gamma95_median_filled"]["scores"])
    cond = rank(table, rule="condorcet", convention="votenrank")
    assert list(cond.winners) == block["Condorcet_winners"]
    for label, winners in block["published_elect_all_winners"].items():
        rule = RULE_NAMES.get(label, RULE_NAMES.get(f"{label}_leaderboard"))
        assert rule is not None
        assert list(rank(table, rule=rule, convention="votenrank").winners) == sorted(winners)
    # Vote'n'Rank disables the full-ranking rules when cells are missing.
    for rule in ("borda", "plurality", "dowdall", "threshold", "baldwin", "geometric_mean"):
        with pytest.raises(RankingInputError, match="disables"):
            rank(table, rule=rule, convention="votenrank")


def test_value_complete_six_systems(ranking_dir: Path) -> None:
    table, expected = load(ranking_dir, "value")
    block = expected["complete_6_systems_without_Human"]
    six = table.select(systems=[s for s in table.systems if s != "Human"])
    labels = {"Dowdall", "AM", "GM", "Borda", "Plurality", "Minimax", "Copeland"}
    for label in labels:
        res = rank(six, rule=RULE_NAMES[label], convention="votenrank")
        check_scores(res, block["scores_as_printed_2dp"][label])
        assert as_sets(res.groups()) == as_sets(block["ranking_groups_best_first"][label])
    for label, winners in block["published_elect_all_winners"].items():
        rule = RULE_NAMES.get(label, RULE_NAMES.get(f"{label}_leaderboard"))
        assert rule is not None
        assert list(rank(six, rule=rule, convention="votenrank").winners) == sorted(winners)


def test_value_himmi_imputation_ratio_normalised(ranking_dir: Path) -> None:
    table, expected = load(ranking_dir, "value")
    block = expected["extra_NOT_published"]["himmi_partial_borda_task_level"]
    ref = block["ratio_normalised_each_task_weight_1"]
    res = rank(table, rule="borda", missing="impute")
    n, t = table.n_systems, table.n_tasks
    for entry in res.ranking:
        assert entry.score is not None
        above = (n - 1) * t - entry.score
        assert above == pytest.approx(
            ref["expected_number_of_systems_ranked_above_summed_over_tasks"][entry.system],
            abs=0.001,
        )
    assert [e.system for e in res.ranking] == ref["order_best_first"]
    # The missing-score policy changes the winner, as the research notes report.
    assert rank(table, rule="copeland", missing="pairwise").winners == ("Human",)
    assert res.winners == ("craig.starr",)


def test_prospective_condorcet_winners_lp(ranking_dir: Path) -> None:
    table, expected = load(ranking_dir, "superglue")
    feas = possible_condorcet_winners(table)
    got = sorted(f.system for f in feas if f.weak)
    assert got == sorted(expected["published_cs2_prospective_models"]["feasible"])
    for f in feas:
        if f.weak:  # the returned weights really make nobody beat it
            w = np.array([f.weights[t] for t in table.tasks])
            assert w.min() >= -1e-9
            assert w.sum() == pytest.approx(1.0)
            res = rank(
                table, rule="minimax", weights={t: max(0.0, v) for t, v in f.weights.items()}
            )
            assert {e.system: e.score for e in res.ranking}[f.system] == pytest.approx(
                0.0, abs=1e-7
            )
        else:
            assert f.margin < 0
    value, vexp = load(ranking_dir, "value")
    six = value.select(systems=[s for s in value.systems if s != "Human"])
    got6 = sorted(f.system for f in possible_condorcet_winners(six) if f.weak)
    assert got6 == sorted(vexp["published_cs2_prospective_models_complete"]["feasible"])
