"""The `podium` command: log in, submit results, request and follow jobs, read and export
leaderboards, import lm-eval results, and upload what tracked runs could not send.

Every failure is one line on stderr (`podium: error: ...`) and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import tempfile
import time
import uuid as uuid_module
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from podium.config import (
    Credentials,
    credentials_path,
    load_credentials,
    normalise_url,
    save_credentials,
    spool_root,
)
from podium.errors import ApiError, PodiumError, Unreachable
from podium.http import Api, check_json
from podium.spool import locked, pending_spools
from podium.transport import sync_spool

FINAL = ("succeeded", "failed", "cancelled")
EXPORT_TYPES = {"csv": "text/csv", "json": "application/json", "latex": "application/x-latex"}


class UsageError(PodiumError):
    """Bad command-line input."""


# --- helpers ------------------------------------------------------------------------------


def _api(args: argparse.Namespace) -> Api:
    return Api(load_credentials(url=args.url, token=args.token))


def _json_option(value: str, *, what: str) -> Any:
    """A JSON value given inline or as @file."""
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"{what}: cannot read {value[1:]}: {error.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"{what}: not JSON ({error})") from None


def _config(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    config = _json_option(value, what="--config")
    if not isinstance(config, dict):
        raise UsageError("--config: give a JSON object, e.g. '{\"learning_rate\": 2e-5}'")
    return config


def _pairs(values: Sequence[str], *, what: str) -> dict[str, str]:
    pairs = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{what}: give NAME=VALUE, not {item!r}")
        pairs[name.strip()] = value.strip()
    return pairs


def _write_atomically(target: str, data: bytes, out: TextIO) -> None:
    if target == "-":
        out.write(data.decode("utf-8"))
        return
    path = Path(target)
    handle, temporary = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _short(uuid: str) -> str:
    return uuid.split("-")[0]


def _scores_text(scores: Sequence[dict[str, Any]]) -> str:
    return ", ".join(f"{s['metric']}={s['value']:.4f}" for s in scores) or "no scores"


# --- login --------------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace, out: TextIO) -> int:
    url = args.url or input("Podium URL (e.g. https://podium.example.org): ")
    url = normalise_url(url)
    token = args.token or getpass.getpass("API token: ")
    if not token.strip():
        raise UsageError("no token given")
    credentials = Credentials(url=url, token=token.strip())
    try:
        me = Api(credentials, timeout=15).request("GET", "/api/v1/accounts/me/").body
    except ApiError as error:
        if error.status in (401, 403):
            raise PodiumError(f"{url} refused the token: {error.summary()}") from None
        raise
    if not isinstance(me, dict) or "username" not in me:
        raise PodiumError(f"{url} did not answer like a Podium server; check the URL.")
    path = save_credentials(credentials)
    out.write(
        f"Logged in to {url} as {me['username']}; credentials saved to {path} "
        "(readable by you only).\n"
    )
    return 0


# --- submit -------------------------------------------------------------------------------


def cmd_submit(args: argparse.Namespace, out: TextIO) -> int:
    body: dict[str, Any] = {
        "task": args.task,
        "method": args.method,
        "backbone": args.backbone,
        "config": _config(args.config),
        "seed": args.seed,
        "tags": args.tag,
        "description": args.description,
        "visibility": "private" if args.private else "public",
    }
    given = [bool(args.score), bool(args.scores_file), bool(args.predictions)]
    if sum(given) != 1:
        raise UsageError("give scores (--score METRIC=VALUE or --scores-file) or --predictions")
    if args.predictions:
        if not args.split:
            raise UsageError("--predictions needs --split (the split they are for)")
        try:
            body["predictions"] = Path(args.predictions).read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot read {args.predictions}: {error.strerror}") from None
        body["split"] = args.split
        body["format"] = args.format
    else:
        raw = (
            _pairs(args.score, what="--score")
            if args.score
            else _json_option("@" + args.scores_file, what="--scores-file")
        )
        if not isinstance(raw, dict):
            raise UsageError("--scores-file: give a JSON object {metric: value}")
        scores = {}
        for metric, value in raw.items():
            try:
                scores[metric] = float(value)
            except (TypeError, ValueError):
                raise UsageError(f"score {metric}: {value!r} is not a number") from None
        body["scores"] = scores
    api = _api(args)
    # One key per invocation: retries after a lost answer return the same run.
    key = f"podium-submit-{uuid_module.uuid4().hex}"
    answer = api.call("POST", "/api/v1/runs/", json_body=body, headers={"Idempotency-Key": key})
    run = answer.body
    out.write(
        f"Recorded run {run['uuid']} ({run['provenance_tier']}): "
        f"{_scores_text(run.get('scores', []))}\n{api.url}/runs/{run['uuid']}/\n"
    )
    return 0


# --- run ----------------------------------------------------------------------------------


def _new_lines(previous: str, current: str) -> list[str]:
    """Lines of a log tail not shown yet: the tail is a sliding window, so find where the
    previous one's end overlaps the current one's start."""
    old, new = previous.splitlines(), current.splitlines()
    for size in range(min(len(old), len(new)), 0, -1):
        if old[-size:] == new[:size]:
            return new[size:]
    return new


def _progress_line(run: dict[str, Any], progress: dict[str, Any]) -> str:
    status = progress["status"]
    where = (
        f"run {_short(run['uuid'])} ({run['task']['benchmark']}/{run['task']['key']} "
        f"seed {run['seed']})"
    )
    if status == "queued":
        text = f"{where}: queued"
        if progress.get("position"):
            text += f", position {progress['position']}"
        if progress.get("estimated_start"):
            text += f", estimated start {progress['estimated_start']}"
        return text
    if status in ("running", "cancelling"):
        text = f"{where}: {status}"
        if progress.get("worker"):
            text += f" on {progress['worker']}"
        step = (progress.get("progress") or {}).get("step")
        total = (progress.get("progress") or {}).get("total_steps")
        if step is not None:
            text += f", step {step}" + (f"/{total}" if total else "")
        speed = (progress.get("progress") or {}).get("examples_per_second")
        if speed:
            text += f" ({float(speed):.1f} examples/s)"
        return text
    reason = progress.get("status_reason") or ""
    return f"{where}: {status}" + (f" ({reason})" if reason and status != "succeeded" else "")


def follow_runs(
    api: Api,
    runs: list[dict[str, Any]],
    *,
    out: TextIO,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """Print each run's changes (status, position, progress, new log lines) until every run
    is final; returns each run's final status."""
    shown: dict[str, str] = {}
    tails: dict[str, str] = {}
    final: dict[str, str] = {}
    while len(final) < len(runs):
        for run in runs:
            uuid = run["uuid"]
            if uuid in final:
                continue
            try:
                progress = api.call("GET", f"/api/v1/runs/{uuid}/progress/").body
            except Unreachable as error:
                out.write(f"(server unreachable, still trying: {error})\n")
                continue
            line = _progress_line(run, progress)
            if shown.get(uuid) != line:
                out.write(line + "\n")
                shown[uuid] = line
            tail = progress.get("log_tail") or ""
            for text in _new_lines(tails.get(uuid, ""), tail):
                out.write(f"  | {text}\n")
            tails[uuid] = tail
            if progress["status"] in FINAL:
                final[uuid] = progress["status"]
                if progress["status"] == "succeeded":
                    detail = api.call("GET", f"/api/v1/runs/{uuid}/").body
                    out.write(f"  scores: {_scores_text(detail.get('scores', []))}\n")
        out.flush()
        if len(final) < len(runs):
            sleep(interval)
    return final


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    if bool(args.task) == bool(args.suite):
        raise UsageError("give --task or --suite")
    body: dict[str, Any] = {
        "method": args.method,
        "backbone": args.backbone,
        "config": _config(args.config),
        "seeds": args.seed or [0],
        "visibility": "private" if args.private else "public",
    }
    body["task" if args.task else "suite"] = args.task or args.suite
    api = _api(args)
    # One key per invocation: a retry after a lost answer returns the same runs.
    answer = api.call(
        "POST",
        "/api/v1/jobs/",
        json_body=body,
        headers={"Idempotency-Key": f"podium-run-{uuid_module.uuid4().hex}"},
    )
    runs = answer.body["runs"]
    out.write(f"Requested {len(runs)} run(s).\n")
    if args.no_follow:
        for run in runs:
            out.write(f"{run['uuid']} {run['task']['benchmark']}/{run['task']['key']}\n")
        return 0
    out.write("Following them (Ctrl-C stops following; the jobs go on).\n")
    final = follow_runs(api, runs, out=out, interval=args.interval)
    failed = sorted(uuid for uuid, status in final.items() if status != "succeeded")
    if failed:
        raise PodiumError(
            f"{len(failed)} of {len(runs)} run(s) did not succeed: "
            + ", ".join(f"{_short(u)} {final[u]}" for u in failed)
        )
    return 0


