"""Where large artifacts (checkpoints) go: a store both the GPU worker and the platform reach.

The default is a local directory (PODIUM_ARTIFACT_DIR) that in production is a volume
shared with the platform, whose MEDIA_ROOT is the same folder. Files are laid out as
runs/<run uuid hex>/<name>, and the result message carries only a reference.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from runners.spec import ArtifactRef

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
CHUNK = 1 << 20


class ArtifactStoreError(ValueError):
    """An artifact that cannot be stored; the message says why."""


def artifact_key(*, run_uuid: str, name: str) -> str:
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise ArtifactStoreError(
            f"artifact name {name!r}: use letters, digits, '.', '_' and '-' only (no paths)"
        )
    return f"runs/{run_uuid.replace('-', '')}/{name}"


class ArtifactStore(Protocol):
    def put(self, *, run_uuid: str, name: str, kind: str, source: Path) -> ArtifactRef: ...


class LocalArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, *, run_uuid: str, name: str, kind: str, source: Path) -> ArtifactRef:
        key = artifact_key(run_uuid=run_uuid, name=name)
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with source.open("rb") as reader, os.fdopen(handle, "wb") as writer:
                while chunk := reader.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    writer.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return ArtifactRef(
            name=name, kind=kind, uri=key, size_bytes=size, sha256=digest.hexdigest()
        )


def store_from_env() -> ArtifactStore | None:
    """The store named by PODIUM_ARTIFACT_DIR, or None when the worker keeps no files."""
    folder = os.environ.get("PODIUM_ARTIFACT_DIR", "")
    return LocalArtifactStore(Path(folder)) if folder else None


__all__ = ["ArtifactStore", "ArtifactStoreError", "LocalArtifactStore", "artifact_key"]
