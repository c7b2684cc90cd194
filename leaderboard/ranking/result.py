"""Ranking results and the competition-rank ('1224') construction shared by all rules."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import FrozenInstanceError, dataclass
from functools import cached_property, partial
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

# Scores closer than this (relative) are a tie: float sums of weights must not split ties.
TIE_RTOL = 1e-9


@dataclass(frozen=True)
class RankingEntry:
    system: str
    rank: int
    score: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "rank": self.rank, "score": self.score}


class RankingResult:
    """One rule's outcome: entries best first, the winner set and rule-specific details.

    Immutable. The entries are built on first access to ``ranking`` (from the ranks the
    rule computed): a caller that needs only the winners never pays for them, which is
    most of the cost of ranking a small table.
    """

    rule: str
    winners: tuple[str, ...]
    details: Mapping[str, Any]

    def __init__(
        self,
        *,
        rule: str,
        ranking: Sequence[RankingEntry] | Callable[[], tuple[RankingEntry, ...]],
        winners: Sequence[str],
        details: Mapping[str, Any] | None = None,
    ) -> None:
        fields = self.__dict__
        fields["rule"] = rule
        fields["winners"] = tuple(winners)
        fields["details"] = dict(details or {})
        if callable(ranking):
            fields["_build_ranking"] = ranking
        else:
            fields["ranking"] = tuple(ranking)

    @cached_property
    def ranking(self) -> tuple[RankingEntry, ...]:
        build: Callable[[], tuple[RankingEntry, ...]] = self.__dict__.pop("_build_ranking")
        return build()

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RankingResult):
            return NotImplemented
        return (self.rule, self.winners, self.ranking, self.details) == (
            other.rule,
            other.winners,
            other.ranking,
            other.details,
        )

    __hash__ = None  # type: ignore[assignment]  # details is a mutable mapping

    def __repr__(self) -> str:
        return (
            f"RankingResult(rule={self.rule!r}, ranking={self.ranking!r}, "
            f"winners={self.winners!r}, details={self.details!r})"
        )

    def rank_of(self, system: str) -> int:
        for entry in self.ranking:
            if entry.system == system:
                return entry.rank
        raise KeyError(system)

    def rank_vector(self, systems: Sequence[str]) -> list[int]:
        ranks = {e.system: e.rank for e in self.ranking}
        return [ranks[s] for s in systems]

    def groups(self) -> list[list[str]]:
        """Tied groups best first (names sorted inside a group)."""
        out: list[list[str]] = []
        last: int | None = None
        for entry in self.ranking:
            if entry.rank != last:
                out.append([])
                last = entry.rank
            out[-1].append(entry.system)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "ranking": [e.to_dict() for e in self.ranking],
            "winners": list(self.winners),
            "details": jsonable(self.details),
        }


def jsonable(value: Any) -> Any:
    """Numpy scalars/arrays and tuples to plain JSON types; NaN and inf to None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


def jsonable_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    out = jsonable(value)
    assert isinstance(out, dict)
    return out


def competition_ranks(keys: Sequence[float] | npt.NDArray[np.float64]) -> list[int]:
    """Competition ranks ('1224') for keys where LOWER is better; NaN ranks last, tied.

    A key ties with the one sorted just before it when they agree within ``TIE_RTOL``
    (relative).
    """
    out: list[int] = competition_rank_array(keys).tolist()
    return out


