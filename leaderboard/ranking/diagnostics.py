"""Diagnostics: agreement between rules, robustness to task removal, Condorcet winners and
the weights LP "could this system be the weighted-majority winner?"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linprog
from scipy.stats import kendalltau

from leaderboard.ranking.api import rank
from leaderboard.ranking.context import median_fill, task_preferences
from leaderboard.ranking.result import RankingResult, jsonable, jsonable_dict
from leaderboard.ranking.table import RankingInputError, ScoreTable


def kendall_tau_b(a: RankingResult, b: RankingResult) -> float | None:
    """Tie-aware Kendall tau-b between two rankings' rank vectors (None if undefined)."""
    systems = [e.system for e in a.ranking]
    if {e.system for e in b.ranking} != set(systems):
        raise RankingInputError("the two rankings rank different systems")
    tau = kendalltau(a.rank_vector(systems), b.rank_vector(systems), variant="b").statistic
    return None if tau is None or not np.isfinite(tau) else float(tau)


@dataclass(frozen=True)
class Agreement:
    rules: tuple[str, ...]
    tau: tuple[tuple[float | None, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"rules": list(self.rules), "kendall_tau_b": jsonable(self.tau)}


def agreement(results: Mapping[str, RankingResult]) -> Agreement:
    names = tuple(results)
    tau = tuple(tuple(kendall_tau_b(results[r], results[s]) for s in names) for r in names)
    return Agreement(rules=names, tau=tau)


@dataclass(frozen=True)
class Robustness:
    rule: str
    winners: tuple[str, ...]
    # Per removed task: tau-b against the full ranking and the winners without it.
    tau_without: Mapping[str, float | None]
    winners_without: Mapping[str, tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        return jsonable_dict(
            {
                "rule": self.rule,
                "winners": self.winners,
                "tau_without": dict(self.tau_without),
                "winners_without": dict(self.winners_without),
            }
        )


def robustness(
    table: ScoreTable,
    *,
    rule: str,
    weights: Mapping[str, float] | None = None,
    missing: str | None = None,
    convention: str = "podium",
    params: Mapping[str, Any] | None = None,
) -> Robustness:
    """Re-rank with each positively weighted task removed (weight set to 0)."""
    kw: dict[str, Any] = {"missing": missing, "convention": convention, "params": params}
    base_w = dict.fromkeys(table.tasks, 1.0) | dict(weights or {})
    full = rank(table, rule=rule, weights=base_w, **kw)
    tau: dict[str, float | None] = {}
    win: dict[str, tuple[str, ...]] = {}
    for task in table.tasks:
        if base_w[task] <= 0 or sum(v > 0 for v in base_w.values()) < 2:
            continue
        res = rank(table, rule=rule, weights=base_w | {task: 0.0}, **kw)
        tau[task] = kendall_tau_b(full, res)
        win[task] = res.winners
    return Robustness(rule=rule, winners=full.winners, tau_without=tau, winners_without=win)


def condorcet_winner(
    table: ScoreTable,
    *,
    weights: Mapping[str, float] | None = None,
    missing: str | None = None,
    convention: str = "podium",
) -> str | None:
    res = rank(table, rule="condorcet", weights=weights, missing=missing, convention=convention)
    return res.winners[0] if res.winners else None


@dataclass(frozen=True)
class WeightFeasibility:
    system: str
    # Some weights make nobody beat it (Vote'n'Rank's "prospective" test, <= 0).
    weak: bool
    # Some weights make it beat everybody strictly (a Condorcet winner).
    strict: bool
    margin: float
    weights: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return jsonable_dict(self.__dict__)


def possible_condorcet_winners(
    table: ScoreTable,
    *,
    tasks: Sequence[str] | None = None,
    missing: str | None = None,
) -> tuple[WeightFeasibility, ...]:
    """For each system, an LP over task weights w >= 0, sum w = 1: maximise the smallest
    weighted majority margin eps over all rivals (margins computed per task as win 1,
    tie 0, loss -1; with missing='pairwise' a missing pair counts 0, 'median' fills).

    eps >= 0 means weights exist under which nobody beats it; eps > 0 means it can be
    the strict Condorcet winner. The returned weights attain eps.
    """
    sub = table.select(tasks=tasks) if tasks is not None else table
    data = sub.oriented()
    if np.isnan(data).any():
        if missing == "median":
            data = median_fill(data, sub.tasks)
        elif missing != "pairwise":
            raise RankingInputError(
                "scores have missing cells; choose missing='pairwise' or 'median'"
            )
    pref = task_preferences(data, strict=True, impute=False)
    n, n_tasks = sub.n_systems, sub.n_tasks
    out = []
    for i in range(n):
        rivals = [j for j in range(n) if j != i]
        # Variables (w_1..w_T, eps); maximise eps  <=>  minimise -eps.
        c = np.zeros(n_tasks + 1)
        c[-1] = -1.0
        d = pref[:, i, rivals] - pref[:, rivals, i]  # (T, rivals)
        a_ub = np.hstack([-d.T, np.ones((len(rivals), 1))]) if rivals else None
        b_ub = np.zeros(len(rivals)) if rivals else None
        a_eq = np.hstack([np.ones((1, n_tasks)), np.zeros((1, 1))])
        bounds = [(0.0, None)] * n_tasks + [(-1.0, 1.0)]
        res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0], bounds=bounds)
        if res.status != 0:
            raise RuntimeError(f"weights LP failed for {sub.systems[i]!r}: {res.message}")
        eps = float(res.x[-1])
        out.append(
            WeightFeasibility(
                system=sub.systems[i],
                weak=eps >= -1e-9,
                strict=eps > 1e-9,
                margin=eps,
                weights={t: float(v) for t, v in zip(sub.tasks, res.x[:-1], strict=True)},
            )
        )
    return tuple(out)
