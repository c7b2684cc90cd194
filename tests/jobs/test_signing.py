"""Signed worker messages: whoever reaches the broker without the worker key cannot post
results, curves or heartbeats; an unsigned, forged, altered or schema-invalid message is
refused, logged with its job, and writes nothing."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from kombu.utils.json import dumps as kombu_dumps
from kombu.utils.json import loads as kombu_loads

from config.celery import app
from gpu_worker.app import worker_key_from_env
from runners.spec import (
    DEV_WORKER_KEY,
    PLATFORM_QUEUE,
    TASK_RECORD_HEARTBEAT,
    TASK_RECORD_METRICS,
    TASK_RECORD_RESULT,
    Heartbeat,
    JobResult,
    MetricBatch,
    MetricPointMessage,
    Provenance,
    SignatureError,
    SpecError,
    sign_message,
    sign_payload,
    verify_message,
)
from tests.conftest import CeleryWorker
from tests.jobs.conftest import wait_until
from tracking.models import Artifact, Job, MetricPoint, Run, RunTransition, Score
from tracking.status import RunStatus
from tracking.tasks import record_heartbeat, record_metrics, record_result

KEY = "a-test-worker-key-of-reasonable-length-0123456789"
OTHER_KEY = "somebody-else's-key-who-reached-the-broker-987654"


def a_result(job_id: int = 7, **fields: Any) -> JobResult:
    values: dict[str, Any] = {
        "job_id": job_id,
        "attempt": 1,
        "outcome": "succeeded",
        "scores": {"accuracy": 0.8125, "f1": 1 / 3},
        "system": {"wall_time_s": 12.5, "trainable_parameters": 1.0},
        "provenance": Provenance(code_version="abc", packages={"torch": "2"}, hardware={}),
        "log_tail": "épocha 1 ✓\nloss=0.25",
    }
    values.update(fields)
    return JobResult(**values)


def through_the_broker(envelope: dict[str, Any]) -> Any:
    """What the platform's task receives: the envelope after kombu's JSON round trip."""
    return kombu_loads(kombu_dumps(envelope))


# --- sign / verify -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        a_result(),
        MetricBatch(
            job_id=7,
            attempt=2,
            points=(
                MetricPointMessage(key="loss", step=1, value=0.1 + 0.2, time=1.7e9 + 0.123),
                MetricPointMessage(key="loss", step=2, value=float("nan"), time=1.7e9),
            ),
        ),
        Heartbeat(job_id=7, attempt=1, worker="gpu0@host", claim=True, examples_per_second=99.5),
    ],
    ids=["result", "metrics", "claim"],
)
def test_a_signed_message_verifies_after_the_broker_round_trip(message: Any) -> None:
    envelope = through_the_broker(sign_message(message, key=KEY))
    verified = verify_message(type(message), envelope, key=KEY)
    assert json.dumps(verified.to_dict(), sort_keys=True) == json.dumps(
        message.to_dict(), sort_keys=True
    )


def test_a_message_signed_with_another_key_is_refused() -> None:
    forged = sign_message(a_result(), key=OTHER_KEY)
    with pytest.raises(SignatureError, match="job_result: signed with another key"):
        verify_message(JobResult, through_the_broker(forged), key=KEY)


def test_an_unsigned_message_is_refused() -> None:
    with pytest.raises(SignatureError, match="job_result: unsigned message"):
        verify_message(JobResult, a_result().to_dict(), key=KEY)
    with pytest.raises(SignatureError, match="unsigned message"):
        verify_message(JobResult, ["not", "an", "object"], key=KEY)


def test_a_message_altered_after_signing_is_refused() -> None:
    envelope = through_the_broker(sign_message(a_result(), key=KEY))
    envelope["message"]["scores"]["accuracy"] = 0.99
    with pytest.raises(SignatureError, match="the signature does not match"):
        verify_message(JobResult, envelope, key=KEY)


def test_a_signature_copied_onto_another_message_is_refused() -> None:
    genuine = sign_message(a_result(), key=KEY)
    other = dict(genuine, message=a_result(scores={"accuracy": 1.0}).to_dict())
    with pytest.raises(SignatureError, match="does not match"):
        verify_message(JobResult, other, key=KEY)


def test_a_signed_heartbeat_cannot_pass_for_a_result() -> None:
    heartbeat = sign_message(Heartbeat(job_id=7, attempt=1, worker="w"), key=KEY)
    with pytest.raises(SignatureError, match="the envelope holds a 'heartbeat' message"):
        verify_message(JobResult, heartbeat, key=KEY)
    heartbeat["kind"] = "job_result"  # and relabelling it breaks the signature
    with pytest.raises(SignatureError, match="does not match"):
        verify_message(JobResult, heartbeat, key=KEY)


def test_a_signed_message_must_still_match_its_schema() -> None:
    envelope = sign_payload(
        kind="job_result",
        payload={"schema_version": 1, "job_id": 7, "attempt": 1, "outcome": "won"},
        key=KEY,
    )
    with pytest.raises(SpecError, match=r"job_result\.outcome: 'won' is not one of"):
        verify_message(JobResult, envelope, key=KEY)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"signature": 12}, "malformed envelope (key_id, signature)"),
        ({"signature": "é" * 64}, "the signature does not match"),  # not hex, not even ASCII
        ({"message": "job 7 succeeded"}, "malformed envelope (message is not an object)"),
        ({"extra": 1}, "malformed envelope (fields extra)"),
    ],
)
def test_malformed_envelopes_are_refused(change: dict[str, Any], says: str) -> None:
    envelope = sign_message(a_result(), key=KEY) | change
    with pytest.raises(SignatureError, match=re.escape(says)):
        verify_message(JobResult, envelope, key=KEY)


def test_signing_needs_a_key() -> None:
    with pytest.raises(SignatureError, match="no worker key"):
        sign_message(a_result(), key="")


def test_the_worker_key_comes_from_the_environment() -> None:
    assert worker_key_from_env({}) == DEV_WORKER_KEY
    assert worker_key_from_env({"PODIUM_ENV": "test"}) == DEV_WORKER_KEY
    assert worker_key_from_env({"PODIUM_WORKER_KEY": KEY, "PODIUM_ENV": "production"}) == KEY
    for environ in (
        {"PODIUM_ENV": "production"},
        {"PODIUM_ENV": "production", "PODIUM_WORKER_KEY": DEV_WORKER_KEY},
    ):
        with pytest.raises(
            RuntimeError, match="PODIUM_WORKER_KEY must be set when PODIUM_ENV=production"
        ):
            worker_key_from_env(environ)


# --- The platform's tasks ----------------------------------------------------------------


def snapshot(run: Run) -> dict[str, Any]:
    """Everything a worker message could write for a run."""
    job = Job.objects.get(run=run)
    run.refresh_from_db()
    return {
        "status": run.status,
        "system": run.system,
        "provenance": run.provenance,
        "transitions": RunTransition.objects.filter(run=run).count(),
        "scores": Score.objects.filter(run=run).count(),
        "points": MetricPoint.objects.filter(run=run).count(),
        "artifacts": Artifact.objects.filter(run=run).count(),
        "job": (job.worker, job.heartbeat_at, job.progress, job.log_tail, job.error),
    }


def bad_messages(job_id: int) -> list[tuple[str, Any, dict[str, Any]]]:
    """(task name, what it is, the message) for each way a message must be refused."""
    result = a_result(job_id, scores={"accuracy": 0.99})
    tampered = sign_message(result, key=DEV_WORKER_KEY)
    tampered["message"]["scores"]["accuracy"] = 1.0
    batch = MetricBatch(
        job_id=job_id,
        attempt=1,
        points=(MetricPointMessage(key="loss", step=1, value=0.5, time=1.7e9),),
    )
    return [
        (TASK_RECORD_RESULT, "forged", sign_message(result, key=OTHER_KEY)),
        (TASK_RECORD_RESULT, "unsigned", result.to_dict()),
        (TASK_RECORD_RESULT, "tampered", tampered),
        (
            TASK_RECORD_RESULT,
            "schema-invalid",
            sign_payload(
                kind="job_result",
                payload={**result.to_dict(), "scores": {"accuracy": "high"}},
                key=DEV_WORKER_KEY,
            ),
        ),
        (TASK_RECORD_METRICS, "forged", sign_message(batch, key=OTHER_KEY)),
        (TASK_RECORD_METRICS, "unsigned", batch.to_dict()),
        (
            TASK_RECORD_HEARTBEAT,
            "forged",
            sign_message(
                Heartbeat(job_id=job_id, attempt=1, worker="intruder", step=9, log_tail="pwned"),
                key=OTHER_KEY,
            ),
        ),
    ]


TASKS = {
    TASK_RECORD_RESULT: record_result,
    TASK_RECORD_METRICS: record_metrics,
    TASK_RECORD_HEARTBEAT: record_heartbeat,
}


@pytest.mark.django_db(transaction=True)
def test_the_tasks_refuse_and_log_bad_messages_and_write_nothing(
    request_stepper: Callable[..., Run], caplog: pytest.LogCaptureFixture
) -> None:
    run = request_stepper({"steps": 1})
    job = Job.objects.get(run=run)
    claim = sign_message(
        Heartbeat(job_id=job.pk, attempt=1, worker="gpu0", claim=True), key=DEV_WORKER_KEY
    )
    assert record_heartbeat.run(through_the_broker(claim)) == "go"
    before = snapshot(run)
    assert before["status"] == RunStatus.RUNNING

    for name, what, message in bad_messages(job.pk):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="tracking.tasks"):
            assert TASKS[name].run(through_the_broker(message)) in {"refused", 0}, what
        (record,) = caplog.records
        assert record.levelno == logging.WARNING
        assert f"for job {job.pk}: " in record.getMessage(), what
        assert snapshot(run) == before, what

    good = sign_message(a_result(job.pk, scores={"accuracy": 0.5}), key=DEV_WORKER_KEY)
    assert record_result.run(through_the_broker(good)) == "succeeded"
    assert Score.objects.get(run=run).value == 0.5


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_bad_messages_through_the_broker_are_refused_by_the_platform_worker(
    platform_worker: CeleryWorker, request_stepper: Callable[..., Run]
) -> None:
    """Sent as an intruder who reached Redis would: to the real platform worker process."""
    run = request_stepper({"steps": 1})
    job = Job.objects.get(run=run)

    def send(name: str, message: Any) -> None:
        app.send_task(name, args=[message], queue=PLATFORM_QUEUE)

    def refusals() -> int:
        return platform_worker.output().count(f"for job {job.pk}: ")

    # A forged claim does not start the run.
    send(
        TASK_RECORD_HEARTBEAT,
        sign_message(
            Heartbeat(job_id=job.pk, attempt=1, worker="intruder", claim=True), key=OTHER_KEY
        ),
    )
    wait_until(
        lambda: refusals() == 1,
        what=lambda: f"the forged claim refused; log:\n{platform_worker.output()}",
    )
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED

    # The genuine claim does.
    send(
        TASK_RECORD_HEARTBEAT,
        sign_message(
            Heartbeat(job_id=job.pk, attempt=1, worker="gpu0", claim=True), key=DEV_WORKER_KEY
        ),
    )
    wait_until(lambda: Run.objects.get(pk=run.pk).status == RunStatus.RUNNING, what="the claim")
    before = snapshot(run)

    messages = bad_messages(job.pk)
    for name, _, message in messages:
        send(name, message)
    wait_until(
        lambda: refusals() == 1 + len(messages),
        what=lambda: f"{len(messages)} refusals; log:\n{platform_worker.output()}",
    )
    assert snapshot(run) == before
    log = platform_worker.output()
    assert "WARNING" in log
    assert "signed with another key" in log
    assert "unsigned message" in log
    assert "the signature does not match" in log
    assert "job_result.scores.accuracy: expected a number" in log

    # The same worker still records the genuine result.
    send(
        TASK_RECORD_RESULT,
        sign_message(a_result(job.pk, scores={"accuracy": 0.5}), key=DEV_WORKER_KEY),
    )
    wait_until(
        lambda: Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED, what="the genuine result"
    )
    assert list(Score.objects.filter(run=run).values_list("value", flat=True)) == [0.5]
