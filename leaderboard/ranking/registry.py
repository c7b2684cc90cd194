"""Rule registry: rules register themselves with ``@register_rule(name)``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leaderboard.ranking.context import RuleContext
    from leaderboard.ranking.result import RankingResult

RuleFunc = Callable[["RuleContext"], "RankingResult"]


@dataclass(frozen=True)
class Rule:
    """A registered rule and what it can do.

    ``missing``: the missing-score policies the rule accepts (a rule that needs a full
    per-task ranking accepts only ``median``). ``votenrank``: whether the rule exists in
    Vote'n'Rank (only those run under ``convention="votenrank"``);
    ``votenrank_missing``: the policy Vote'n'Rank itself applies when cells are missing
    (None: Vote'n'Rank disables the rule then).
    """

    name: str
    func: RuleFunc
    description: str
    missing: frozenset[str]
    votenrank: bool
    votenrank_missing: str | None
    condorcet_consistent: bool


RULES: dict[str, Rule] = {}


class UnknownRuleError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown rule"


def register_rule(
    name: str,
    *,
    description: str,
    missing: Iterable[str] = ("median",),
    votenrank: bool = False,
    votenrank_missing: str | None = None,
    condorcet_consistent: bool = False,
) -> Callable[[RuleFunc], RuleFunc]:
    def decorator(func: RuleFunc) -> RuleFunc:
        if name in RULES:
            raise ValueError(f"rule {name!r} is already registered")
        RULES[name] = Rule(
            name=name,
            func=func,
            description=description,
            missing=frozenset(missing),
            votenrank=votenrank,
            votenrank_missing=votenrank_missing,
            condorcet_consistent=condorcet_consistent,
        )
        return func

    return decorator


def get_rule(name: str) -> Rule:
    try:
        return RULES[name]
    except KeyError:
        known = ", ".join(sorted(RULES))
        raise UnknownRuleError(f"unknown rule {name!r}; known rules: {known}") from None
