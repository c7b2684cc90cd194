"""Score-averaging rules: arithmetic (optionally grouped), geometric, baseline-normalised,
mean win rate (HELM) and average rank."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from leaderboard.ranking.context import RuleContext
from leaderboard.ranking.registry import register_rule
from leaderboard.ranking.result import RankingResult, result_from_scores
from leaderboard.ranking.table import FloatArray, RankingInputError


def _raw_direction(ctx: RuleContext, what: str) -> tuple[FloatArray, bool]:
    """Complete scores in their own units plus the shared direction.

    Averaging raw numbers across tasks of opposite direction means nothing, so it is refused.
    """
    table = ctx.table
    if ctx.tasks is table.tasks:  # every column used (no zero weight): no lookups
        hib = set(table.higher_is_better)
    else:
        direction = dict(zip(table.tasks, table.higher_is_better, strict=True))
        hib = {direction[t] for t in ctx.tasks}
    if len(hib) != 1:
        raise RankingInputError(
            f"{what} needs every weighted task in one direction; use a rank-based rule "
            "(borda, mean_win_rate, average_rank, ...) for mixed directions"
        )
    up = hib.pop()
    return (ctx.x if up else -ctx.x), up


def _group_mean(
    x: FloatArray, w: FloatArray, tasks: tuple[str, ...], groups: Mapping[str, str]
) -> tuple[FloatArray, FloatArray, list[str]]:
    """Average the columns of each group first (weighted inside the group); a group's
    weight is the mean of its columns' weights, so a GLUE pair counts as one task."""
    unknown = sorted(set(groups) - set(tasks))
    if unknown:
        raise RankingInputError(f"unknown column(s) in groups: {', '.join(unknown)}")
    names: dict[str, list[int]] = {}
    for j, task in enumerate(tasks):
        names.setdefault(str(groups.get(task, task)), []).append(j)
    cols = []
    gw = []
    for idx in names.values():
        ww = w[idx]
        cols.append(x[:, idx] @ ww / ww.sum())
        gw.append(float(ww.mean()))
    return np.column_stack(cols), np.array(gw), list(names)


@register_rule(
    "mean",
    description="weighted arithmetic mean of raw scores (params: groups={column: group})",
    votenrank=True,
    votenrank_missing="median",
)
def arithmetic_mean(ctx: RuleContext) -> RankingResult:
    x, up = _raw_direction(ctx, "the arithmetic mean")
    w = ctx.weights
    details: dict[str, object] = {}
    groups = ctx.params.get("groups")
    if groups:
        x, w, names = _group_mean(x, w, ctx.tasks, groups)
        details["groups"] = names
    scores = x @ w / w.sum()
    return result_from_scores(
        rule=ctx.rule.name,
        systems=ctx.systems,
        scores=scores.tolist(),
        higher_is_better=up,
        details=details,
    )


@register_rule(
    "geometric_mean",
    description="weighted geometric mean; scores must be > 0",
    votenrank=True,
)
def geometric_mean(ctx: RuleContext) -> RankingResult:
    x, up = _raw_direction(ctx, "the geometric mean")
    w = ctx.weights
    positive = [bool((row > 0).all()) for row in x]
    if ctx.votenrank:
        # scipy.stats.gmean gives NaN for a row with any score <= 0, weight 0 or not.
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), 0.0)
        scores = np.where(positive, np.exp(logs @ w / w.sum()), np.nan)
        undefined = [s for s, ok in zip(ctx.systems, positive, strict=True) if not ok]
    else:
        if not all(positive):
            bad = [s for s, ok in zip(ctx.systems, positive, strict=True) if not ok]
            raise RankingInputError(
                f"geometric mean needs scores > 0 in every weighted task; not so for: "
                f"{', '.join(bad)}"
            )
        scores = np.exp(np.log(x) @ w / w.sum())
        undefined = []
    return result_from_scores(
        rule=ctx.rule.name,
        systems=ctx.systems,
        scores=scores.tolist(),
        higher_is_better=up,
        details={"undefined_score_systems": undefined},
    )


