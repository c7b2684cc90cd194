"""Official suite scores, checked against published leaderboard numbers."""

from __future__ import annotations

import json

import pytest

from leaderboard.catalog import get_benchmark, get_task
from leaderboard.suite_score import (
    SuiteScoreError,
    suite_score,
    task_score,
    to_percent,
)


def _glue_results(
    *,
    cola: float,
    sst2: float,
    mrpc: tuple[float, float],
    stsb: tuple[float, float],
    qqp: tuple[float, float],
    mnli: tuple[float, float],
    qnli: float,
    rte: float,
    wnli: float,
    ax: float | None = None,
) -> dict[str, dict[str, float]]:
    """Leaderboard numbers (0-100, pairs in the leaderboard's order) -> 0-1 metric dicts."""
    results = {
        "cola": {"mcc": cola},
        "sst2": {"accuracy": sst2},
        "mrpc": {"f1": mrpc[0], "accuracy": mrpc[1]},
        "stsb": {"pearson": stsb[0], "spearman": stsb[1]},
        "qqp": {"f1": qqp[0], "accuracy": qqp[1]},
        "mnli_matched": {"accuracy": mnli[0]},
        "mnli_mismatched": {"accuracy": mnli[1]},
        "qnli": {"accuracy": qnli},
        "rte": {"accuracy": rte},
        "wnli": {"accuracy": wnli},
    }
    if ax is not None:
        results["ax"] = {"mcc": ax}
    return {task: {k: v / 100 for k, v in metrics.items()} for task, metrics in results.items()}


# BERT test-set results: BERT paper (Devlin et al., 2019) Table 1 and the GLUE
# leaderboard's second metric for MRPC (acc), STS-B (Pearson) and QQP (acc).
BERT_LARGE = _glue_results(
    cola=60.5, sst2=94.9, mrpc=(89.3, 85.4), stsb=(87.6, 86.5), qqp=(72.1, 89.3),
    mnli=(86.7, 85.9), qnli=92.7, rte=70.1, wnli=65.1, ax=39.6,
)  # fmt: skip
BERT_BASE = _glue_results(
    cola=52.1, sst2=93.5, mrpc=(88.9, 84.8), stsb=(87.1, 85.8), qqp=(71.2, 89.2),
    mnli=(84.6, 83.4), qnli=90.5, rte=66.4, wnli=65.1,
)  # fmt: skip


def test_bert_large_glue_score_is_80_5() -> None:
    score = suite_score(benchmark=get_benchmark(key="glue"), results=BERT_LARGE)
    assert score.complete
    assert score.missing == ()
    assert score.value is not None
    assert round(score.value, 1) == 80.5
    # Nine task groups: MNLI-m/mm merged, AX left out.
    groups = dict(score.task_scores)
    assert len(groups) == 9
    assert "ax" not in groups
    assert groups["mnli"] == pytest.approx((86.7 + 85.9) / 2)
    assert groups["mrpc"] == pytest.approx((89.3 + 85.4) / 2)


def test_bert_base_glue_score_is_78_3() -> None:
    score = suite_score(benchmark=get_benchmark(key="glue"), results=BERT_BASE)
    assert score.value is not None
    assert round(score.value, 1) == 78.3


def test_unrounded_values_pin_the_rule() -> None:
    # Rounded to one decimal, a primary-metric-only mean over ten tasks also gives 80.5 and
    # 78.3, so pin the unrounded grouped means: 724.7 / 9 and 705.1 / 9.
    glue = get_benchmark(key="glue")
    large = suite_score(benchmark=glue, results=BERT_LARGE).value
    base = suite_score(benchmark=glue, results=BERT_BASE).value
    assert large == pytest.approx(724.7 / 9, abs=1e-9)
    assert base == pytest.approx(705.1 / 9, abs=1e-9)
    assert large is not None
    assert abs(large - 804.9 / 10) > 0.01  # the wrong rule's value


def test_ax_does_not_change_the_glue_score() -> None:
    without_ax = {k: v for k, v in BERT_LARGE.items() if k != "ax"}
    glue = get_benchmark(key="glue")
    assert suite_score(benchmark=glue, results=without_ax).value == pytest.approx(
        suite_score(benchmark=glue, results=BERT_LARGE).value
    )


