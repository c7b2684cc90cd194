"""Official suite scores: GLUE score, SuperGLUE score, LEPISZCZE average.

Scale: metric values go in on the metrics' own 0-1 scale (as ``leaderboard.metrics``
produces them); suite and per-task scores come out on the 0-100 scale the public
leaderboards print. ``to_percent`` is the one place that conversion happens.

Rules (from the benchmark papers, encoded in the catalog):
* ``grouped_mean`` (GLUE, SuperGLUE): a task's score is the unweighted mean of the
  metrics in its primary metric's group (MRPC F1/acc, STS-B Pearson/Spearman, CB, MultiRC,
  ReCoRD), else its primary metric; tasks sharing a ``score_group`` (MNLI-m/mm) are
  averaged into one; the suite score is the unweighted mean over those groups.
* ``primary_mean`` (LEPISZCZE): mean of each task's primary metric.
* Tasks with ``in_suite_score: false`` (AX, AX-b, AX-g) never count.
* A system missing any needed task or metric gets no official score: ``value`` is None,
  ``complete`` is False and ``missing`` lists what is absent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leaderboard.catalog import BenchmarkDefinition, TaskDefinition

__all__ = [
    "SuiteScore",
    "SuiteScoreError",
    "suite_score",
    "task_score",
    "task_score_metrics",
    "to_percent",
]


class SuiteScoreError(ValueError):
    """Results that cannot be combined (non-finite values, unknown tasks)."""


@dataclass(frozen=True, kw_only=True)
class SuiteScore:
    benchmark: str
    value: float | None  # 0-100; None unless complete
    complete: bool
    missing: tuple[str, ...]  # "task" or "task:metric" entries, in catalog order
    task_scores: tuple[tuple[str, float], ...]  # (score group, 0-100) for groups with results

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "value": self.value,
            "complete": self.complete,
            "missing": list(self.missing),
            "task_scores": dict(self.task_scores),
        }


def to_percent(value: float) -> float:
    """0-1 metric value -> 0-100 leaderboard value."""
    return 100.0 * value


def task_score_metrics(*, task: TaskDefinition, method: str = "grouped_mean") -> tuple[str, ...]:
    """The metric keys whose mean is the task's contribution to the suite score."""
    if method == "primary_mean":
        return (task.primary_metric,)
    group = task.metric(task.primary_metric).group
    if not group:
        return (task.primary_metric,)
    return tuple(m.key for m in task.metrics if m.group == group)


def task_score(
    *, task: TaskDefinition, metrics: Mapping[str, float], method: str = "grouped_mean"
) -> float | None:
    """Task score on the 0-1 scale, or None when a needed metric is absent."""
    keys = task_score_metrics(task=task, method=method)
    if any(k not in metrics for k in keys):
        return None
    values = [_finite(task, k, metrics[k]) for k in keys]
    return sum(values) / len(values)


def _finite(task: TaskDefinition, key: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SuiteScoreError(
            f"{task.qualified_key}: metric {key!r} is not a finite number: {value!r}"
        )
    return float(value)


def suite_score(
    *, benchmark: BenchmarkDefinition, results: Mapping[str, Mapping[str, float]]
) -> SuiteScore:
    """Official score of one system from ``results[task_key][metric_key]`` (0-1 values)."""
    known = {t.key for t in benchmark.tasks}
    unknown = sorted(set(results) - known)
    if unknown:
        raise SuiteScoreError(f"{benchmark.key}: results for unknown tasks {unknown}")

    missing: list[str] = []
    group_values: dict[str, list[float]] = {}
    group_complete: dict[str, bool] = {}
    for task in benchmark.tasks:
        if not task.in_suite_score:
            continue
        group_complete.setdefault(task.score_group, True)
        if task.key not in results:
            missing.append(task.key)
            group_complete[task.score_group] = False
            continue
        metrics = results[task.key]
        score = task_score(task=task, metrics=metrics, method=benchmark.suite_score)
        if score is None:
            needed = task_score_metrics(task=task, method=benchmark.suite_score)
            missing.extend(f"{task.key}:{k}" for k in needed if k not in metrics)
            group_complete[task.score_group] = False
            continue
        group_values.setdefault(task.score_group, []).append(score)

    # Per-group scores are shown even for incomplete systems, but a half-present group
    # (MNLI-m without -mm) gets no score of its own.
    task_scores = tuple(
        (group, to_percent(sum(values) / len(values)))
        for group, values in group_values.items()
        if group_complete[group]
    )
    complete = not missing and bool(task_scores)
    value = sum(s for _, s in task_scores) / len(task_scores) if complete else None
    return SuiteScore(
        benchmark=benchmark.key,
        value=value,
        complete=complete,
        missing=tuple(missing),
        task_scores=task_scores,
    )