# --- leaderboards -------------------------------------------------------------------------


def _board_params(args: argparse.Namespace) -> dict[str, str]:
    params = {"rule": args.rule}
    if args.missing:
        params["missing"] = args.missing
    if getattr(args, "personal", False):
        params["view"] = "personal"
    return params


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_leaderboard(board: dict[str, Any]) -> str:
    """A leaderboard as a plain-text table: rank, system, the rule's score, one column per
    task (its primary metric, mean over seeds)."""
    official = board["rule"] == "official"
    score_name = (board.get("official_score_name") or "score") if official else board["rule"]
    headers = ["#", "system", score_name]
    headers += [f"{c['task'].split('/')[-1]}/{c['metric']}" for c in board["columns"]]
    rows = []
    for row in board["rows"]:
        # The server ranks the whole board (ties share a rank), whatever page a row is on.
        rank = str(row["rank"]) if row.get("rank") is not None else "-"
        if official:
            score = _number((row.get("official") or {}).get("value"), 2)
        else:
            score = _number(row["rule_score"], 3)
        cells = [_number(cell["mean"]) if cell else "-" for cell in row["cells"]]
        rows.append([rank, row["system"], score, *cells])
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=True)]

    def line(values: Sequence[str]) -> str:
        parts = [
            str(v).ljust(w) if i == 1 else str(v).rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    title = f"{board['suite']} v{board['version']} · rule {board['rule']}"
    if board.get("missing"):
        title += f" · missing scores: {board['missing']}"
    text = [title, line(headers), line(["-" * w for w in widths])]
    text += [line(r) for r in rows] or ["(no systems yet)"]
    if board.get("winners") and not official:
        text.append(f"winner(s): {', '.join(board['winners'])}")
    return "\n".join(text) + "\n"


# The API's largest page: a board of 1,000 systems comes in one request.
BOARD_PAGE_SIZE = 1000


def board_all_rows(api: Api, *, suite: str, params: dict[str, str]) -> dict[str, Any]:
    """A suite's leaderboard with the rows of every page (the API pages them)."""
    path = f"/api/v1/suites/{suite}/leaderboard/"
    rows: list[Any] = []
    page = 1
    while True:
        board = check_json(
            api.get(path, **params, page_size=str(BOARD_PAGE_SIZE), page=str(page)),
            what="the leaderboard",
        )
        rows += board.get("rows", [])
        if not board.get("next"):
            break
        page += 1
    # One board of every row: page fields describe it as a single page.
    return board | {"rows": rows, "page": 1, "next": None, "previous": None}


def cmd_leaderboard(args: argparse.Namespace, out: TextIO) -> int:
    board = board_all_rows(_api(args), suite=args.suite, params=_board_params(args))
    if board.get("error"):
        raise PodiumError(f"rule {board['rule']} cannot rank {args.suite}: {board['error']}")
    out.write(format_leaderboard(board))
    return 0


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    if args.format == "json":
        # The JSON answer is paged: the file holds every row, as the other formats do.
        board = board_all_rows(_api(args), suite=args.suite, params=_board_params(args))
        board["page_size"] = len(board["rows"])
        data = (json.dumps(board, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    else:
        expected = EXPORT_TYPES[args.format]
        response = _api(args).call(
            "GET",
            f"/api/v1/suites/{args.suite}/leaderboard/",
            params={**_board_params(args), "format": args.format},
            headers={"Accept": f"{expected}, application/json;q=0.5"},
        )
        if response.content_type != expected:
            answered = response.content_type or "no content type"
            raise PodiumError(
                f"the server did not export {args.format} (it answered {answered}); it needs a "
                "Podium version with leaderboard exports (?format=csv|json|latex)"
            )
        data = response.raw
    _write_atomically(args.output, data, out)
    if args.output != "-":
        out.write(f"Wrote {args.suite} ({args.format}, rule {args.rule}) to {args.output}\n")
    return 0


# --- lm-eval ------------------------------------------------------------------------------


def cmd_import_lm_eval(args: argparse.Namespace, out: TextIO) -> int:
    from podium.lm_eval import import_lm_eval, plan_lm_eval_import, read_results

    task_map = _pairs(args.map, what="--map")
    config = _config(args.config)
    if args.dry_run:
        results, _ = read_results(Path(args.results))
        plan = plan_lm_eval_import(results, seed=args.seed, config=config, task_map=task_map)
        for item in plan.submissions:
            scores = ", ".join(f"{k}={v:.4f}" for k, v in item.scores.items())
            out.write(f"would submit {item.task} (from {item.lm_eval_task}): {scores}\n")
        for skipped in plan.skipped:
            out.write(f"skip {skipped.lm_eval_task}: {skipped.reason}\n")
        return 0
    report = import_lm_eval(
        _api(args),
        Path(args.results),
        backbone=args.backbone,
        method=args.method,
        seed=args.seed,
        config=config,
        task_map=task_map,
        visibility="private" if args.private else "public",
    )
    for task, uuid in report.created:
        out.write(f"imported {task}: run {uuid}\n")
    for task, uuid in report.already:
        out.write(f"already imported {task}: run {uuid}\n")
    for skipped in report.skipped:
        out.write(f"skipped {skipped.lm_eval_task}: {skipped.reason}\n")
    if report.refused:
        raise PodiumError(
            "the server refused "
            + "; ".join(f"{task} ({reason})" for task, reason in report.refused)
        )
    if not report.created and not report.already:
        raise PodiumError(f"nothing in {args.results} maps onto a Podium task")
    return 0


# --- sync ---------------------------------------------------------------------------------


def cmd_sync(args: argparse.Namespace, out: TextIO) -> int:
    root = spool_root()
    failures = 0
    seen = 0
    for spool in pending_spools(root):
        seen += 1
        with locked(spool) as ours:
            if not ours:
                out.write(f"{spool.directory.name}: in use by a running script, skipped\n")
                continue
            try:
                meta = spool.meta()
                api = Api(load_credentials(url=args.url or meta["url"], token=args.token))
                report = sync_spool(api, spool)
            except (PodiumError, OSError, ValueError, KeyError) as error:
                failures += 1
                out.write(f"{spool.directory.name}: not uploaded ({error})\n")
                continue
        out.write(
            f"run {report.uuid}: {report.accepted} point(s) uploaded"
            + (f", {report.duplicates} already there" if report.duplicates else "")
            + (f", {report.conflicts} refused (conflicting values)" if report.conflicts else "")
            + (", finished" if report.finished else "")
            + "\n"
        )
    if not seen:
        out.write(f"Nothing to upload ({root} is empty).\n")
    if failures:
        raise PodiumError(f"{failures} spooled run(s) could not be uploaded; see above")
    return 0


# --- parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="podium",
        description="Podium from the command line: results, jobs, leaderboards.",
    )
    parser.add_argument("--url", help="the server (default: PODIUM_URL or `podium login`)")
    parser.add_argument("--token", help="an API token (default: PODIUM_TOKEN or `podium login`)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = commands.add_parser("login", help=f"store a server and token ({credentials_path()})")
    login.set_defaults(handler=cmd_login)

    def run_identity(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--method", required=True, help="a method key, e.g. lora")
        sub.add_argument("--backbone", required=True, help="a backbone key")
        sub.add_argument("--config", help="hyperparameters: a JSON object, or @file.json")
        sub.add_argument("--private", action="store_true", help="visible to you only")

    submit = commands.add_parser("submit", help="record a run's scores or predictions")
    run_identity(submit)
    submit.add_argument("--task", required=True, help="benchmark/key, e.g. glue/sst2")
    submit.add_argument("--seed", type=int, default=0)
    submit.add_argument(
        "--score", action="append", default=[], metavar="METRIC=VALUE", help="repeatable"
    )
    submit.add_argument("--scores-file", help="a JSON object {metric: value}")
    submit.add_argument("--predictions", help="a predictions file, scored by Podium")
    submit.add_argument("--split", help="the split the predictions are for")
    submit.add_argument("--format", default="auto", help="predictions format (auto, jsonl, tsv)")
    submit.add_argument("--tag", action="append", default=[])
    submit.add_argument("--description", default="")
    submit.set_defaults(handler=cmd_submit)

    run = commands.add_parser("run", help="ask Podium to run a method, and follow the job")
    run_identity(run)
    run.add_argument("--task", help="benchmark/key")
    run.add_argument("--suite", help="a suite key: one run per task")
    run.add_argument("--seed", type=int, action="append", help="repeatable (default: 0)")
    run.add_argument("--no-follow", action="store_true", help="print the run ids and return")
    run.add_argument("--interval", type=float, default=3.0, help="seconds between polls")
    run.set_defaults(handler=cmd_run)

    def board_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("suite", metavar="SUITE")
        sub.add_argument("--rule", default="official", help="official, borda, kemeny, ...")
        sub.add_argument("--missing", help="policy for missing scores, e.g. pairwise")
        sub.add_argument("--personal", action="store_true", help="add your private runs")

    leaderboard = commands.add_parser("leaderboard", help="print a suite's leaderboard")
    board_options(leaderboard)
    leaderboard.set_defaults(handler=cmd_leaderboard)

    export = commands.add_parser("export", help="save a suite's leaderboard to a file")
    board_options(export)
    export.add_argument("--format", choices=sorted(EXPORT_TYPES), default="csv")
    export.add_argument("-o", "--output", required=True, help="a file, or - for stdout")
    export.set_defaults(handler=cmd_export)

    lm_eval = commands.add_parser("import-lm-eval", help="record lm-eval results as runs")
    lm_eval.add_argument("results", metavar="RESULTS_JSON")
    lm_eval.add_argument("--backbone", required=True, help="the evaluated model's backbone key")
    lm_eval.add_argument("--method", default="lm_eval", help="default: lm_eval")
    lm_eval.add_argument("--seed", type=int, help="default: lm-eval's random_seed")
    lm_eval.add_argument("--config", help="added to each run's config (JSON or @file)")
    lm_eval.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="LM_EVAL_TASK=BENCHMARK/KEY",
        help="map a further lm-eval task name onto a Podium task",
    )
    lm_eval.add_argument("--private", action="store_true")
    lm_eval.add_argument("--dry-run", action="store_true", help="show what would be submitted")
    lm_eval.set_defaults(handler=cmd_import_lm_eval)

    sync = commands.add_parser("sync", help="upload what tracked runs could not send")
    sync.set_defaults(handler=cmd_sync)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, TextIO], int] = args.handler
    try:
        return handler(args, out)
    except PodiumError as error:
        message = " ".join(str(error).split())
        print(f"podium: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("podium: interrupted", file=sys.stderr)
        return 130
