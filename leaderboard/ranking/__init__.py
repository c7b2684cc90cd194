"""Podium's ranking engine: aggregate a systems x tasks score table into a ranking.

Semantics, applied by every rule (the code lives once, in ``context.py``):

* Direction. Each task has ``higher_is_better``; lower-is-better tasks are negated before
  any comparison, so rules only ever see "higher is better". Rules that average raw
  numbers (means, optimality gap) refuse mixed directions instead of mixing units.
* Weights. A weight per task (default 1, must be >= 0). Weighted rules count a task w
  times. A zero weight removes the task entirely (it does not enter medians, the
  geometric mean's domain or any comparison).
* Ties in scores. One convention: tied systems share equally what the positions they
  jointly occupy are worth. In a pairwise comparison a tie gives each side 1/2 (so Borda
  = systems beaten + ties/2 = n - average position); Plurality splits a shared first
  place's point; Dowdall and Threshold average over the tied block's positions. A pairwise
  majority tie is a win for nobody. Final rankings use competition ranks ("1224"): tied
  systems share the best rank and the next rank skips. Winners are every system ranked 1,
  returned as a name-sorted tuple; no rule ever breaks a tie arbitrarily (ranked pairs
  locks equal-margin pairs together; Kemeny returns every co-optimal winner).
* Missing scores (NaN). No silent default: a table with missing cells needs a policy:
  ``pairwise`` (pairwise deletion: a task where either system is missing counts for
  neither), ``impute`` (Himmi et al.'s compatible-permutation probabilities, each task
  normalised to weight 1 rather than n!/k!, ties handled as 1/2), or ``median`` (fill
  with the task median). Each rule declares the policies it accepts and raises
  ``RankingInputError`` otherwise (e.g. Plurality cannot rank a system missing a task).
* ``convention="votenrank"`` switches to Vote'n'Rank's exact conventions (Rofin et al.,
  EACL 2023): strict pairwise wins (a tie counts for nobody), Borda with max-rank ties,
  Dowdall with min-rank ties, Plurality giving nobody a shared first place, Minimax by
  winning votes, geometric mean NaN for any non-positive score (even in a weight-0
  column, which is kept), and its missing-score handling (median fill for mean and
  optimality gap, pairwise deletion for Condorcet/Copeland/Minimax, other rules refused).
  Only rules Vote'n'Rank has exist in that convention.
"""

from leaderboard.ranking import kemeny as _kemeny
from leaderboard.ranking import majority as _majority
from leaderboard.ranking import means as _means
from leaderboard.ranking import positional as _positional
from leaderboard.ranking.api import RankAllResult, rank, rank_all
from leaderboard.ranking.context import CONVENTIONS, MISSING_POLICIES
from leaderboard.ranking.kemeny import KemenySolution, solve_kemeny
from leaderboard.ranking.registry import RULES, Rule, UnknownRuleError, get_rule, register_rule
from leaderboard.ranking.result import RankingEntry, RankingResult
from leaderboard.ranking.table import RankingInputError, ScoreTable, read_scores_csv

del _kemeny, _majority, _means, _positional

__all__ = [
    "CONVENTIONS",
    "MISSING_POLICIES",
    "RULES",
    "KemenySolution",
    "RankAllResult",
    "RankingEntry",
    "RankingInputError",
    "RankingResult",
    "Rule",
    "ScoreTable",
    "UnknownRuleError",
    "get_rule",
    "rank",
    "rank_all",
    "read_scores_csv",
    "register_rule",
    "solve_kemeny",
]