def competition_rank_array(keys: Sequence[float] | npt.NDArray[np.float64]) -> IntArray:
    """``competition_ranks`` as an int64 array; vectorised, it is on the path of every rule."""
    k = np.asarray(keys, dtype=np.float64)
    n = len(k)
    if n <= _PYTHON_RANKS_MAX:
        return np.array(_small_competition_ranks(k.tolist()), dtype=np.int64)
    ranks = np.empty(n, dtype=np.int64)
    if n == 0:
        return ranks
    order = np.argsort(k, kind="stable")  # NaN last, ties in input order
    s = k[order]
    prev, cur = s[:-1], s[1:]
    if math.isfinite(s[0]) and math.isfinite(s[-1]):
        # All finite (sorted, so the ends tell): no NaN or inf to guard against, and
        # cur >= prev, so no abs() on the gap.
        scale = np.maximum(np.maximum(np.abs(prev), np.abs(cur)), 1.0)
        close = cur - prev <= TIE_RTOL * scale
    else:
        with np.errstate(invalid="ignore"):
            scale = np.maximum(np.maximum(np.abs(prev), np.abs(cur)), 1.0)
            close = np.abs(cur - prev) <= TIE_RTOL * scale
        if np.isnan(s[-1]):  # NaN sorts last: the NaN block ties within itself
            nan = np.isnan(s)
            close |= nan[:-1] & nan[1:]
    if not close.any():
        ranks[order] = np.arange(1, n + 1)
        return ranks
    # Each position's rank is the position of its tie block's first member, plus 1.
    start = np.arange(1, n + 1)
    start[1:][close] = 0
    ranks[order] = np.maximum.accumulate(start)
    return ranks


# Below this many keys a Python sort beats a dozen numpy calls.
_PYTHON_RANKS_MAX = 32


def _small_competition_ranks(keys: list[float]) -> list[int]:
    """``competition_rank_array`` in Python, for a few keys."""
    n = len(keys)
    ranks = [0] * n
    if n == 0:
        return ranks
    # NaN last (tied among themselves), then the stable order of the values.
    nan = [k != k for k in keys]
    order = sorted(range(n), key=lambda i: (nan[i], 0.0 if nan[i] else keys[i]))
    first, prev = 0, keys[order[0]]
    for place, i in enumerate(order):
        cur = keys[i]
        if place:
            if prev != prev or cur != cur:
                tied = prev != prev and cur != cur
            else:
                tied = cur - prev <= TIE_RTOL * max(abs(prev), abs(cur), 1.0)
            if not tied:
                first = place
        ranks[i] = first + 1
        prev = cur
    return ranks


def _entries(
    systems: Sequence[str], ranks: IntArray, scores: npt.NDArray[np.float64] | None
) -> tuple[RankingEntry, ...]:
    """Entries sorted by (rank, name); a non-finite score is reported as None."""
    rows = sorted(zip(ranks.tolist(), systems, range(len(systems)), strict=True))
    values: list[float] | None = None if scores is None else scores.tolist()
    entries = []
    for rank, name, i in rows:
        score = None if values is None else values[i]
        if score is not None and not math.isfinite(score):
            score = None
        entries.append(RankingEntry(system=name, rank=rank, score=score))
    return tuple(entries)


def build_result(
    *,
    rule: str,
    systems: Sequence[str],
    ranks: Sequence[int] | IntArray,
    scores: Sequence[float | None] | npt.NDArray[np.float64] | None,
    details: Mapping[str, Any],
    winners: Sequence[str] | None = None,
) -> RankingResult:
    """Entries sorted by (rank, name), built when first read; winners default to every
    system ranked 1."""
    rank_array = np.asarray(ranks, dtype=np.int64)
    score_array: npt.NDArray[np.float64] | None = None
    if isinstance(scores, np.ndarray):
        score_array = scores.astype(np.float64, copy=False)
    elif scores is not None:
        score_array = np.array([math.nan if v is None else v for v in scores], dtype=np.float64)
    if winners is None:
        winners = sorted(systems[i] for i in np.flatnonzero(rank_array == 1).tolist())
    else:
        winners = sorted(winners)
    return RankingResult(
        rule=rule,
        ranking=partial(_entries, tuple(systems), rank_array, score_array),
        winners=winners,
        details=details,
    )


