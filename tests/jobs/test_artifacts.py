"""Large artifacts: written to the shared store by the worker, referenced, checked on arrival;
a store that is full or failing fails the job with the reason and leaves nothing half-written."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from runners.artifact_store import ArtifactStoreError, LocalArtifactStore, artifact_key
from runners.execute import execute
from runners.reporting import CollectingReporter
from runners.spec import (
    ArtifactRef,
    BackboneRef,
    Heartbeat,
    InlineArtifact,
    JobResult,
    JobSpec,
    TaskRef,
)
from tests.factories import MethodFactory, RunFactory, TaskFactory, UserFactory
from tests.jobs import stepping_method  # noqa: F401 - importing it registers test-stepper
from tests.runners.test_artifact_store import FullLocalStore
from tracking import artifacts, jobs
from tracking.artifacts import ArtifactError, artifact_record_ref
from tracking.jobs import job_heartbeat, job_record_result, runs_request
from tracking.models import Artifact, Job, Run, RunTransition, Score
from tracking.status import RunStatus


def spec(**config: object) -> JobSpec:
    return JobSpec(
        job_id=1,
        attempt=1,
        run_uuid="0123456789abcdef0123456789abcdef",
        method="test-stepper",
        config={"steps": 1, **config},
        seed=0,
        backbone=BackboneRef(key="none", source="package", package="none"),
        task=TaskRef(benchmark="glue", key="sst2", version=1),
    )


def test_a_checkpoint_is_copied_with_its_checksum(tmp_path: Path, data_dir: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    result = execute(
        spec(checkpoint_bytes=1000),
        reporter=CollectingReporter(),
        workdir=tmp_path / "w",
        data_dir=data_dir,
        artifact_store=store,
    )
    (ref,) = result.artifacts
    assert ref.uri == "runs/0123456789abcdef0123456789abcdef/checkpoint.bin"
    stored = (tmp_path / "store" / ref.uri).read_bytes()
    assert len(stored) == ref.size_bytes
    assert hashlib.sha256(stored).hexdigest() == ref.sha256


def test_a_full_store_fails_the_job_with_the_reason(tmp_path: Path, data_dir: Path) -> None:
    root = tmp_path / "store"
    result = execute(
        spec(checkpoint_bytes=300_000),
        reporter=CollectingReporter(),
        workdir=tmp_path / "w",
        data_dir=data_dir,
        artifact_store=FullLocalStore(root, room=1000),  # less than the checkpoint
    )
    assert result.outcome == "failed"
    assert "artifact store: checkpoint.bin" in result.error
    assert "No space left on device" in result.error
    assert not result.scores
    assert not result.artifacts
    assert not root.exists()  # no partial file, no temporary file, not even the folders


def test_a_store_that_fills_up_midway_takes_back_what_it_stored(
    tmp_path: Path, data_dir: Path
) -> None:
    root = tmp_path / "store"
    result = execute(
        spec(checkpoint_bytes=500, optimizer_state_bytes=300_000),
        reporter=CollectingReporter(),
        workdir=tmp_path / "w",
        data_dir=data_dir,
        artifact_store=FullLocalStore(root, room=100_000),  # the checkpoint fits, the rest not
    )
    assert result.outcome == "failed"
    assert "artifact store: optimizer.bin" in result.error
    assert not result.artifacts
    assert not [path for path in root.rglob("*") if path.is_file()]


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", ".hidden", "x" * 300])
def test_unsafe_artifact_names_are_refused(name: str) -> None:
    with pytest.raises(ArtifactStoreError, match="no paths"):
        artifact_key(run_uuid="ab", name=name)


@pytest.mark.django_db
def test_the_platform_records_only_references_into_the_runs_own_folder() -> None:
    run = RunFactory.create()
    key = artifact_key(run_uuid=run.uuid.hex, name="model.bin")
    path = Path(settings.MEDIA_ROOT) / key
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    good = ArtifactRef(name="model.bin", kind="checkpoint", uri=key, size_bytes=7, sha256="a" * 64)
    assert artifact_record_ref(run=run, ref=good).uri == key
    other_run = RunFactory.create()
    with pytest.raises(ArtifactError, match="not at 'runs/"):
        artifact_record_ref(run=other_run, ref=good)
    wrong_size = ArtifactRef(
        name="model.bin", kind="checkpoint", uri=key, size_bytes=8, sha256="a" * 64
    )
    with pytest.raises(ArtifactError, match="is not the one the worker described"):
        artifact_record_ref(run=run, ref=wrong_size)
    outside = ArtifactRef(
        name="model.bin", kind="checkpoint", uri="../model.bin", size_bytes=7, sha256="a" * 64
    )
    with pytest.raises(ArtifactError, match="not at 'runs/"):
        artifact_record_ref(run=run, ref=outside)
    assert Artifact.objects.filter(run=run).count() == 1
    assert not Artifact.objects.filter(run=other_run).exists()


# --- A result whose artifacts cannot be kept fails the run, writing nothing else ----------


@pytest.fixture
def running_run(monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any) -> Run:
    """A job claimed by a worker (its spec and control messages go nowhere)."""
    monkeypatch.setattr(jobs, "_send_spec", lambda spec: None)
    monkeypatch.setattr(jobs, "control_send", lambda **kwargs: None)
    task = TaskFactory.create()
    with django_capture_on_commit_callbacks(execute=True):
        (run,) = runs_request(
            owner=UserFactory.create(),
            method=MethodFactory.create(executable=True),
            backbone=RunFactory.create().backbone,
            task=task,
            config={},
            seeds=[0],
        )
    job = Job.objects.get(run=run)
    job_heartbeat(message=Heartbeat(job_id=job.pk, attempt=1, worker="w", claim=True))
    return run


def succeeded(run: Run, *, artifacts: tuple[ArtifactRef, ...] = ()) -> JobResult:
    content = "0\n1\n"
    return JobResult(
        job_id=Job.objects.get(run=run).pk,
        attempt=1,
        outcome="succeeded",
        scores={"accuracy": 0.9},
        artifacts=artifacts,
        inline_artifacts=(
            InlineArtifact(
                name="predictions-validation.jsonl",
                kind="predictions",
                content=content,
                sha256=hashlib.sha256(content.encode()).hexdigest(),
            ),
        ),
    )


def assert_failed_with_nothing_written(run: Run, *, says: str) -> None:
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.status_reason.startswith("artifact store: ")
    assert says in run.status_reason
    assert not Score.objects.filter(run=run).exists()
    assert not Artifact.objects.filter(run=run).exists()
    assert list(
        RunTransition.objects.filter(run=run).order_by("at", "id").values_list("to_status")
    ) == [("queued",), ("running",), ("failed",)]
    # Not even the predictions, which were written before the failure was found.
    assert not [path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()]


@pytest.mark.django_db
def test_a_checkpoint_missing_from_the_store_fails_the_run(running_run: Run) -> None:
    key = artifact_key(run_uuid=running_run.uuid.hex, name="checkpoint.bin")
    ghost = ArtifactRef(
        name="checkpoint.bin", kind="checkpoint", uri=key, size_bytes=5, sha256="0" * 64
    )
    outcome = job_record_result(result=succeeded(running_run, artifacts=(ghost,)))
    assert outcome.applied
    assert_failed_with_nothing_written(running_run, says=f"nothing is stored at {key}")


@pytest.mark.django_db
def test_a_full_platform_store_fails_the_run(
    running_run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = FullLocalStore(Path(settings.MEDIA_ROOT), room=1)  # the predictions do not fit
    monkeypatch.setattr(artifacts, "artifact_store", lambda: full)
    job_record_result(result=succeeded(running_run))
    assert_failed_with_nothing_written(running_run, says="No space left on device")


@pytest.mark.django_db
def test_a_result_with_its_artifacts_in_the_store_succeeds(running_run: Run) -> None:
    store = LocalArtifactStore(Path(settings.MEDIA_ROOT))
    checkpoint = store.put(
        run_uuid=str(running_run.uuid),
        name="checkpoint.bin",
        kind="checkpoint",
        source=io.BytesIO(b"weights"),
    )
    job_record_result(result=succeeded(running_run, artifacts=(checkpoint,)))
    running_run.refresh_from_db()
    assert running_run.status == RunStatus.SUCCEEDED
    assert sorted(Artifact.objects.filter(run=running_run).values_list("name", "kind")) == [
        ("checkpoint.bin", "checkpoint"),
        ("predictions-validation.jsonl", "predictions"),
    ]
