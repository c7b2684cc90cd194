"""The platform's Celery tasks: thin adapters from worker messages to tracking.jobs.

A malformed message is refused and logged, never half-applied; database errors are retried
a bounded number of times (the services are idempotent, so a retry is safe).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import OperationalError

from config.celery import app
from runners.spec import (
    TASK_RECORD_HEARTBEAT,
    TASK_RECORD_METRICS,
    TASK_RECORD_RESULT,
    Heartbeat,
    JobResult,
    MetricBatch,
    SpecError,
)
from tracking.control import control_send
from tracking.jobs import job_heartbeat, job_record_metrics, job_record_result, jobs_reap

logger = logging.getLogger(__name__)

# Database errors (e.g. a restarting PostgreSQL) are retried with backoff, a bounded number
# of times; the services are idempotent, so a retry after a partial failure is safe.
RETRY_ON = (OperationalError,)


@app.task(
    name=TASK_RECORD_HEARTBEAT,
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def record_heartbeat(message: dict[str, Any]) -> str:
    try:
        heartbeat = Heartbeat.from_dict(message)
    except SpecError as error:
        logger.error("refused heartbeat: %s", error)
        return "refused"
    action = job_heartbeat(message=heartbeat)
    if action:
        control_send(job_id=heartbeat.job_id, attempt=heartbeat.attempt, action=action)
    return action or "ok"


@app.task(
    name=TASK_RECORD_METRICS,
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def record_metrics(message: dict[str, Any]) -> int:
    try:
        batch = MetricBatch.from_dict(message)
    except SpecError as error:
        logger.error("refused metric batch: %s", error)
        return 0
    return job_record_metrics(batch=batch)


@app.task(
    name=TASK_RECORD_RESULT,
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def record_result(message: dict[str, Any]) -> str:
    try:
        result = JobResult.from_dict(message)
    except SpecError as error:
        logger.error("refused job result: %s", error)
        return "refused"
    outcome = job_record_result(result=result)
    logger.info("job %s attempt %s: %s", result.job_id, result.attempt, outcome.reason)
    return outcome.reason


@app.task(name="platform.reap_stale_jobs")
def reap_stale_jobs() -> dict[str, list[int]]:
    report = jobs_reap()
    return {"requeued": report.requeued, "failed": report.failed, "cancelled": report.cancelled}
