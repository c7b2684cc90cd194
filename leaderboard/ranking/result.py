"""Ranking results and the competition-rank ('1224') construction shared by all rules."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Scores closer than this (relative) are a tie: float sums of weights must not split ties.
TIE_RTOL = 1e-9


@dataclass(frozen=True)
class RankingEntry:
    system: str
    rank: int
    score: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "rank": self.rank, "score": self.score}


@dataclass(frozen=True)
class RankingResult:
    """One rule's outcome: entries best first, the winner set and rule-specific details."""

    rule: str
    ranking: tuple[RankingEntry, ...]
    winners: tuple[str, ...]
    details: Mapping[str, Any] = field(default_factory=dict)

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


def competition_ranks(keys: Sequence[float]) -> list[int]:
    """Competition ranks ('1224') for keys where LOWER is better; NaN ranks last, tied.

    A key ties with the one sorted just before it when they agree within ``TIE_RTOL``
    (relative); vectorised, it is on the path of every rule.
    """
    k = np.asarray(keys, dtype=np.float64)
    n = len(k)
    if n == 0:
        return []
    order = np.argsort(k, kind="stable")  # NaN last, ties in input order
    s = k[order]
    nan = np.isnan(s)
    prev, cur = s[:-1], s[1:]
    with np.errstate(invalid="ignore"):
        scale = np.maximum(1.0, np.maximum(np.abs(prev), np.abs(cur)))
        close = np.abs(cur - prev) <= TIE_RTOL * scale
    tied = (nan[:-1] & nan[1:]) | (~nan[:-1] & ~nan[1:] & close)
    start = np.ones(n, dtype=bool)
    start[1:] = ~tied
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = first + 1
    out: list[int] = ranks.tolist()
    return out


def build_result(
    *,
    rule: str,
    systems: Sequence[str],
    ranks: Sequence[int],
    scores: Sequence[float | None] | None,
    details: Mapping[str, Any],
    winners: Sequence[str] | None = None,
) -> RankingResult:
    """Entries sorted by (rank, name); winners default to every system ranked 1."""
    rows = sorted(zip(ranks, systems, range(len(systems)), strict=True))
    entries = []
    for rank, name, i in rows:
        score = None if scores is None else scores[i]
        if score is not None and not math.isfinite(score):
            score = None
        entries.append(RankingEntry(system=name, rank=int(rank), score=score))
    if winners is None:
        winners = [e.system for e in entries if e.rank == 1]
    return RankingResult(
        rule=rule, ranking=tuple(entries), winners=tuple(sorted(winners)), details=dict(details)
    )


def result_from_scores(
    *,
    rule: str,
    systems: Sequence[str],
    scores: Sequence[float],
    higher_is_better: bool,
    details: Mapping[str, Any],
) -> RankingResult:
    keys = [-s if higher_is_better else s for s in scores]
    ranks = competition_ranks(keys)
    info = dict(details)
    info.setdefault("score_order", "higher_is_better" if higher_is_better else "lower_is_better")
    return build_result(
        rule=rule, systems=systems, ranks=ranks, scores=[float(s) for s in scores], details=info
    )


def result_from_levels(
    *,
    rule: str,
    systems: Sequence[str],
    levels: Sequence[int],
    scores: Sequence[float] | None,
    details: Mapping[str, Any],
) -> RankingResult:
    """For elimination/dominance rules: level 0 is best; equal levels tie."""
    ranks = competition_ranks([float(v) for v in levels])
    return build_result(rule=rule, systems=systems, ranks=ranks, scores=scores, details=details)
