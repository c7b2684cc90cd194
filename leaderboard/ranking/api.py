"""Public entry points: ``rank`` one rule, ``rank_all`` every applicable rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leaderboard.ranking.context import make_context
from leaderboard.ranking.registry import RULES, get_rule
from leaderboard.ranking.result import RankingResult
from leaderboard.ranking.table import RankingInputError, ScoreTable


def rank(
    table: ScoreTable,
    *,
    rule: str,
    weights: Mapping[str, float] | None = None,
    missing: str | None = None,
    convention: str = "podium",
    params: Mapping[str, Any] | None = None,
) -> RankingResult:
    """Rank ``table`` with one registered rule.

    weights: per-task weights (unlisted tasks weigh 1; 0 removes a task). missing: None
    (refuse missing cells; under convention='votenrank' apply Vote'n'Rank's own policy),
    'pairwise', 'impute' or 'median'. params: rule-specific options (see each rule's
    description in ``RULES``).
    """
    spec = get_rule(rule)
    ctx = make_context(
        rule=spec,
        table=table,
        weights=weights,
        missing=missing,
        convention=convention,
        params=params,
    )
    return spec.func(ctx)


@dataclass(frozen=True)
class RankAllResult:
    results: Mapping[str, RankingResult]
    # Rules that cannot run on this input, with the reason (e.g. missing scores).
    skipped: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": [r.to_dict() for r in self.results.values()],
            "skipped": dict(self.skipped),
        }


def rank_all(
    table: ScoreTable,
    *,
    rules: Sequence[str] | None = None,
    weights: Mapping[str, float] | None = None,
    missing: str | None = None,
    convention: str = "podium",
    params: Mapping[str, Any] | None = None,
) -> RankAllResult:
    """Run several rules (default: every registered rule that exists under ``convention``).

    A rule that cannot handle this input is reported in ``skipped`` rather than guessed.
    """
    names = (
        list(rules)
        if rules is not None
        else sorted(n for n, r in RULES.items() if convention != "votenrank" or r.votenrank)
    )
    results: dict[str, RankingResult] = {}
    skipped: dict[str, str] = {}
    for name in names:
        get_rule(name)
        try:
            results[name] = rank(
                table,
                rule=name,
                weights=weights,
                missing=missing,
                convention=convention,
                params=params,
            )
        except RankingInputError as exc:
            skipped[name] = str(exc)
    return RankAllResult(results=results, skipped=skipped)