def test_bert_large_superglue_score_is_69_0() -> None:
    # SuperGLUE paper (Wang et al., 2019) Table 3, BERT-large test results.
    results = {
        "boolq": {"accuracy": 77.4},
        "cb": {"macro_f1": 75.7, "accuracy": 83.6},
        "copa": {"accuracy": 70.6},
        "multirc": {"f1a": 70.0, "multirc_em": 24.1},
        "record": {"record_f1": 72.0, "record_em": 71.3},
        "rte": {"accuracy": 71.7},
        "wic": {"accuracy": 69.6},
        "wsc": {"accuracy": 64.4},
        "axb": {"mcc": 23.0},
        "axg": {"gender_parity": 97.8, "accuracy": 51.7},
    }
    scaled = {t: {k: v / 100 for k, v in m.items()} for t, m in results.items()}
    score = suite_score(benchmark=get_benchmark(key="superglue"), results=scaled)
    assert score.value is not None
    assert round(score.value, 1) == 69.0
    assert len(score.task_scores) == 8


def test_missing_task_gives_no_official_score() -> None:
    partial = {k: v for k, v in BERT_LARGE.items() if k != "mnli_mismatched"}
    score = suite_score(benchmark=get_benchmark(key="glue"), results=partial)
    assert score.value is None
    assert not score.complete
    assert score.missing == ("mnli_mismatched",)
    groups = dict(score.task_scores)
    assert "mnli" not in groups  # half of a merged group is not a task score
    assert groups["cola"] == pytest.approx(60.5)


def test_missing_metric_is_named() -> None:
    partial = dict(BERT_LARGE)
    partial["mrpc"] = {"f1": 0.893}
    score = suite_score(benchmark=get_benchmark(key="glue"), results=partial)
    assert score.value is None
    assert score.missing == ("mrpc:accuracy",)


def test_missing_diagnostic_does_not_block_score() -> None:
    score = suite_score(benchmark=get_benchmark(key="glue"), results=BERT_BASE)
    assert score.complete


def test_lepiszcze_is_the_mean_of_primary_metrics() -> None:
    benchmark = get_benchmark(key="lepiszcze")
    results: dict[str, dict[str, float]] = {}
    expected = []
    for i, task in enumerate(benchmark.tasks):
        primary = 0.5 + i / 100
        # A non-primary metric with a very different value must not leak in.
        results[task.key] = {m.key: 0.0 for m in task.metrics} | {task.primary_metric: primary}
        if task.in_suite_score:
            expected.append(primary)
    score = suite_score(benchmark=benchmark, results=results)
    assert score.value == pytest.approx(to_percent(sum(expected) / len(expected)))
    assert len(score.task_scores) == 12


def test_lepiszcze_scores_the_public_tasks_and_needs_each_of_them() -> None:
    # Dialogue acts is not public, so it is outside the official score.
    benchmark = get_benchmark(key="lepiszcze")
    results = {t.key: {t.primary_metric: 0.7} for t in benchmark.tasks if t.public}
    assert suite_score(benchmark=benchmark, results=results).value == pytest.approx(70.0)
    del results["klej-dyk"]
    score = suite_score(benchmark=benchmark, results=results)
    assert score.value is None
    assert score.missing == ("klej-dyk",)


def test_task_score_groups() -> None:
    mrpc = get_task(benchmark="glue", key="mrpc")
    assert task_score(task=mrpc, metrics={"f1": 0.9, "accuracy": 0.8}) == pytest.approx(0.85)
    assert task_score(task=mrpc, metrics={"f1": 0.9}) is None
    abusive = get_task(benchmark="lepiszcze", key="abusive-clauses-pl")
    assert task_score(task=abusive, metrics={"accuracy": 0.9, "macro_f1": 0.6}) == 0.6


def test_bad_results_are_errors() -> None:
    glue = get_benchmark(key="glue")
    with pytest.raises(SuiteScoreError, match="unknown tasks"):
        suite_score(benchmark=glue, results={"squad": {"f1": 0.5}})
    broken = dict(BERT_LARGE)
    broken["cola"] = {"mcc": float("nan")}
    with pytest.raises(SuiteScoreError, match="not a finite number"):
        suite_score(benchmark=glue, results=broken)


def test_to_dict_round_trips_json() -> None:
    score = suite_score(benchmark=get_benchmark(key="glue"), results=BERT_LARGE)
    data = json.loads(json.dumps(score.to_dict()))
    assert data["complete"] is True
    assert data["task_scores"]["cola"] == pytest.approx(60.5)