@register_rule(
    "normalized_mean",
    description="Open LLM Leaderboard mean of 100*(score-baseline)/(max-baseline), clipped at 0 "
    "(params: baselines={task: random-guess score}, max_scores={task: max} or a number, "
    "default 100)",
)
def normalized_mean(ctx: RuleContext) -> RankingResult:
    x, up = _raw_direction(ctx, "the normalised mean")
    if not up:
        raise RankingInputError("normalized_mean needs higher-is-better tasks")
    baselines = ctx.params.get("baselines")
    if not isinstance(baselines, Mapping):
        raise RankingInputError("normalized_mean needs params baselines={task: baseline score}")
    missing = [t for t in ctx.tasks if t not in baselines]
    if missing:
        raise RankingInputError(f"normalized_mean: no baseline for task(s) {', '.join(missing)}")
    max_param = ctx.params.get("max_scores", 100.0)
    lo = np.array([float(baselines[t]) for t in ctx.tasks])
    if isinstance(max_param, Mapping):
        hi = np.array([float(max_param.get(t, 100.0)) for t in ctx.tasks])
    else:
        hi = np.full(len(ctx.tasks), float(max_param))
    if (hi <= lo).any():
        raise RankingInputError("normalized_mean: every max score must exceed its baseline")
    # Below-chance scores count as 0, as on the Open LLM Leaderboard.
    norm = 100.0 * np.clip((x - lo) / (hi - lo), 0.0, None)
    scores = norm @ ctx.weights / ctx.weights.sum()
    return result_from_scores(
        rule=ctx.rule.name,
        systems=ctx.systems,
        scores=scores.tolist(),
        higher_is_better=True,
        details={"normalized": {s: norm[i].tolist() for i, s in enumerate(ctx.systems)}},
    )


@register_rule(
    "mean_win_rate",
    description="HELM mean win rate: per task, share of other systems beaten (ties 1/2); "
    "missing cells are skipped (policy 'pairwise')",
    missing=("pairwise", "median"),
)
def mean_win_rate(ctx: RuleContext) -> RankingResult:
    data = ctx.x if ctx.missing == "median" else ctx.raw
    n, n_tasks = data.shape
    total = np.zeros(n)
    wsum = np.zeros(n)
    used = []
    for t in range(n_tasks):
        col = data[:, t]
        obs = ~np.isnan(col)
        k = int(obs.sum())
        if k < 2:  # HELM skips a column with fewer than two values
            continue
        v = col[obs]
        wins = (v[:, None] > v[None, :]).sum(1) + ((v[:, None] == v[None, :]).sum(1) - 1) / 2
        rate = np.zeros(n)
        rate[obs] = wins / (k - 1)
        total += ctx.weights[t] * rate * obs
        wsum += ctx.weights[t] * obs
        used.append(ctx.tasks[t])
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(wsum > 0, total / np.where(wsum > 0, wsum, 1.0), np.nan)
    return result_from_scores(
        rule=ctx.rule.name,
        systems=ctx.systems,
        scores=scores.tolist(),
        higher_is_better=True,
        details={"tasks_used": used},
    )


@register_rule(
    "average_rank",
    description="weighted mean of per-task positions (1 = best, ties share the average "
    "position); lower is better",
)
def average_rank(ctx: RuleContext) -> RankingResult:
    pos = ctx.positions("average")
    scores = pos @ ctx.weights / ctx.weights.sum()
    return result_from_scores(
        rule=ctx.rule.name,
        systems=ctx.systems,
        scores=scores.tolist(),
        higher_is_better=False,
        details={},
    )


@register_rule(
    "optimality_gap",
    description="Agarwal et al. optimality gap: mean of min(score, gamma) - gamma, higher "
    "is better (params: gamma, default 95)",
    votenrank=True,
    votenrank_missing="median",
)
def optimality_gap(ctx: RuleContext) -> RankingResult:
    x, up = _raw_direction(ctx, "the optimality gap")
    if not up:
        raise RankingInputError("optimality_gap needs higher-is-better tasks")
    gamma = float(ctx.params.get("gamma", 95.0))
    scores = (np.minimum(x, gamma) - gamma) @ ctx.weights / ctx.weights.sum()
    return result_from_scores(
        rule=ctx.rule.name,
        systems=ctx.systems,
        scores=scores.tolist(),
        higher_is_better=True,
        details={"gamma": gamma},
    )
