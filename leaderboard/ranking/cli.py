"""``python -m leaderboard rank``: rank a scores CSV from the command line.

Exit status 2 with one line on stderr for any input the user must fix.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from leaderboard.ranking.api import rank, rank_all
from leaderboard.ranking.context import CONVENTIONS, MISSING_POLICIES
from leaderboard.ranking.registry import RULES, UnknownRuleError, get_rule
from leaderboard.ranking.result import RankingResult
from leaderboard.ranking.table import RankingInputError, read_scores_csv

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the message; we promise one line on stderr."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def add_rank_command(subparsers: Any) -> None:
    """Register ``rank`` on an ``add_subparsers()`` object (other commands sit beside it)."""
    p = subparsers.add_parser(
        "rank",
        help="rank systems from a scores CSV",
        description="Rank systems from SCORES.csv (a 'system' column, one column per task; "
        "an empty cell is a missing score).",
    )
    p.add_argument("scores", help="CSV file with a 'system' column and one column per task")
    p.add_argument("--rule", required=True, help="rule name, or 'all'")
    p.add_argument("--weights", help="JSON object {task: weight}; unlisted tasks weigh 1")
    p.add_argument("--lower-is-better", default="", help="comma-separated task columns")
    p.add_argument("--missing", choices=MISSING_POLICIES, default=None)
    p.add_argument("--convention", choices=CONVENTIONS, default="podium")
    p.add_argument("--params", help="JSON object of rule-specific options")
    p.add_argument("--format", choices=("json", "table"), default="json")
    p.set_defaults(handler=run_rank)


def _load_json_object(path: str, what: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise RankingInputError(f"cannot read {what} file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise RankingInputError(f"{what} file {path} is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise RankingInputError(f"{what} file {path} must hold a JSON object")
    return data


def run_rank(args: argparse.Namespace) -> int:
    if args.rule != "all":
        get_rule(args.rule)  # fail on an unknown rule before reading anything
    lower = [c.strip() for c in args.lower_is_better.split(",") if c.strip()]
    table = read_scores_csv(args.scores, lower_is_better=lower)
    weights = _load_json_object(args.weights, "weights") if args.weights else None
    if weights is not None:
        for key, value in weights.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RankingInputError(f"weights: the weight of {key!r} must be a number")
    params = json.loads(args.params) if args.params else None
    if params is not None and not isinstance(params, dict):
        raise RankingInputError("--params must be a JSON object")
    kwargs: dict[str, Any] = {
        "weights": weights,
        "missing": args.missing,
        "convention": args.convention,
        "params": params,
    }
    if args.rule == "all":
        every = rank_all(table, **kwargs)
        if args.format == "json":
            print(json.dumps(every.to_dict(), indent=2))
        else:
            for res in every.results.values():
                print(_table(res))
            for name, why in every.skipped.items():
                print(f"[{name}] skipped: {why}")
        return 0
    res = rank(table, rule=args.rule, **kwargs)
    print(json.dumps(res.to_dict(), indent=2) if args.format == "json" else _table(res))
    return 0


def _table(res: RankingResult) -> str:
    width = max(len(e.system) for e in res.ranking)
    lines = [f"[{res.rule}] winners: {', '.join(res.winners) or '(none)'}"]
    lines.append(f"{'rank':>4}  {'system':<{width}}  score")
    for e in res.ranking:
        score = "" if e.score is None else f"{e.score:.4f}"
        lines.append(f"{e.rank:>4}  {e.system:<{width}}  {score}")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m leaderboard", description="Podium leaderboard tools")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_rank_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except (RankingInputError, UnknownRuleError) as exc:
        sys.stderr.write(f"error: {' '.join(str(exc).split())}\n")
        return EXIT_USAGE
    except json.JSONDecodeError as exc:
        sys.stderr.write(f"error: --params is not valid JSON: {exc.msg}\n")
        return EXIT_USAGE
    return code


__all__ = ["RULES", "add_rank_command", "build_parser", "main"]
