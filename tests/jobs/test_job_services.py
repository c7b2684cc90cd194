"""Job services without workers: fencing, idempotency, reaping, limits, validation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings

from runners.spec import (
    CONTROL_CANCEL,
    CONTROL_GO,
    CONTROL_STOP,
    Heartbeat,
    JobResult,
    JobSpec,
    MetricBatch,
    MetricPointMessage,
)
from tests.factories import (
    BackboneFactory,
    MethodFactory,
    SuiteTaskFactory,
    TaskFactory,
    UserFactory,
)
from tracking import jobs
from tracking.jobs import (
    job_heartbeat,
    job_record_metrics,
    job_record_result,
    jobs_reap,
    run_cancel,
    runs_request,
)
from tracking.models import Job, MetricPoint, Run, Score
from tracking.services import RunInputError
from tracking.status import RunStatus
from tracking.tasks import record_heartbeat, record_metrics, record_result

pytestmark = pytest.mark.django_db

Sent = list[tuple[str, Any]]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    """Capture what would go to the broker: job specs and control messages."""
    captured: Sent = []
    monkeypatch.setattr(jobs, "_send_spec", lambda spec: captured.append(("spec", spec)))
    monkeypatch.setattr(jobs, "control_send", lambda **kwargs: captured.append(("control", kwargs)))
    return captured


@pytest.fixture
def request_job(
    sent: Sent, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., Run]:
    def make(**kwargs: Any) -> Run:
        defaults: dict[str, Any] = {
            "owner": UserFactory.create(username="alice"),
            "method": MethodFactory.create(executable=True),
            "backbone": BackboneFactory.create(),
            "task": TaskFactory.create(),
            "config": {},
            "seeds": [0],
        }
        defaults.update(kwargs)
        with django_capture_on_commit_callbacks(execute=True):
            runs = runs_request(**defaults)
        return runs[0]

    return make


def beat(run: Run, *, attempt: int | None = None, claim: bool = False, step: int = 0) -> str:
    job = Job.objects.get(run=run)
    return job_heartbeat(
        message=Heartbeat(
            job_id=job.pk, attempt=attempt or job.attempts, worker="w1", claim=claim, step=step
        )
    )


def result(run: Run, *, attempt: int | None = None, **kwargs: Any) -> JobResult:
    job = Job.objects.get(run=run)
    fields: dict[str, Any] = {"outcome": "succeeded", "scores": {"accuracy": 0.75}}
    fields.update(kwargs)
    return JobResult(job_id=job.pk, attempt=attempt or job.attempts, **fields)


def test_request_dispatches_a_spec_describing_the_run(
    request_job: Callable[..., Run], sent: Sent
) -> None:
    run = request_job(config={"lr": 0.1}, seeds=[5])
    ((kind, spec),) = sent
    assert kind == "spec"
    assert isinstance(spec, JobSpec)
    assert (spec.attempt, spec.seed, spec.config, spec.method) == (
        1,
        5,
        {"lr": 0.1},
        run.method.key,
    )
    assert spec.task.key == run.task.key
    assert spec.task.version == run.task.version
    assert JobSpec.from_dict(Run.objects.get(pk=run.pk).spec) == spec


def test_claim_starts_the_run_and_is_answered(request_job: Callable[..., Run]) -> None:
    run = request_job()
    assert beat(run, claim=True) == CONTROL_GO
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert Job.objects.get(run=run).worker == "w1"
    assert beat(run, step=3) == ""


def test_a_result_is_applied_once(request_job: Callable[..., Run]) -> None:
    run = request_job()
    beat(run, claim=True)
    first = job_record_result(result=result(run))
    again = job_record_result(result=result(run, scores={"accuracy": 0.1}))
    assert first.applied
    assert not again.applied
    assert list(Score.objects.filter(run=run).values_list("value", flat=True)) == [0.75]
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


def test_messages_of_a_stale_attempt_are_fenced(request_job: Callable[..., Run]) -> None:
    run = request_job()
    Job.objects.filter(run=run).update(attempts=2)
    assert beat(run, attempt=1, claim=True) == CONTROL_STOP
    batch = MetricBatch(
        job_id=Job.objects.get(run=run).pk,
        attempt=1,
        points=(MetricPointMessage(key="loss", step=1, value=1.0, time=0.0),),
    )
    assert job_record_metrics(batch=batch) == 0
    outcome = job_record_result(result=result(run, attempt=1))
    assert not outcome.applied
    assert "stale attempt" in outcome.reason
    assert not Score.objects.filter(run=run).exists()
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


def test_a_redelivered_metric_batch_adds_nothing(request_job: Callable[..., Run]) -> None:
    run = request_job()
    beat(run, claim=True)
    job = Job.objects.get(run=run)
    batch = MetricBatch(
        job_id=job.pk,
        attempt=1,
        points=tuple(
            MetricPointMessage(key="loss", step=s, value=1 / s, time=1.7e9) for s in (1, 2, 3)
        ),
    )
    assert job_record_metrics(batch=batch) == 3
    job_record_metrics(batch=batch)
    assert MetricPoint.objects.filter(run=run).count() == 3


def test_a_result_without_the_tasks_metrics_fails_the_run(request_job: Callable[..., Run]) -> None:
    run = request_job()
    beat(run, claim=True)
    job_record_result(result=result(run, scores={"f1": 0.5}))
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "lacks the task's metrics accuracy" in run.status_reason


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (record_result, {"schema_version": 1, "job_id": 1}),
        (record_result, {"schema_version": 99, "job_id": 1, "attempt": 1, "outcome": "succeeded"}),
        (record_result, {"schema_version": 1, "job_id": 1, "attempt": 1, "outcome": "won"}),
        (record_heartbeat, {"schema_version": 1, "job_id": "1", "attempt": 1, "worker": "w"}),
        (record_metrics, {"schema_version": 1, "job_id": 1, "attempt": 1, "points": [{"key": 1}]}),
        (record_result, ["not", "an", "object"]),
    ],
)
def test_malformed_messages_are_refused_and_change_nothing(
    request_job: Callable[..., Run], task: Any, message: Any
) -> None:
    run = request_job()
    assert task.run(message) in {"refused", 0}
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED
    assert not Score.objects.exists()
    assert not MetricPoint.objects.exists()


def test_cancelling_a_running_job_asks_its_worker_to_stop(
    request_job: Callable[..., Run], sent: Sent, django_capture_on_commit_callbacks: Any
) -> None:
    run = request_job()
    beat(run, claim=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert run_cancel(run_id=run.pk).status == RunStatus.CANCELLING
    assert sent[-1] == (
        "control",
        {
            "job_id": Job.objects.get(run=run).pk,
            "attempt": 1,
            "action": CONTROL_CANCEL,
            "reason": "cancelled by its owner",
        },
    )
    assert beat(run, step=2) == CONTROL_CANCEL
    job_record_result(result=result(run, outcome="cancelled"))
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    assert not Score.objects.filter(run=run).exists()


def test_a_finished_run_cannot_be_cancelled(request_job: Callable[..., Run]) -> None:
    from tracking.status import InvalidTransition

    run = request_job()
    beat(run, claim=True)
    job_record_result(result=result(run))
    with pytest.raises(InvalidTransition, match="succeeded is final"):
        run_cancel(run_id=run.pk)


def later(seconds: float) -> Any:
    return timezone.now() + timedelta(seconds=seconds)


def test_reaper_fails_a_stalled_job_with_the_reason(
    request_job: Callable[..., Run], sent: Sent, django_capture_on_commit_callbacks: Any
) -> None:
    run = request_job()
    beat(run, claim=True, step=4)
    job = Job.objects.get(run=run)
    Job.objects.filter(pk=job.pk).update(stall_limit_s=60, heartbeat_at=later(61))
    with django_capture_on_commit_callbacks(execute=True):
        report = jobs_reap(now=later(61))
    assert report.failed == [job.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.status_reason == "no progress for 60 s (step 4)"
    assert sent[-1][1]["action"] == CONTROL_STOP


def test_reaper_stops_a_job_over_its_time_limit(request_job: Callable[..., Run]) -> None:
    run = request_job()
    beat(run, claim=True, step=1)
    job = Job.objects.get(run=run)
    Job.objects.filter(pk=job.pk).update(
        time_limit_s=100, heartbeat_at=later(101), progress_at=later(101)
    )
    jobs_reap(now=later(101))
    run.refresh_from_db()
    assert (run.status, run.status_reason) == (
        RunStatus.FAILED,
        "exceeded its time limit of 100 s",
    )


def test_reaper_leaves_healthy_jobs_alone(request_job: Callable[..., Run]) -> None:
    run = request_job()
    beat(run, claim=True, step=1)
    assert jobs_reap(now=later(5)) == jobs.ReapReport()
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING


def test_jobs_beyond_the_owners_limit_wait_for_a_slot(
    request_job: Callable[..., Run],
    sent: Sent,
    settings: Settings,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.PODIUM_MAX_ACTIVE_JOBS_PER_USER = 2
    run = request_job(seeds=[1, 2, 3])
    runs = list(Run.objects.filter(owner=run.owner).order_by("seed"))
    assert [spec.seed for _, spec in sent] == [1, 2]
    assert Job.objects.get(run=runs[2]).dispatched_at is None
    beat(runs[0], claim=True)
    with django_capture_on_commit_callbacks(execute=True):
        job_record_result(result=result(runs[0]))
    assert [spec.seed for kind, spec in sent if kind == "spec"] == [1, 2, 3]


def test_a_suite_request_makes_one_run_per_task_and_seed(request_job: Callable[..., Run]) -> None:
    item = SuiteTaskFactory.create()
    SuiteTaskFactory.create(suite_version=item.suite_version, task=TaskFactory.create())
    run = request_job(task=None, suite_version=item.suite_version, seeds=[1, 2, 2])
    made = Run.objects.filter(owner=run.owner)
    assert made.count() == 4
    assert set(made.values_list("seed", flat=True)) == {1, 2}
    assert len(set(made.values_list("config_hash", flat=True))) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seeds": []}, "give at least one seed"),
        ({"config": {"seed": 3}}, "must not contain 'seed'"),
        ({"config": {"lr": "fast"}}, "config.lr: 'fast' is not of type 'number'"),
        ({"method": "external"}, "only records external results"),
        ({"task": None}, "exactly one of task or suite_version"),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_created(
    request_job: Callable[..., Run], kwargs: dict[str, Any], message: str
) -> None:
    if kwargs.get("method") == "external":
        kwargs["method"] = MethodFactory.create(executable=False)
    schema = {"type": "object", "properties": {"lr": {"type": "number"}}}
    kwargs.setdefault("method", MethodFactory.create(hyperparameter_schema=schema))
    with pytest.raises(RunInputError, match=message):
        request_job(**kwargs)
    assert not Run.objects.exists()
    assert not Job.objects.exists()


def test_queue_page_shows_position_worker_heartbeat_and_failures(
    request_job: Callable[..., Run],
    client: Any,
    settings: Settings,
    django_assert_max_num_queries: Any,
) -> None:
    settings.PODIUM_MAX_ACTIVE_JOBS_PER_USER = 3
    first = request_job(seeds=[1, 2, 3, 4])
    runs = list(Run.objects.filter(owner=first.owner).order_by("seed"))
    beat(runs[0], claim=True, step=7)
    Job.objects.filter(run=runs[0]).update(
        progress={"step": 7, "total_steps": 50, "examples_per_second": 12.5}
    )
    beat(runs[1], claim=True)
    job_record_result(result=result(runs[1], outcome="failed", error="CUDA out of memory"))

    from tracking.selectors import job_queue

    queue = job_queue()
    assert [(q.position, q.job.run.seed) for q in queue.queued] == [(1, 3), (2, 4)]
    assert queue.queued[1].job.dispatched_at is None  # over the owner's limit of 3
    assert queue.queued[0].estimated_start is None  # nothing timed yet
    with django_assert_max_num_queries(10):
        page = client.get("/jobs/").content.decode()
    assert "w1" in page
    assert "7 / 50" in page
    assert "12.5" in page
    assert "CUDA out of memory" in page
    assert "waiting for a slot" in page


def test_estimated_start_follows_typical_duration(request_job: Callable[..., Run]) -> None:
    done = request_job(seeds=[1])
    beat(done, claim=True)
    job_record_result(result=result(done))
    Run.objects.filter(pk=done.pk).update(
        started_at=timezone.now() - timedelta(minutes=10), finished_at=timezone.now()
    )
    request_job(seeds=[2])
    request_job(seeds=[3])
    from tracking.selectors import job_queue

    now = timezone.now()
    queue = job_queue(now=now)
    assert queue.typical_duration is not None
    assert abs(queue.typical_duration.total_seconds() - 600) < 5
    starts = [q.estimated_start for q in queue.queued]
    assert starts[0] is not None
    assert starts[1] is not None
    assert abs((starts[0] - now).total_seconds() - 600) < 5
    assert abs((starts[1] - now).total_seconds() - 1200) < 5
