"""The artifact store: files under MEDIA_ROOT/runs/<run uuid>/, recorded with a checksum."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from django.conf import settings

from runners.artifact_store import artifact_key
from runners.spec import ArtifactRef, InlineArtifact
from tracking.models import Artifact, ArtifactKind, Run

logger = logging.getLogger(__name__)


class ArtifactError(ValueError):
    """An artifact that cannot be stored; the message says why."""


def artifact_path(*, run: Run, name: str) -> Path:
    try:
        return Path(settings.MEDIA_ROOT) / artifact_key(run_uuid=run.uuid.hex, name=name)
    except ValueError as error:
        raise ArtifactError(str(error)) from None


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def artifact_store_inline(*, run: Run, artifact: InlineArtifact) -> Artifact:
    """Store an artifact that travelled inside a message; idempotent per (run, name)."""
    data = artifact.content.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    if digest != artifact.sha256:
        raise ArtifactError(f"artifact {artifact.name}: checksum mismatch, refusing to store it")
    kind = artifact.kind if artifact.kind in ArtifactKind.values else ArtifactKind.OTHER
    path = artifact_path(run=run, name=artifact.name)
    _write_atomically(path, data)
    stored, _ = Artifact.objects.update_or_create(
        run=run,
        name=artifact.name,
        defaults={
            "kind": kind,
            "uri": str(path.relative_to(settings.MEDIA_ROOT)),
            "size_bytes": len(data),
            "sha256": digest,
        },
    )
    return stored


def artifact_record_ref(*, run: Run, ref: ArtifactRef) -> Artifact | None:
    """Record a large artifact a worker put in the shared store; refuse foreign paths.

    The reference must name this run's own folder in the store and match the stored file's
    size, so a worker message cannot make the platform serve an arbitrary file.
    """
    try:
        expected = artifact_key(run_uuid=run.uuid.hex, name=ref.name)
    except ValueError as error:
        logger.warning("run %s: refused artifact reference: %s", run.pk, error)
        return None
    path = Path(settings.MEDIA_ROOT) / expected
    if ref.uri != expected or not path.is_file() or path.stat().st_size != ref.size_bytes:
        logger.warning("run %s: artifact %s is not in the store as described", run.pk, ref.name)
        return None
    kind = ref.kind if ref.kind in ArtifactKind.values else ArtifactKind.OTHER
    stored, _ = Artifact.objects.update_or_create(
        run=run,
        name=ref.name,
        defaults={
            "kind": kind,
            "uri": expected,
            "size_bytes": ref.size_bytes,
            "sha256": ref.sha256,
        },
    )
    return stored
