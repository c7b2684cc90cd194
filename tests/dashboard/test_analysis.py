"""Rule comparison, efficiency and uncertainty selectors, and the pure helpers under them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import pytest
from django.core.cache import cache

from catalog.models import SuiteVersion
from dashboard.analysis import (
    pareto_front,
    replicates,
    suite_efficiency,
    suite_rule_comparison,
    suite_uncertainty,
)
from dashboard.selectors import SuiteBoard, suite_leaderboard
from tests.dashboard.scenario import PLANS, Showcase
from tracking.models import Run

pytestmark = pytest.mark.django_db

FULL = "Full fine-tuning"
V = TypeVar("V")


def board(*, rule: str = "official", missing: str = "") -> SuiteBoard:
    version = SuiteVersion.objects.get(suite__key="glue")
    return suite_leaderboard(suite_version=version, viewer=None, rule=rule, missing=missing)


def by_method(values: Mapping[str, V]) -> dict[str, V]:
    """Values keyed by system label, keyed by method name instead."""
    return {label.split(" · ")[0]: value for label, value in values.items()}


@pytest.mark.parametrize(
    ("points", "front"),
    [
        ([], set()),
        ([(1.0, 50.0)], {0}),
        ([(1.0, 50.0), (2.0, 60.0), (3.0, 55.0)], {0, 1}),  # (3, 55) costs more for less
        ([(2.0, 60.0), (1.0, 60.0)], {1}),  # same score, one cheaper
        ([(1.0, 50.0), (1.0, 60.0)], {1}),  # same cost, one better
        ([(1.0, 60.0), (1.0, 60.0), (5.0, 70.0)], {0, 1, 2}),  # equal points are both kept
    ],
)
def test_pareto_front(points: list[tuple[float, float]], front: set[int]) -> None:
    assert pareto_front(points) == front


def test_rule_comparison_finds_the_condorcet_winner(showcase: Showcase) -> None:
    comparison = suite_rule_comparison(board=board())
    assert comparison is not None
    assert comparison.condorcet is not None
    assert comparison.condorcet.startswith(FULL)
    ranks = {rule: by_method(r) for rule, r in comparison.ranks.items()}
    assert ranks["mean"]["Specialist"] == 1
    assert ranks["kemeny"][FULL] == 1
    assert ranks["copeland"][FULL] == 1
    assert "normalized_mean" in dict(comparison.skipped)  # it needs baselines
    n = len(comparison.rules)
    assert len(comparison.tau) == n
    for i in range(n):
        assert comparison.tau[i][i] == pytest.approx(1.0)
        for j in range(n):
            assert comparison.tau[i][j] == pytest.approx(comparison.tau[j][i])
    winners = {p.system.split(" · ")[0]: p for p in comparison.possible_winners}
    assert winners[FULL].strict
    assert winners["Specialist"].strict  # weight CoLA, RTE or WNLI alone
    assert "BitFit" not in winners  # it trails everybody everywhere
    assert sum(w for _, w in winners[FULL].weights) == pytest.approx(1.0)


def test_rule_comparison_with_missing_scores_needs_a_policy(showcase: Showcase) -> None:
    Run.objects.filter(method__key="bitfit", task__key="rte").delete()
    refused = suite_rule_comparison(board=board())
    assert refused is not None
    assert "choose the pairwise or median missing-score policy" in refused.possible_note
    assert "kemeny" in dict(refused.skipped)
    allowed = suite_rule_comparison(board=board(missing="pairwise"))
    assert allowed is not None
    assert "kemeny" in allowed.rules
    assert allowed.possible_note == ""


def test_efficiency_puts_cheaper_systems_on_the_front(showcase: Showcase) -> None:
    efficiency = suite_efficiency(board=board())
    rows = {row.label.split(" · ")[0]: row for row in efficiency.rows}
    assert efficiency.score_name == "GLUE score"
    assert [a.key for a in efficiency.axes] == [
        "trainable_parameters",
        "peak_accelerator_memory_mb",
        "wall_time_s",
    ]
    assert rows["Specialist"].costs["trainable_parameters"] is None  # self-reported: no figures
    plans = {plan.method_key: plan for plan in PLANS}
    assert rows["LoRA"].costs["trainable_parameters"] == plans["lora"].trainable_parameters
    # One run per task: ten GLUE tasks at the plan's seconds each.
    suite_seconds = 10 * plans["bitfit"].seconds_per_task
    assert rows["BitFit"].costs["wall_time_s"] == pytest.approx(suite_seconds)
    for name in (FULL, "LoRA", "BitFit"):
        assert "trainable_parameters" in rows[name].front
    assert len(efficiency.points["trainable_parameters"]) == 3


def test_uncertainty_is_deterministic_and_sums_to_a_winner(showcase: Showcase) -> None:
    kemeny = board(rule="kemeny")
    first = suite_uncertainty(board=kemeny)
    cache.clear()
    again = suite_uncertainty(board=board(rule="kemeny"))
    assert first == again
    assert first.rule == "kemeny"
    by_name = by_method(first.systems)
    assert sum(u.win_probability for u in by_name.values()) >= 1.0
    assert by_name[FULL].low == 1
    official = suite_uncertainty(board=board())
    assert official.rule == "mean"
    assert set(official.systems) == set(first.systems)


@pytest.mark.parametrize(
    ("systems", "expected"), [(1, 200), (4, 200), (20, 200), (40, 50), (50, 32), (500, 30)]
)
def test_fewer_replicates_for_big_boards(systems: int, expected: int) -> None:
    assert replicates(systems) == expected
