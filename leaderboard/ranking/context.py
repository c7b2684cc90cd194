"""What every rule sees: oriented scores, weights, the missing-score policy, the convention.

The semantics documented in the package docstring are implemented here once, so the
rules cannot drift apart: direction, weights, ties and missing scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from leaderboard.ranking.registry import Rule
from leaderboard.ranking.result import RankingResult, result_from_scores
from leaderboard.ranking.table import FloatArray, RankingInputError, ScoreTable

IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

MISSING_POLICIES = ("pairwise", "impute", "median")
CONVENTIONS = ("podium", "votenrank")


@dataclass(frozen=True)
class RuleContext:
    rule: Rule
    table: ScoreTable
    tasks: tuple[str, ...]
    # Oriented (higher is better), restricted to the used tasks; NaN = missing.
    raw: FloatArray
    weights: FloatArray
    missing: str | None
    convention: str
    params: Mapping[str, Any] = field(default_factory=dict)
    complete: bool = False  # no missing cell in ``raw``

    @property
    def systems(self) -> tuple[str, ...]:
        return self.table.systems

    @property
    def n(self) -> int:
        return self.table.n_systems

    @property
    def votenrank(self) -> bool:
        return self.convention == "votenrank"

    @cached_property
    def x(self) -> FloatArray:
        """Complete oriented scores; only rules that accept ``median`` call this."""
        if self.complete or not np.isnan(self.raw).any():
            return self.raw
        if self.missing != "median":
            raise RankingInputError(
                f"rule {self.rule.name!r} needs every score; use missing='median' or fill the cells"
            )
        return median_fill(self.raw, self.tasks)

    @cached_property
    def task_prefs(self) -> FloatArray:
        """pref[t, a, b]: share of task t's comparison that goes to a over b."""
        return task_preferences(self._pref_data, strict=self.votenrank, impute=self.impute)

    @property
    def impute(self) -> bool:
        return self.missing == "impute"

    @property
    def _pref_data(self) -> FloatArray:
        return self.x if self.missing == "median" else self.raw

    @cached_property
    def pairwise(self) -> FloatArray:
        """P[a, b] = sum_t w_t pref[t, a, b] (diagonal 0).

        Built without the tasks x n x n tensor of ``task_prefs`` (it is 240 MB at
        1,000 systems x 30 tasks); same numbers.
        """
        return weighted_pairwise(
            self._pref_data,
            self.weights,
            strict=self.votenrank,
            impute=self.impute,
            # Median-filled scores are complete; otherwise make_context knows.
            complete=self.complete or self.missing == "median",
        )

    def positions(self, method: str) -> FloatArray:
        """Per-task positions of the complete scores, 1 = best (scipy rankdata method)."""
        cache = self._positions_cache
        if method not in cache:
            if method in ("min", "max", "average"):
                out = self._tie_positions(method)
            else:
                out = np.asarray(rankdata(-self.x, method=method, axis=0), np.float64)
            out.setflags(write=False)
            cache[method] = out
        return cache[method]

    @cached_property
    def _positions_cache(self) -> dict[str, FloatArray]:
        return {}

    @cached_property
    def _sorted_tasks(self) -> tuple[IntArray, BoolArray | None]:
        """Per task (rows of the transposed scores), the order best first and where the
        sorted scores tie with the next one (None when no task has a tie)."""
        # Tasks as contiguous rows: sorting along rows is cache-friendly. Positions do
        # not depend on the order inside a tie block, so the sort need not be stable.
        x = np.ascontiguousarray(-self.x.T)
        order = np.argsort(x, axis=1)
        ranked = np.sort(x, axis=1)  # the values x[order] holds, without a gather
        same = ranked[:, 1:] == ranked[:, :-1]  # same[t, i]: sorted places i, i + 1 tie
        return order, (same if np.count_nonzero(same) else None)

    def _tie_positions(self, method: str) -> FloatArray:
        """rankdata's 'min', 'max' or 'average' positions from one sort per task.

        A tie block occupies sorted places first..last; its members take first + 1,
        last + 1 or their mean. Without ties the three coincide.
        """
        order, same = self._sorted_tasks
        # Without ties one array serves every method (kept under "strict").
        if same is None and "strict" in self._positions_cache:
            return self._positions_cache["strict"]
        n_tasks, n = order.shape
        place_row = np.arange(1.0, n + 1.0)
        if same is None:
            sorted_positions: FloatArray = place_row  # broadcast over the tasks
        else:
            place = np.repeat(place_row[None, :], n_tasks, axis=0)
            if method == "min":
                sorted_positions = _block_first(place, same)
            elif method == "max":
                sorted_positions = _block_last(place, same)
            else:
                sorted_positions = (_block_first(place, same) + _block_last(place, same)) / 2.0
        out: FloatArray = np.empty(order.shape, dtype=np.float64)
        # Scatter each sorted place back to its system (the inverse permutation).
        out[np.arange(n_tasks)[:, None], order] = sorted_positions
        out = out.T
        if same is None:
            out.setflags(write=False)
            self._positions_cache["strict"] = out
        return out


