"""The execution task: take a job spec, run it through the runners, report back.

A job asking for several GPUs runs under torchrun on this worker (runners.distributed);
this task stays the only process that talks to the broker either way.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from celery import Task

from gpu_worker.app import app
from gpu_worker.reporter import BrokerReporter
from runners.distributed import execute_on_worker
from runners.spec import (
    CONTROL_CANCEL,
    CONTROL_STOP,
    TASK_EXECUTE_JOB,
    JobResult,
    JobSpec,
    SpecError,
)

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = float(os.environ.get("PODIUM_HEARTBEAT_INTERVAL_S", "10"))
CLAIM_TIMEOUT_S = float(os.environ.get("PODIUM_CLAIM_TIMEOUT_S", "30"))
WORK_DIR = Path(os.environ.get("PODIUM_WORK_DIR", "/tmp/podium-jobs"))


def _data_dir() -> Path | None:
    value = os.environ.get("PODIUM_DATA_DIR", "")
    return Path(value) if value else None


class TimeLimitedReporter(BrokerReporter):
    """Stops the job at its next step once its time limit has passed."""

    def __init__(self, *, time_limit_s: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deadline = time.monotonic() + time_limit_s
        self.time_limit_s = time_limit_s
        self.time_limit_exceeded = False

    def cancel_requested(self) -> bool:
        if time.monotonic() > self.deadline:
            self.time_limit_exceeded = True
            return True
        return super().cancel_requested()


@app.task(name=TASK_EXECUTE_JOB, bind=True)
def execute_job(self: Task[Any, Any], message: dict[str, Any]) -> str:
    try:
        spec = JobSpec.from_dict(message)
    except SpecError as error:
        # Without a valid spec there is no job to report on; the platform's reaper will
        # see no heartbeat and fail or retry the job with that reason.
        logger.error("refused job spec: %s", error)
        return "refused"
    reporter = TimeLimitedReporter(
        app=app,
        job_id=spec.job_id,
        attempt=spec.attempt,
        worker=str(self.request.hostname or "gpu-worker"),
        interval_s=HEARTBEAT_INTERVAL_S,
        time_limit_s=spec.time_limit_s,
    )
    workdir = WORK_DIR / f"job-{spec.job_id}-attempt-{spec.attempt}"
    try:
        answer = reporter.wait_for_claim(timeout_s=CLAIM_TIMEOUT_S)
        if answer == CONTROL_STOP:
            logger.info(
                "job %s attempt %s: not wanted (%s)",
                spec.job_id,
                spec.attempt,
                reporter.stop_reason,
            )
            return "skipped"
        if answer == CONTROL_CANCEL:
            reporter.send_result(
                JobResult(
                    job_id=spec.job_id,
                    attempt=spec.attempt,
                    outcome="cancelled",
                    error=reporter.cancel_reason,
                )
            )
            return "cancelled"
        reporter.start()
        result = execute_on_worker(spec, reporter=reporter, workdir=workdir, data_dir=_data_dir())
        if reporter.time_limit_exceeded and result.outcome == "cancelled":
            result = dataclasses.replace(
                result, outcome="failed", error=f"exceeded its time limit of {spec.time_limit_s} s"
            )
        if reporter.stop_reason:
            # The platform has already closed this attempt; a result would be dropped.
            logger.info(
                "job %s attempt %s stopped: %s", spec.job_id, spec.attempt, reporter.stop_reason
            )
            return "stopped"
        # A failed rank's result carries that rank's log tail; otherwise send this job's.
        log_tail = result.log_tail or "\n".join(reporter.lines)[-4000:]
        reporter.send_result(dataclasses.replace(result, log_tail=log_tail))
        return result.outcome
    finally:
        reporter.close()
        shutil.rmtree(workdir, ignore_errors=True)
