"""Large artifacts: written to the shared store by the worker, referenced, checked on arrival."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from django.conf import settings

from runners.artifact_store import ArtifactStoreError, LocalArtifactStore, artifact_key
from runners.execute import execute
from runners.reporting import CollectingReporter
from runners.spec import ArtifactRef, BackboneRef, JobSpec, TaskRef
from tests.factories import RunFactory
from tests.jobs import stepping_method  # noqa: F401 - importing it registers test-stepper
from tracking.artifacts import artifact_record_ref
from tracking.models import Artifact


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
    import hashlib

    assert hashlib.sha256(stored).hexdigest() == ref.sha256


class FullStore:
    def put(self, **kwargs: object) -> ArtifactRef:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_store_fails_the_job_with_the_reason(tmp_path: Path, data_dir: Path) -> None:
    result = execute(
        spec(checkpoint_bytes=10),
        reporter=CollectingReporter(),
        workdir=tmp_path / "w",
        data_dir=data_dir,
        artifact_store=FullStore(),
    )
    assert result.outcome == "failed"
    assert "artifact store: checkpoint.bin" in result.error
    assert "No space left on device" in result.error
    assert not result.scores


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
    assert artifact_record_ref(run=run, ref=good) is not None
    other_run = RunFactory.create()
    foreign = ArtifactRef(
        name="model.bin", kind="checkpoint", uri=key, size_bytes=7, sha256="a" * 64
    )
    assert artifact_record_ref(run=other_run, ref=foreign) is None
    wrong_size = ArtifactRef(
        name="model.bin", kind="checkpoint", uri=key, size_bytes=8, sha256="a" * 64
    )
    assert artifact_record_ref(run=run, ref=wrong_size) is None
    assert Artifact.objects.filter(run=run).count() == 1
    assert not Artifact.objects.filter(run=other_run).exists()