def _block_first(place: FloatArray, same: BoolArray) -> FloatArray:
    """Per sorted place, the first place of its tie block."""
    starts = place.copy()
    starts[:, 1:][same] = 0.0
    out: FloatArray = np.maximum.accumulate(starts, axis=1)
    return out


def _block_last(place: FloatArray, same: BoolArray) -> FloatArray:
    """Per sorted place, the last place of its tie block."""
    ends = place.copy()
    ends[:, :-1][same] = np.inf
    out: FloatArray = np.minimum.accumulate(ends[:, ::-1], axis=1)[:, ::-1]
    return out


def median_fill(raw: FloatArray, tasks: tuple[str, ...]) -> FloatArray:
    filled = raw.copy()
    for t in range(raw.shape[1]):
        col = raw[:, t]
        miss = np.isnan(col)
        if miss.all():
            raise RankingInputError(f"task {tasks[t]!r} has no scores at all; drop the column")
        filled[miss, t] = float(np.median(col[~miss]))
    return filled


def task_preferences(data: FloatArray, *, strict: bool, impute: bool) -> FloatArray:
    """Per-task pairwise preference shares.

    Observed pairs: 1 for the better system, 0 for the worse; a tie gives 1/2 each
    (``strict``: 0 each, as Vote'n'Rank counts only strict wins). Pairs with a missing
    side count for nobody (pairwise deletion) unless ``impute``, which uses the
    compatible-permutation probabilities of Himmi et al.: observed rank r (0 = best,
    average over ties) of k observed systems beats a missing one with probability
    (k - r) / (k + 1); two missing systems 1/2 each.
    """
    n, n_tasks = data.shape
    out = np.zeros((n_tasks, n, n))
    for t in range(n_tasks):
        col = data[:, t]
        obs = ~np.isnan(col)
        a = col[:, None]
        b = col[None, :]
        with np.errstate(invalid="ignore"):
            pref = (a > b).astype(np.float64)
            if not strict:
                pref += 0.5 * (a == b)
        both = obs[:, None] & obs[None, :]
        pref = np.where(both, pref, 0.0)
        if impute and not obs.all():
            k = int(obs.sum())
            r = np.full(n, np.nan)
            if k:
                r[obs] = rankdata(-col[obs], method="average") - 1.0
            p_obs = (k - r) / (k + 1)
            miss = ~obs
            pref[np.ix_(obs, miss)] = p_obs[obs][:, None]
            pref[np.ix_(miss, obs)] = 1.0 - p_obs[obs][None, :]
            pref[np.ix_(miss, miss)] = 0.5
        np.fill_diagonal(pref, 0.0)
        out[t] = pref
    return out


# Above this many n*n*T cells, build P task by task (n x n temporaries, cache-friendly):
# measured 2.2 ms vs 3.9 ms at 200x30, while the one-shot version wins at 50x10.
_VECTOR_MAX_CELLS = 250_000


def weighted_pairwise(
    data: FloatArray,
    weights: FloatArray,
    *,
    strict: bool,
    impute: bool,
    complete: bool | None = None,
) -> FloatArray:
    """sum_t weights[t] * task_preferences(data)[t], without materialising the tensor.

    ``complete``: the caller knows that ``data`` has no NaN (None: look)."""
    n, n_tasks = data.shape
    if impute and np.isnan(data).any():
        out: FloatArray = np.einsum(
            "t,tab->ab", weights, task_preferences(data, strict=strict, impute=True)
        )
        return out
    half = 0.0 if strict else 0.5
    if n * n * n_tasks <= _VECTOR_MAX_CELLS:
        a = data[:, None, :]
        b = data[None, :, :]
        # NaN compares False both ways (and silently): a pair with a missing side counts
        # for nobody. (A uint8 view casts to float faster than bool does; same 0/1 values.)
        gt = a > b
        pref = gt.view(np.uint8).astype(np.float64)
        if half:
            if complete is None:
                complete = not np.isnan(data).any()
            # Skip the tie term when the only equal cells are the diagonal's (zeroed
            # below), the common case of a complete table without ties. Without NaN
            # each cell is a > b, b > a or a tie, so the ties are counted from gt.
            if not complete or n * n * n_tasks - 2 * np.count_nonzero(gt) > n * n_tasks:
                pref += half * (a == b)
        out = pref @ weights
    else:
        out = np.zeros((n, n))
        for t in range(n_tasks):
            if weights[t] == 0:
                continue
            col = data[:, t]
            with np.errstate(invalid="ignore"):
                gt = col[:, None] > col[None, :]
                out += weights[t] * gt
                if half:
                    out += (half * weights[t]) * (col[:, None] == col[None, :])
    out.ravel()[:: n + 1] = 0.0  # the diagonal (out is a fresh C-ordered n x n array)
    return out


