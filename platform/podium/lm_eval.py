"""Import lm-evaluation-harness results (its 0.4 results JSON) as Podium runs.

Each lm-eval task that evaluates a Podium task becomes one external run with
self-reported scores: lm-eval's metric names are mapped onto the task's metrics with the
one mapping Podium's own lm-eval runner uses (leaderboard.lm_eval_names). Tasks Podium
does not have, or whose lm-eval metrics cannot stand for Podium's, are listed as skipped
with the reason. Re-importing the same file is harmless: each run is submitted with an
Idempotency-Key derived from the file and the run, so the server returns the first run.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leaderboard.lm_eval_names import LM_EVAL_TASKS, LmEvalTask, lm_eval_task_by_name
from podium.errors import ApiError, PodiumError
from podium.http import Api

RUNS_PATH = "/api/v1/runs/"


@dataclass(frozen=True, kw_only=True)
class LmEvalSubmission:
    lm_eval_task: str
    task: str  # Podium "benchmark/key"
    scores: dict[str, float]
    config: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Skipped:
    lm_eval_task: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class LmEvalPlan:
    submissions: list[LmEvalSubmission]
    skipped: list[Skipped]
    seed: int
    description: str


def _metric_values(entry: Mapping[str, Any]) -> dict[str, float]:
    """lm-eval's "metric,filter" values: the "none" filter's where there are several, else
    the first listed; stderr entries and non-numbers are left out."""
    chosen: dict[str, tuple[bool, float]] = {}
    for name, value in entry.items():
        metric, _, filter_name = name.partition(",")
        if metric.endswith("_stderr") or metric == "alias":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        preferred = filter_name in ("", "none")
        if metric not in chosen or (preferred and not chosen[metric][0]):
            chosen[metric] = (preferred, float(value))
    return {metric: value for metric, (_, value) in chosen.items()}


def plan_lm_eval_import(
    results: Mapping[str, Any],
    *,
    seed: int | None = None,
    config: Mapping[str, Any] | None = None,
    task_map: Mapping[str, str] | None = None,
) -> LmEvalPlan:
    """What an lm-eval results document would submit, without submitting anything.

    `task_map` maps further lm-eval task names to Podium tasks ("my_sst2": "glue/sst2");
    they use the metric mapping of the Podium task's own lm-eval task.
    """
    per_task = results.get("results")
    if not isinstance(per_task, Mapping) or not per_task:
        raise PodiumError("not an lm-eval results file: it has no 'results' object.")
    run_config = results.get("config") if isinstance(results.get("config"), Mapping) else {}
    assert isinstance(run_config, Mapping)
    limit = run_config.get("limit")
    if limit not in (None, 0):
        raise PodiumError(
            f"these results were computed on a subset (lm-eval --limit {limit}); Podium "
            "records scores on whole evaluation splits only."
        )
    chosen_seed = seed if seed is not None else int(run_config.get("random_seed") or 0)
    n_shot = results.get("n-shot") if isinstance(results.get("n-shot"), Mapping) else {}
    assert isinstance(n_shot, Mapping)
    extra = dict(task_map or {})
    submissions: list[LmEvalSubmission] = []
    skipped: list[Skipped] = []
    for name, entry in per_task.items():
        if name in extra:
            spec = LM_EVAL_TASKS.get(extra[name])
            if spec is None:
                reason = f"{extra[name]} is not a Podium task lm-eval evaluates"
                skipped.append(Skipped(lm_eval_task=name, reason=reason))
                continue
            found: tuple[str, LmEvalTask] | None = (extra[name], spec)
        else:
            found = lm_eval_task_by_name(name)
        if found is None:
            skipped.append(Skipped(lm_eval_task=name, reason="no Podium task for it"))
            continue
        podium_task, spec = found
        if spec.unmapped_reason:
            skipped.append(Skipped(lm_eval_task=name, reason=spec.unmapped_reason))
            continue
        if not isinstance(entry, Mapping):
            skipped.append(Skipped(lm_eval_task=name, reason="its results are not an object"))
            continue
        values = _metric_values(entry)
        scores: dict[str, float] = {}
        for lm_metric, podium_metric in spec.metrics.items():
            if podium_metric not in scores and lm_metric in values:
                scores[podium_metric] = values[lm_metric]
        wanted = sorted(set(spec.metrics.values()))
        missing = [m for m in wanted if m not in scores]
        if missing:
            skipped.append(
                Skipped(
                    lm_eval_task=name,
                    reason=f"no value for {', '.join(missing)} "
                    f"(lm-eval gives {', '.join(sorted(values)) or 'none'})",
                )
            )
            continue
        bad = [m for m, v in scores.items() if not math.isfinite(v)]
        if bad:
            skipped.append(Skipped(lm_eval_task=name, reason=f"{', '.join(bad)} not finite"))
            continue
        task_config: dict[str, Any] = {}
        if name in n_shot and isinstance(n_shot[name], int):
            task_config["num_fewshot"] = n_shot[name]
        task_config.update(config or {})
        submissions.append(
            LmEvalSubmission(lm_eval_task=name, task=podium_task, scores=scores, config=task_config)
        )
    model = str(results.get("model_name") or run_config.get("model") or "")
    args = str(run_config.get("model_args") or "")
    version = str(results.get("lm_eval_version") or "0.4")
    description = f"Imported from lm-eval {version} results"
    if model:
        description += f" of {model}" + (f" ({args})" if args else "")
    if results.get("date"):
        description += f", evaluated {results['date']}"
    return LmEvalPlan(
        submissions=submissions, skipped=skipped, seed=chosen_seed, description=description + "."
    )


@dataclass
class ImportReport:
    created: list[tuple[str, str]] = field(default_factory=list)  # (task, run uuid)
    already: list[tuple[str, str]] = field(default_factory=list)  # imported before
    refused: list[tuple[str, str]] = field(default_factory=list)  # (task, server's reason)
    skipped: list[Skipped] = field(default_factory=list)


def read_results(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except OSError as error:
        raise PodiumError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise PodiumError(f"{path} is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise PodiumError(f"{path} is not an lm-eval results file (not a JSON object).")
    return data, raw


def import_lm_eval(
    api: Api,
    path: Path,
    *,
    backbone: str,
    method: str = "lm_eval",
    seed: int | None = None,
    config: Mapping[str, Any] | None = None,
    task_map: Mapping[str, str] | None = None,
    visibility: str = "public",
    tags: tuple[str, ...] = ("lm-eval",),
) -> ImportReport:
    """Submit each mapped task of an lm-eval results file as an external run."""
    results, raw = read_results(path)
    plan = plan_lm_eval_import(results, seed=seed, config=config, task_map=task_map)
    report = ImportReport(skipped=list(plan.skipped))
    digest = hashlib.sha256(raw).hexdigest()
    for item in plan.submissions:
        body = {
            "task": item.task,
            "method": method,
            "backbone": backbone,
            "config": item.config,
            "seed": plan.seed,
            "scores": item.scores,
            "tags": list(tags),
            "description": plan.description,
            "visibility": visibility,
        }
        identity = json.dumps([digest, body], sort_keys=True).encode("utf-8")
        key = "lm-eval-" + hashlib.sha256(identity).hexdigest()[:48]
        try:
            response = api.call("POST", RUNS_PATH, json_body=body, headers={"Idempotency-Key": key})
        except ApiError as error:
            report.refused.append((item.task, error.summary()))
            continue
        uuid = str(response.body.get("uuid", "")) if isinstance(response.body, dict) else ""
        (report.already if response.status == 200 else report.created).append((item.task, uuid))
    return report
