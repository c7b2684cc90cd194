"""Run one job spec end to end: resolve, validate, train/evaluate, score, describe.

Scores are always computed here from the method's predictions with the catalog's own
metric code (leaderboard.predictions), never reported by the method itself, so an
executed run is scored exactly as a re-scored submission would be.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import resource
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from leaderboard.catalog import TaskDefinition, get_task
from leaderboard.data import row_id
from leaderboard.predictions import ParsedPrediction, per_class_scores, score_predictions
from runners import distributed, provenance
from runners.artifact_store import ArtifactStore, ArtifactStoreError
from runners.context import JobContext
from runners.registry import MethodInfo, get_method
from runners.reporting import JobCancelled, Reporter
from runners.spec import InlineArtifact, JobResult, JobSpec

LOG_TAIL_CHARS = 4000


class JobSpecInvalid(ValueError):
    """The spec cannot run here (unknown method, task version, bad config)."""


def resolve_config(method: MethodInfo, config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with the method's defaults filled in, validated against its schema."""
    merged = method.defaults() | dict(config)
    try:
        jsonschema.validate(merged, method.schema)
    except jsonschema.ValidationError as error:
        where = ".".join(str(p) for p in error.absolute_path) or "config"
        raise JobSpecInvalid(
            f"config.{where}: {error.message}" if where != "config" else f"config: {error.message}"
        ) from None
    return merged


def resolve_task(spec: JobSpec) -> TaskDefinition:
    try:
        task = get_task(benchmark=spec.task.benchmark, key=spec.task.key)
    except KeyError as error:
        raise JobSpecInvalid(str(error)) from None
    if task.version != spec.task.version:
        raise JobSpecInvalid(
            f"task {task.qualified_key} is at version {task.version} here, "
            f"the job asks for version {spec.task.version}; update the worker's code"
        )
    return task


def _predictions_artifact(
    task: TaskDefinition, split: str, rows: list[dict[str, Any]], predictions: Any
) -> InlineArtifact:
    lines = [
        json.dumps({"idx": row_id(task, row, i), "prediction": pred}, ensure_ascii=False)
        for i, (row, pred) in enumerate(zip(rows, predictions, strict=True))
    ]
    content = "\n".join(lines) + "\n"
    return InlineArtifact(
        name=f"predictions-{split}.jsonl",
        kind="predictions",
        content=content,
        sha256=hashlib.sha256(content.encode("utf-8")).hexdigest(),
    )


def _peak_host_memory_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def execute(
    spec: JobSpec,
    *,
    reporter: Reporter,
    workdir: Path,
    data_dir: Path | None = None,
    log_lines: list[str] | None = None,
    artifact_store: ArtifactStore | None = None,
) -> JobResult:
    """Run `spec`; every failure becomes a failed JobResult with the reason, never a raise."""
    started = time.perf_counter()

    def tail() -> str:
        return "\n".join(log_lines or [])[-LOG_TAIL_CHARS:]

    def failed(outcome: str, error: str) -> JobResult:
        return JobResult(
            job_id=spec.job_id,
            attempt=spec.attempt,
            outcome=outcome,
            error=error,
            log_tail=tail(),
            provenance=provenance.collect(),
            system={"wall_time_s": time.perf_counter() - started},
        )

    try:
        method = get_method(spec.method)
        task = resolve_task(spec)
        if task.task_type not in method.task_types:
            raise JobSpecInvalid(
                f"method {method.key} does not handle {task.task_type} tasks ({task.qualified_key})"
            )
        config = resolve_config(method, spec.config)
        workdir.mkdir(parents=True, exist_ok=True)
        context = JobContext(
            spec=spec,
            task=task,
            config=config,
            reporter=reporter,
            workdir=workdir,
            data_dir=data_dir,
        )
        reporter.log(f"{method.key} on {task.qualified_key} v{task.version}, seed {spec.seed}")
        output = method.run(context)
        if not distributed.is_main_process():
            # The other ranks of a data-parallel job only trained; rank 0 alone predicts,
            # scores, stores artifacts and reports the result.
            return JobResult(
                job_id=spec.job_id,
                attempt=spec.attempt,
                outcome="succeeded",
                system={k: float(v) for k, v in output.system.items()},
            )
        rows = context.rows(context.eval_split)
        if len(output.predictions) != len(rows):
            raise RuntimeError(
                f"method {method.key} returned {len(output.predictions)} predictions "
                f"for {len(rows)} {context.eval_split} rows"
            )
        parsed = [
            ParsedPrediction(line=i + 1, id=row_id(task, row, i), value=pred)
            for i, (row, pred) in enumerate(zip(rows, output.predictions, strict=True))
        ]
        scored = score_predictions(
            task=task, rows=rows, predictions=parsed, split=context.eval_split
        )
        per_class = per_class_scores(
            task=task, rows=rows, predictions=parsed, split=context.eval_split
        )
    except JobCancelled as cancelled:
        return failed("cancelled", str(cancelled))
    except Exception as error:  # the worker reports any failure; it must not crash
        reporter.log(traceback.format_exc(limit=8))
        return failed("failed", f"{type(error).__name__}: {error}")

    system = {
        "wall_time_s": time.perf_counter() - started,
        "peak_host_memory_mb": _peak_host_memory_mb(),
        **{k: float(v) for k, v in output.system.items()},
    }
    if output.trainable_parameters is not None:
        system["trainable_parameters"] = float(output.trainable_parameters)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        system["peak_accelerator_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    refs = []
    for name, path in output.files.items():
        if artifact_store is None:
            reporter.log(
                f"no artifact store configured (PODIUM_ARTIFACT_DIR or PODIUM_ARTIFACT_URL): "
                f"{name} not kept"
            )
            continue
        try:
            refs.append(
                artifact_store.put(
                    run_uuid=spec.run_uuid, name=name, kind="checkpoint", source=path
                )
            )
        except (OSError, ArtifactStoreError) as error:
            # A full or failing store fails the job with the reason, before anything is sent,
            # and takes back what it already stored: no orphan checkpoints.
            for stored in refs:
                with contextlib.suppress(OSError, ArtifactStoreError):
                    artifact_store.delete(stored.uri)
            return failed("failed", f"artifact store: {name}: {error}")
    return JobResult(
        job_id=spec.job_id,
        attempt=spec.attempt,
        outcome="succeeded",
        scores=dict(scored),
        extra_scores={k: float(v) for k, v in output.extra_scores.items()} | per_class,
        system=system,
        provenance=provenance.collect(),
        artifacts=tuple(refs),
        inline_artifacts=(
            _predictions_artifact(task, context.eval_split, rows, output.predictions),
        ),
        log_tail=tail(),
    )
