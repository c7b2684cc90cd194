"""The platform's Celery tasks: thin adapters from worker messages to tracking.jobs.

A message is checked before anything else: one that is unsigned, signed with another key,
altered after signing, or does not match its schema is refused and logged with its job, and
writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import OperationalError

from config.celery import app
from runners.spec import (
    TASK_RECORD_HEARTBEAT,
    TASK_RECORD_METRICS,
    TASK_RECORD_RESULT,
    Heartbeat,
    JobResult,
    MetricBatch,
    SignatureError,
    SpecError,
    envelope_job_id,
    verify_message,
)
from tracking.control import control_send
from tracking.jobs import job_heartbeat, job_record_metrics, job_record_result, jobs_reap
from tracking.tracked import tracked_runs_reap

logger = logging.getLogger(__name__)

_M = TypeVar("_M", Heartbeat, MetricBatch, JobResult)


def worker_message_task(name: str) -> Callable[[Callable[..., Any]], Any]:
    """A platform task for one kind of worker message.

    Database errors (e.g. a restarting PostgreSQL) are retried with backoff, a bounded
    number of times; the services are idempotent, so a retry after a partial failure is safe.
    """
    return app.task(
        name=name,
        autoretry_for=(OperationalError,),
        retry_backoff=True,
        retry_backoff_max=60,
        max_retries=10,
    )


def parse(kind: type[_M], envelope: object) -> _M | None:
    """The verified message as its dataclass, or None (logged) when its signature or its
    schema does not check out."""
    try:
        return verify_message(kind, envelope, key=settings.PODIUM_WORKER_KEY)
    except (SignatureError, SpecError) as error:
        job_id = envelope_job_id(envelope)
        logger.warning(
            "refused %s for job %s: %s", kind.KIND, "?" if job_id is None else job_id, error
        )
        return None


@worker_message_task(TASK_RECORD_HEARTBEAT)
def record_heartbeat(message: dict[str, Any]) -> str:
    heartbeat = parse(Heartbeat, message)
    if heartbeat is None:
        return "refused"
    action = job_heartbeat(message=heartbeat)
    if action:
        control_send(job_id=heartbeat.job_id, attempt=heartbeat.attempt, action=action)
    return action or "ok"


@worker_message_task(TASK_RECORD_METRICS)
def record_metrics(message: dict[str, Any]) -> int:
    batch = parse(MetricBatch, message)
    return 0 if batch is None else job_record_metrics(batch=batch)


@worker_message_task(TASK_RECORD_RESULT)
def record_result(message: dict[str, Any]) -> str:
    result = parse(JobResult, message)
    if result is None:
        return "refused"
    outcome = job_record_result(result=result)
    logger.info("job %s attempt %s: %s", result.job_id, result.attempt, outcome.reason)
    return outcome.reason


@app.task(name="platform.reap_stale_jobs")
def reap_stale_jobs() -> dict[str, list[int]]:
    report = jobs_reap()
    silent_tracked = tracked_runs_reap()
    return {
        "requeued": report.requeued,
        "failed": report.failed,
        "cancelled": report.cancelled,
        "silent_tracked_runs": silent_tracked,
    }
