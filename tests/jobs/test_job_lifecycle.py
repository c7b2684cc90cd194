"""Jobs end to end through a real Redis and real worker processes (platform and GPU)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings

from runners.execute import execute
from runners.registry import get_method
from runners.reporting import CollectingReporter
from tests.conftest import CeleryWorker
from tests.jobs import stepping_method
from tests.jobs.conftest import GpuWorker, wait_until
from tracking.jobs import jobs_reap, run_cancel
from tracking.models import Artifact, Job, MetricPoint, Run, RunTransition, Score
from tracking.status import RunStatus

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def status_of(run: Run) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run.pk)


def history(run: Run) -> list[tuple[str, str]]:
    return list(
        RunTransition.objects.filter(run=run)
        .order_by("at", "id")
        .values_list("from_status", "to_status")
    )


def test_job_goes_queued_running_succeeded_with_scores_curve_and_artifact(
    platform_worker: CeleryWorker,
    start_gpu_worker: object,
    request_stepper: Callable[..., Run],
    data_dir: Path,
) -> None:
    gpu: GpuWorker = start_gpu_worker()  # type: ignore[operator]
    run = request_stepper({"steps": 4, "checkpoint_bytes": 300_000}, seed=7)
    wait_until(
        lambda: status_of(run) == RunStatus.SUCCEEDED,
        timeout=90,
        what=lambda: (
            f"success; gpu log:\n{gpu.output()}\nplatform log:\n{platform_worker.output()}"
        ),
    )

    assert history(run) == [("", "queued"), ("queued", "running"), ("running", "succeeded")]
    # The score is exactly what the runner computes for the same spec in this process.
    run.refresh_from_db()
    from runners.spec import JobSpec

    # Importing the module registered the method in this process too, for the comparison.
    assert get_method("test-stepper").run is stepping_method.stepper
    local = execute(
        JobSpec.from_dict(run.spec),
        reporter=CollectingReporter(),
        workdir=Path(settings.MEDIA_ROOT),
        data_dir=data_dir,
    )
    scores = dict(Score.objects.filter(run=run).values_list("metric__key", "value"))
    assert scores == local.scores
    curve = list(
        MetricPoint.objects.filter(run=run, key="loss")
        .order_by("step")
        .values_list("step", "value")
    )
    assert curve == [(1, 1.0), (2, 0.5), (3, 1 / 3), (4, 0.25)]
    job = Job.objects.get(run=run)
    assert job.attempts == 1
    assert job.worker.startswith("gpu0@")
    assert run.system["trainable_parameters"] == 1.0
    assert run.system["wall_time_s"] > 0
    assert run.provenance["seed"] == 7
    assert "numpy" in run.provenance["packages"]
    # The platform worker stored the predictions under the same MEDIA_ROOT as this process.
    artifact = Artifact.objects.get(run=run, kind="predictions")
    stored = (Path(settings.MEDIA_ROOT) / artifact.uri).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == artifact.sha256
    assert len(stored) == artifact.size_bytes
    assert stored.count(b"\n") == 872  # one line per SST-2 validation row
    # The checkpoint went to the shared store; the message carried only its reference.
    checkpoint = Artifact.objects.get(run=run, kind="checkpoint")
    data = (Path(settings.MEDIA_ROOT) / checkpoint.uri).read_bytes()
    assert len(data) == checkpoint.size_bytes >= 300_000
    assert hashlib.sha256(data).hexdigest() == checkpoint.sha256


def test_a_killed_worker_is_replaced_and_the_job_finishes_once(
    platform_worker: CeleryWorker,
    start_gpu_worker: object,
    request_stepper: Callable[..., Run],
) -> None:
    first: GpuWorker = start_gpu_worker()  # type: ignore[operator]
    run = request_stepper({"steps": 40, "step_seconds": 0.1}, max_attempts=2)
    job = Job.objects.get(run=run)
    wait_until(lambda: Job.objects.get(pk=job.pk).progress.get("step", 0) >= 3, what="progress")
    first.kill()

    # Time passes for the reaper without sleeping: judge the heartbeat from the future.
    from datetime import timedelta

    from django.utils import timezone

    report = jobs_reap(
        now=timezone.now() + timedelta(seconds=settings.PODIUM_HEARTBEAT_TIMEOUT_S + 1)
    )
    assert report.requeued == [job.pk]
    assert status_of(run) == RunStatus.QUEUED
    start_gpu_worker()  # type: ignore[operator]
    wait_until(lambda: status_of(run) == RunStatus.SUCCEEDED, timeout=90, what="the retried job")

    assert Job.objects.get(pk=job.pk).attempts == 2
    assert Score.objects.filter(run=run).count() == 1  # one metric, one set
    assert history(run) == [
        ("", "queued"),
        ("queued", "running"),
        ("running", "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
    ]
    steps = list(MetricPoint.objects.filter(run=run, key="loss").values_list("step", flat=True))
    assert sorted(steps) == list(range(1, 41))  # the second attempt's curve, whole, once


def test_a_job_whose_attempts_run_out_fails_with_the_reason(
    platform_worker: CeleryWorker,
    start_gpu_worker: object,
    request_stepper: Callable[..., Run],
) -> None:
    worker: GpuWorker = start_gpu_worker()  # type: ignore[operator]
    run = request_stepper({"steps": 100, "step_seconds": 0.1}, max_attempts=1)
    wait_until(lambda: status_of(run) == RunStatus.RUNNING, what="running")
    worker.kill()
    from datetime import timedelta

    from django.utils import timezone

    jobs_reap(now=timezone.now() + timedelta(seconds=settings.PODIUM_HEARTBEAT_TIMEOUT_S + 1))
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "no heartbeat" in run.status_reason
    assert "all 1 attempts used" in run.status_reason
    assert not Score.objects.filter(run=run).exists()


def test_cancelling_a_running_job_stops_it_at_a_step(
    platform_worker: CeleryWorker,
    start_gpu_worker: object,
    request_stepper: Callable[..., Run],
) -> None:
    start_gpu_worker()  # type: ignore[operator]
    run = request_stepper({"steps": 600, "step_seconds": 0.1})
    wait_until(lambda: status_of(run) == RunStatus.RUNNING, what="running")
    assert run_cancel(run_id=run.pk).status == RunStatus.CANCELLING
    wait_until(lambda: status_of(run) == RunStatus.CANCELLED, timeout=30, what="cancelled")
    job = Job.objects.get(run=run)
    assert job.progress["step"] < 600
    assert not Score.objects.filter(run=run).exists()
    assert history(run)[-2:] == [("running", "cancelling"), ("cancelling", "cancelled")]


def test_a_cancelled_queued_job_is_never_run(
    platform_worker: CeleryWorker,
    start_gpu_worker: object,
    request_stepper: Callable[..., Run],
) -> None:
    run = request_stepper({"steps": 2})
    assert run_cancel(run_id=run.pk).status == RunStatus.CANCELLED
    # A worker that picks the spec up afterwards is told to drop it.
    worker: GpuWorker = start_gpu_worker()  # type: ignore[operator]
    wait_until(
        lambda: "not wanted" in worker.output(), what=lambda: f"skip; log:\n{worker.output()}"
    )
    assert status_of(run) == RunStatus.CANCELLED
    assert not MetricPoint.objects.filter(run=run).exists()


def test_a_failing_method_fails_the_run_with_its_error(
    platform_worker: CeleryWorker,
    start_gpu_worker: object,
    request_stepper: Callable[..., Run],
) -> None:
    start_gpu_worker()  # type: ignore[operator]
    run = request_stepper({"steps": 5, "fail_at_step": 3})
    wait_until(lambda: status_of(run) == RunStatus.FAILED, what="failure")
    run.refresh_from_db()
    assert "RuntimeError: diverged at step 3" in run.status_reason
    job = Job.objects.get(run=run)
    assert "diverged at step 3" in job.log_tail
    assert job.attempts == 1  # a method's own error is not retried


def restart_redis() -> None:
    """Stop the test Redis (it persists to its append-only file) and start it again."""
    import os
    import subprocess

    folder = os.environ.get("PODIUM_SERVICES_DIR")
    if not folder:
        pytest.skip("Redis was not started by make test, so this test cannot restart it")
    env = dict(line.split("=", 1) for line in Path(folder, "env").read_text().split())
    port = env["REDIS_PORT"]
    subprocess.run(["redis-cli", "-p", port, "shutdown"], check=False, capture_output=True)
    subprocess.run(
        [
            "redis-server",
            "--port",
            port,
            "--bind",
            "127.0.0.1",
            "--dir",
            folder,
            "--daemonize",
            "yes",
            "--pidfile",
            f"{folder}/redis.pid",
            "--logfile",
            f"{folder}/redis.log",
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        check=True,
        capture_output=True,
    )
    wait_until(
        lambda: (
            subprocess.run(
                ["redis-cli", "-p", port, "ping"], capture_output=True, text=True
            ).stdout.strip()
            == "PONG"
        ),
        timeout=20,
        what="Redis to answer again",
    )


def test_the_result_arrives_across_a_redis_restart(
    platform_worker: CeleryWorker,
    start_gpu_worker: object,
    request_stepper: Callable[..., Run],
) -> None:
    gpu: GpuWorker = start_gpu_worker()  # type: ignore[operator]
    run = request_stepper({"steps": 50, "step_seconds": 0.1}, seed=3)
    job = Job.objects.get(run=run)
    wait_until(lambda: Job.objects.get(pk=job.pk).progress.get("step", 0) >= 2, what="progress")
    restart_redis()
    wait_until(
        lambda: status_of(run) == RunStatus.SUCCEEDED,
        timeout=120,
        what=lambda: (
            f"success after the restart; gpu log:\n{gpu.output()[-3000:]}\n"
            f"platform log:\n{platform_worker.output()[-3000:]}"
        ),
    )
    assert Score.objects.filter(run=run).count() == 1
    assert Job.objects.get(pk=job.pk).attempts == 1