def result_from_scores(
    *,
    rule: str,
    systems: Sequence[str],
    scores: Sequence[float] | npt.NDArray[np.float64],
    higher_is_better: bool,
    details: Mapping[str, Any],
) -> RankingResult:
    values = np.asarray(scores, dtype=np.float64)
    info = dict(details)
    info.setdefault("score_order", "higher_is_better" if higher_is_better else "lower_is_better")
    return _result_from_keys(
        rule=rule,
        systems=systems,
        keys=-values if higher_is_better else values,
        scores=values,
        details=info,
    )


def result_from_levels(
    *,
    rule: str,
    systems: Sequence[str],
    levels: Sequence[int] | IntArray,
    scores: Sequence[float] | None,
    details: Mapping[str, Any],
) -> RankingResult:
    """For elimination/dominance rules: level 0 is best; equal levels tie."""
    score_array = None if scores is None else np.array(scores, dtype=np.float64)
    if isinstance(levels, list) and len(levels) <= _PYTHON_RANKS_MAX:
        # Small integer levels tie only when equal: the winners are the lowest level's,
        # and the keys array waits until the ranking is read.
        names = tuple(systems)
        low = min(levels, default=0)
        return RankingResult(
            rule=rule,
            ranking=partial(_entries_from_levels, names, levels, score_array),
            winners=sorted([names[i] for i, level in enumerate(levels) if level == low]),
            details=details,
        )
    return _result_from_keys(
        rule=rule,
        systems=systems,
        keys=np.asarray(levels, dtype=np.float64),
        scores=score_array,
        details=details,
    )


def _entries_from_levels(
    systems: tuple[str, ...], levels: list[int], scores: npt.NDArray[np.float64] | None
) -> tuple[RankingEntry, ...]:
    return _entries_from_keys(systems, np.asarray(levels, dtype=np.float64), scores)


def _result_from_keys(
    *,
    rule: str,
    systems: Sequence[str],
    keys: npt.NDArray[np.float64],
    scores: npt.NDArray[np.float64] | None,
    details: Mapping[str, Any],
) -> RankingResult:
    """The result ranked by ``keys`` (lower is better): the winners now, the competition
    ranks and entries only when ``ranking`` is read."""
    names = tuple(systems)
    first = first_block(keys)
    return RankingResult(
        rule=rule,
        ranking=partial(_entries_from_keys, names, keys, scores),
        winners=sorted([names[i] for i in first]),
        details=details,
    )


def _entries_from_keys(
    systems: tuple[str, ...],
    keys: npt.NDArray[np.float64],
    scores: npt.NDArray[np.float64] | None,
) -> tuple[RankingEntry, ...]:
    return _entries(systems, competition_rank_array(keys), scores)


def first_block(keys: npt.NDArray[np.float64]) -> list[int]:
    """Indices whose competition rank (``competition_rank_array``) is 1, without ranking
    everybody: the tie chain can only reach keys close to the minimum, so only those are
    ranked."""
    n = len(keys)
    if n <= _PYTHON_RANKS_MAX:
        values: list[float] = keys.tolist()
        finite = [k for k in values if k == k]  # NaN ranks last
        if not finite:
            return list(range(n))
        low = min(finite)
    else:
        low = float(np.fmin.reduce(keys))  # NaN only when every key is NaN
        if low != low:
            return list(range(n))
    if not math.isfinite(low) or n * TIE_RTOL > 0.01:
        ranked: list[int] = np.flatnonzero(competition_rank_array(keys) == 1).tolist()
        return ranked
    # A chain of at most n - 1 steps of TIE_RTOL * max(|key|, 1) stays below this bound
    # (a factor 2 of headroom over the exact sum, whatever the rounding).
    bound = low + 4.0 * n * TIE_RTOL * max(1.0, abs(low))
    if n <= _PYTHON_RANKS_MAX:
        near = [i for i, k in enumerate(values) if k <= bound]
    else:
        near = np.flatnonzero(keys <= bound).tolist()
    if len(near) == 1:
        return near
    # The near keys are a prefix of the sorted order, so their first block is the table's.
    sub = competition_rank_array(keys[near])
    return [i for i, r in zip(near, sub.tolist(), strict=True) if r == 1]