def resolve_weights(table: ScoreTable, weights: Mapping[str, float] | None) -> FloatArray:
    """Per-task weights: listed tasks take the given weight, unlisted ones keep 1."""
    if weights:
        fast = _fast_weights(table, weights)
        if fast is not None:
            return fast
    w = np.ones(table.n_tasks)
    if weights:
        # Something is wrong (or unusual): the checks below name the offending entry.
        column = {t: j for j, t in enumerate(table.tasks)}
        for task, value in weights.items():
            if task not in column:
                raise RankingInputError(
                    f"unknown column {task!r} in weights (known: {', '.join(table.tasks)})"
                )
            try:
                f = float(value)
            except (TypeError, ValueError):
                raise RankingInputError(f"weight of {task!r} must be a number") from None
            if not math.isfinite(f) or f < 0:
                raise RankingInputError(
                    f"weight of {task!r} must be a finite number >= 0, got {value!r}"
                )
            w[column[task]] = f
        if not (w > 0).any():
            raise RankingInputError("at least one task needs a positive weight")
    return w


def _fast_weights(table: ScoreTable, weights: Mapping[str, float]) -> FloatArray | None:
    """``resolve_weights`` for plain valid input, checked with two C-level passes over
    the values; None sends the input through the entry-by-entry checks, which raise the
    precise error (or accept what those accept, e.g. numeric strings)."""
    values = list(weights.values())
    try:
        total = math.fsum(values)  # NaN or inf anywhere: not finite (or raises)
        if not (math.isfinite(total) and min(values) >= 0):
            return None
        keys = tuple(weights)
        if keys == table.tasks:
            w: FloatArray = np.array(values, dtype=np.float64)
            return w if total > 0 else None
        column = dict(zip(table.tasks, range(len(table.tasks)), strict=True))
        ones = np.ones(len(table.tasks))
        ones[[column[t] for t in keys]] = values
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    # Unlisted tasks keep weight 1, so some weight is positive.
    return ones if total > 0 or len(keys) < len(table.tasks) else None


def make_context(
    *,
    rule: Rule,
    table: ScoreTable,
    weights: Mapping[str, float] | None,
    missing: str | None,
    convention: str,
    params: Mapping[str, Any] | None,
) -> RuleContext:
    if convention not in CONVENTIONS:
        raise RankingInputError(
            f"unknown convention {convention!r}; choose one of: {', '.join(CONVENTIONS)}"
        )
    if missing is not None and missing not in MISSING_POLICIES:
        raise RankingInputError(
            f"unknown missing-score policy {missing!r}; "
            f"choose one of: {', '.join(MISSING_POLICIES)}"
        )
    if convention == "votenrank" and not rule.votenrank:
        raise RankingInputError(
            f"rule {rule.name!r} has no Vote'n'Rank definition; use convention='podium'"
        )
    w = resolve_weights(table, weights)
    oriented = table.oriented()
    # Podium: a zero weight removes the task entirely (also from medians and GM's domain).
    # (A list scan: cheaper than w.all() on a few dozen weights.)
    if convention == "podium" and weights and 0.0 in w.tolist():
        keep = w > 0
        raw = oriented[:, keep]
        tasks = tuple(t for t, k in zip(table.tasks, keep.tolist(), strict=True) if k)
        w = w[keep]
        complete = not np.isnan(raw).any()
    else:
        # Every column used: no copy, and completeness is known from the table.
        raw, tasks, complete = oriented, table.tasks, not table.has_missing
    policy = missing
    if not complete:
        if policy is None and convention == "votenrank":
            policy = rule.votenrank_missing
            if policy is None:
                raise RankingInputError(
                    f"Vote'n'Rank disables rule {rule.name!r} when scores are missing; "
                    "fill the cells or use convention='podium' with a missing policy"
                )
        if policy is None:
            allowed = ", ".join(sorted(rule.missing)) or "none"
            raise RankingInputError(
                f"scores have {int(np.isnan(raw).sum())} missing cell(s); choose a missing "
                f"policy for rule {rule.name!r} (it accepts: {allowed})"
            )
        if policy not in rule.missing:
            allowed = ", ".join(sorted(rule.missing)) or "none"
            raise RankingInputError(
                f"rule {rule.name!r} cannot rank with missing policy {policy!r} "
                f"(it accepts: {allowed})"
            )
        if convention == "votenrank" and policy == "impute":
            raise RankingInputError(
                "Vote'n'Rank has no imputation; use missing='pairwise' or 'median'"
            )
    return RuleContext(
        rule=rule,
        table=table,
        tasks=tasks,
        raw=raw,
        weights=w,
        missing=policy,
        convention=convention,
        params=dict(params or {}),
        complete=complete,
    )


def ranked_by_score(ctx: RuleContext, scores: Any) -> RankingResult:
    """The result of a rule whose higher per-system score ranks higher, with no details."""
    return result_from_scores(
        rule=ctx.rule.name,
        systems=ctx.systems,
        scores=np.asarray(scores, dtype=np.float64),
        higher_is_better=True,
        details={},
    )
