"""The artifact store: files under MEDIA_ROOT/runs/<run uuid>/, recorded with a checksum."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from django.conf import settings

from runners.spec import InlineArtifact
from tracking.models import Artifact, ArtifactKind, Run

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class ArtifactError(ValueError):
    """An artifact that cannot be stored; the message says why."""


def artifact_path(*, run: Run, name: str) -> Path:
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise ArtifactError(
            f"artifact name {name!r}: use letters, digits, '.', '_' and '-' only (no paths)."
        )
    return Path(settings.MEDIA_ROOT) / "runs" / run.uuid.hex / name


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
