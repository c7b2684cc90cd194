"""A job's checkpoint in an S3-compatible bucket (moto's real HTTP server): the GPU worker
uploads it, the platform worker verifies and records it, and the API serves it back."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from tests.conftest import CeleryWorker
from tests.jobs.conftest import GpuWorker, wait_until
from tests.runners.test_artifact_store import S3Endpoint, s3_endpoint  # noqa: F401 - a fixture
from tracking.models import Artifact, Run, Score
from tracking.status import RunStatus

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@dataclass(frozen=True)
class S3Jobs:
    bucket: str
    platform_worker: CeleryWorker
    gpu: GpuWorker

    def logs(self) -> str:
        return f"gpu log:\n{self.gpu.output()}\nplatform log:\n{self.platform_worker.output()}"


def start_s3_workers(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    endpoint: S3Endpoint,
    bucket: str,
) -> S3Jobs:
    """Both workers and this process on one bucket, configured as a deployment would be."""
    url = f"s3://{bucket}/jobs"
    monkeypatch.setenv("PODIUM_ARTIFACT_URL", url)
    settings.PODIUM_ARTIFACT_URL = url
    settings.PODIUM_S3_ENDPOINT_URL = endpoint.url
    settings.PODIUM_S3_REGION = "us-east-1"
    # Requested only now, so the worker processes start with the variables above.
    platform_worker: CeleryWorker = request.getfixturevalue("platform_worker")
    start_gpu_worker: Callable[[], GpuWorker] = request.getfixturevalue("start_gpu_worker")
    return S3Jobs(bucket=bucket, platform_worker=platform_worker, gpu=start_gpu_worker())


def status_of(run: Run) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run.pk)


def test_a_checkpoint_in_s3_is_recorded_and_downloads_through_the_api(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    s3_endpoint: S3Endpoint,  # noqa: F811
    request_stepper: Callable[..., Run],
) -> None:
    jobs = start_s3_workers(request, monkeypatch, settings, s3_endpoint, s3_endpoint.new_bucket())
    run = request_stepper({"steps": 2, "checkpoint_bytes": 300_000})
    wait_until(lambda: status_of(run) == RunStatus.SUCCEEDED, timeout=90, what=jobs.logs)

    checkpoint = Artifact.objects.get(run=run, kind="checkpoint")
    key = f"jobs/runs/{run.uuid.hex}/checkpoint.bin"
    assert checkpoint.uri == f"s3://{jobs.bucket}/{key}"
    head = s3_endpoint.client().head_object(Bucket=jobs.bucket, Key=key)
    assert head["Metadata"] == {"sha256": checkpoint.sha256}
    assert head["ContentLength"] == checkpoint.size_bytes >= 300_000
    # The platform worker put the predictions in the same bucket.
    predictions = Artifact.objects.get(run=run, kind="predictions")
    assert predictions.uri.startswith(f"s3://{jobs.bucket}/jobs/runs/{run.uuid.hex}/")
    # Nothing went to a local folder on either side.
    assert not list(Path(settings.MEDIA_ROOT).rglob("*.bin"))

    response = APIClient().get(f"/api/v1/runs/{run.uuid}/artifacts/checkpoint.bin/")
    assert response.status_code == 200
    data = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert len(data) == checkpoint.size_bytes
    assert hashlib.sha256(data).hexdigest() == checkpoint.sha256
    assert response["X-Checksum-SHA256"] == checkpoint.sha256
    listed = APIClient().get(f"/api/v1/runs/{run.uuid}/artifacts/").json()
    assert [a["name"] for a in listed] == ["checkpoint.bin", "predictions-validation.jsonl"]


def test_a_missing_bucket_fails_the_job_with_the_reason_and_records_nothing(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    s3_endpoint: S3Endpoint,  # noqa: F811
    request_stepper: Callable[..., Run],
) -> None:
    jobs = start_s3_workers(request, monkeypatch, settings, s3_endpoint, "podium-never-created")
    run = request_stepper({"steps": 2, "checkpoint_bytes": 300_000})
    wait_until(lambda: status_of(run) == RunStatus.FAILED, timeout=90, what=jobs.logs)

    run.refresh_from_db()
    assert run.status_reason == (
        "artifact store: checkpoint.bin: cannot upload artifact checkpoint.bin to "
        f"s3://podium-never-created/jobs/runs/{run.uuid.hex}/checkpoint.bin: "
        "NoSuchBucket: The specified bucket does not exist"
    )
    assert not Score.objects.filter(run=run).exists()
    assert not Artifact.objects.filter(run=run).exists()
