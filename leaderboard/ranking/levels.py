"""Two-level ranking (Colombo et al. 2022): rank within each task from per-example scores,
then across tasks; and task groups with group weights (Vote'n'Rank's two-step ranking)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from leaderboard.ranking.api import rank
from leaderboard.ranking.result import RankingResult
from leaderboard.ranking.table import FloatArray, RankingInputError, ScoreTable

LEVEL1 = ("borda", "mean")


@dataclass(frozen=True)
class InstanceScores:
    """Per-example scores: ``per_task[t]`` is systems x examples of task t (NaN = missing)."""

    systems: tuple[str, ...]
    tasks: tuple[str, ...]
    per_task: tuple[FloatArray, ...]
    higher_is_better: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.per_task) != len(self.tasks) or len(self.higher_is_better) != len(self.tasks):
            raise RankingInputError("need one score matrix and one direction per task")
        for task, m in zip(self.tasks, self.per_task, strict=True):
            if m.ndim != 2 or m.shape[0] != len(self.systems) or m.shape[1] == 0:
                raise RankingInputError(
                    f"task {task!r}: expected a {len(self.systems)} x examples matrix"
                )


def _example_borda(m: FloatArray) -> FloatArray:
    """Per example, share of the other observed systems beaten (ties 1/2), then the mean
    over the examples where the system is observed."""
    obs = ~np.isnan(m)
    with np.errstate(invalid="ignore"):
        a = m[:, None, :]
        b = m[None, :, :]
        pts = ((a > b) + 0.5 * (a == b)).sum(axis=1) - 0.5  # drop the self-tie
    k = obs.sum(axis=0)
    share = np.where(obs & (k > 1), pts / np.maximum(k - 1, 1), np.nan)
    with np.errstate(invalid="ignore"):
        counted = (~np.isnan(share)).sum(axis=1)
        out: FloatArray = np.where(
            counted > 0, np.nansum(share, axis=1) / np.maximum(counted, 1), np.nan
        )
    return out


def task_table(inst: InstanceScores, *, level1: str = "borda") -> ScoreTable:
    """Level 1: one score per system and task ('borda' is direction-free, so every
    resulting task is higher-is-better; 'mean' keeps the task's direction)."""
    if level1 not in LEVEL1:
        raise RankingInputError(f"unknown level-1 aggregation {level1!r}; choose from {LEVEL1}")
    cols = []
    for m, up in zip(inst.per_task, inst.higher_is_better, strict=True):
        if level1 == "borda":
            cols.append(_example_borda(m if up else -m))
        else:
            obs = (~np.isnan(m)).sum(axis=1)
            cols.append(np.where(obs > 0, np.nansum(m, axis=1) / np.maximum(obs, 1), np.nan))
    hib = (True,) * len(inst.tasks) if level1 == "borda" else inst.higher_is_better
    return ScoreTable(
        systems=inst.systems, tasks=inst.tasks, scores=np.column_stack(cols), higher_is_better=hib
    )


def two_level_rank(
    inst: InstanceScores,
    *,
    rule: str = "borda",
    level1: str = "borda",
    weights: Mapping[str, float] | None = None,
    missing: str | None = None,
    convention: str = "podium",
    params: Mapping[str, Any] | None = None,
) -> RankingResult:
    """Colombo et al.'s sigma^2l with ``level1='borda'`` and ``rule='borda'``: each task
    counts once, whatever its number of examples."""
    table = task_table(inst, level1=level1)
    res = rank(
        table, rule=rule, weights=weights, missing=missing, convention=convention, params=params
    )
    details = dict(res.details) | {
        "level1": level1,
        "task_scores": {s: table.scores[i].tolist() for i, s in enumerate(table.systems)},
    }
    return RankingResult(rule=res.rule, ranking=res.ranking, winners=res.winners, details=details)


def rank_groups(
    table: ScoreTable,
    *,
    groups: Mapping[str, str],
    rule: str,
    group_rule: str | None = None,
    weights: Mapping[str, float] | None = None,
    group_weights: Mapping[str, float] | None = None,
    missing: str | None = None,
    convention: str = "podium",
    params: Mapping[str, Any] | None = None,
) -> RankingResult:
    """Rank inside each task group with ``rule``, then across groups with ``group_rule``
    (default the same) and ``group_weights``. A group's score is the rule's score
    (oriented so higher is better), or minus the rank for rules without scores."""
    unknown = sorted(set(groups) - set(table.tasks))
    if unknown:
        raise RankingInputError(f"unknown column(s) in groups: {', '.join(unknown)}")
    members: dict[str, list[str]] = {}
    for task in table.tasks:
        members.setdefault(str(groups.get(task, task)), []).append(task)
    if group_weights:
        bad = sorted(set(group_weights) - set(members))
        if bad:
            raise RankingInputError(f"unknown group(s) in group_weights: {', '.join(bad)}")
    cols: list[list[float]] = []
    inner: dict[str, tuple[str, ...]] = {}
    for name, tasks in members.items():
        sub = table.select(tasks=tasks)
        w = {t: float(v) for t, v in (weights or {}).items() if t in tasks}
        if w and all(v == 0 for v in w.values()) and len(w) == len(tasks):
            continue  # a group whose tasks all weigh 0 is dropped
        res = rank(sub, rule=rule, weights=w, missing=missing, convention=convention, params=params)
        inner[name] = res.winners
        by_name = {e.system: e for e in res.ranking}
        up = res.details.get("score_order", "higher_is_better") == "higher_is_better"
        col = []
        for s in table.systems:
            e = by_name[s]
            if res.details.get("score_order") is None or e.score is None:
                col.append(-float(e.rank))
            else:
                col.append(e.score if up else -e.score)
        cols.append(col)
    kept = [g for g in members if g in inner]
    group_table = ScoreTable(
        systems=table.systems,
        tasks=tuple(kept),
        scores=np.array(cols).T,
        higher_is_better=(True,) * len(kept),
    )
    gw = {g: float(v) for g, v in (group_weights or {}).items() if g in kept}
    res = rank(
        group_table,
        rule=group_rule or rule,
        weights=gw,
        missing=missing,
        convention=convention,
        params=params,
    )
    details = dict(res.details) | {"group_winners": inner, "groups": members}
    return RankingResult(rule=res.rule, ranking=res.ranking, winners=res.winners, details=details)
