"""Artifacts on the platform's side: stored, recorded with their checksum, read back checked.

The platform writes to the same store as its GPU workers (runners.artifact_store): files under
MEDIA_ROOT by default, an S3-compatible bucket when PODIUM_ARTIFACT_URL names one. An Artifact
row records where the bytes are (its uri: a key under MEDIA_ROOT, or s3://...), their size
and their sha256. Reading goes by the uri, so artifacts recorded before a switch of store stay
readable, and checks size and checksum as the bytes stream.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from runners.artifact_store import (
    CHUNK,
    ArtifactNotFound,
    ArtifactStore,
    ArtifactStoreError,
    LocalArtifactStore,
    Readable,
    S3ArtifactStore,
    artifact_key,
    store_from_url,
)
from runners.spec import ArtifactRef, InlineArtifact
from tracking.models import Artifact, ArtifactKind, ProvenanceTier, Run

logger = logging.getLogger(__name__)

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(ValueError):
    """An artifact that cannot be stored or recorded; the message starts with the input it
    is about ("name: ...", "sha256: ...", "file: ...") where there is one."""


class ArtifactStoreFailure(ArtifactError):
    """The store could not take the artifact (full, failing, unreachable); nothing was kept."""


class ArtifactConflict(ArtifactError):
    """The run cannot take this artifact (the name is taken, or Podium executed the run)."""


class ArtifactUnavailable(Exception):
    """A recorded artifact the store cannot serve now (unreachable, or not configured)."""


class ArtifactGone(ArtifactUnavailable):
    """A recorded artifact whose bytes are missing from the store or differ from the record."""


# --- Stores ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _s3_store(url: str, endpoint_url: str, region: str) -> S3ArtifactStore:
    # One boto3 client per configuration: creating one costs far more than a request.
    return store_from_url(url, endpoint_url=endpoint_url, region=region)


def artifact_store() -> ArtifactStore:
    """The store new artifacts go to: the S3 bucket configured, or MEDIA_ROOT."""
    if settings.PODIUM_ARTIFACT_URL:
        return _s3_store(
            settings.PODIUM_ARTIFACT_URL, settings.PODIUM_S3_ENDPOINT_URL, settings.PODIUM_S3_REGION
        )
    return LocalArtifactStore(Path(settings.MEDIA_ROOT))


def _store_holding(uri: str) -> ArtifactStore:
    """The store an artifact's uri points into, whichever store new artifacts go to."""
    if "://" not in uri:
        return LocalArtifactStore(Path(settings.MEDIA_ROOT))
    store = artifact_store()
    if isinstance(store, S3ArtifactStore) and store.holds(uri):
        return store
    raise ArtifactUnavailable(
        f"{uri} is outside this platform's artifact store (PODIUM_ARTIFACT_URL)"
    )


def _delete_quietly(store: ArtifactStore, uri: str) -> None:
    """Clean-up after a failure: never mask the failure being reported."""
    try:
        store.delete(uri)
    except ArtifactStoreError as error:
        logger.error("could not remove %s after a failed store: %s", uri, error)


def _key(*, run: Run, name: str) -> str:
    try:
        return artifact_key(run_uuid=run.uuid.hex, name=name)
    except ArtifactStoreError as error:
        raise ArtifactError(f"name: {error}") from None


def _kind(kind: str) -> str:
    return kind if kind in ArtifactKind.values else ArtifactKind.OTHER


# --- Writing -----------------------------------------------------------------------------


def _store_inline(*, store: ArtifactStore, run: Run, artifact: InlineArtifact) -> Artifact:
    data = artifact.content.encode("utf-8")
    if hashlib.sha256(data).hexdigest() != artifact.sha256:
        raise ArtifactError(f"artifact {artifact.name}: checksum mismatch, refusing to store it")
    _key(run=run, name=artifact.name)
    try:
        ref = store.put(
            run_uuid=run.uuid.hex, name=artifact.name, kind=artifact.kind, source=io.BytesIO(data)
        )
    except ArtifactStoreError as error:
        raise ArtifactStoreFailure(str(error)) from None
    stored, _ = Artifact.objects.update_or_create(
        run=run,
        name=artifact.name,
        defaults={
            "kind": _kind(artifact.kind),
            "uri": ref.uri,
            "size_bytes": ref.size_bytes,
            "sha256": ref.sha256,
        },
    )
    return stored


def artifact_store_inline(*, run: Run, artifact: InlineArtifact) -> Artifact:
    """Store an artifact that travelled inside a message; idempotent per (run, name)."""
    return _store_inline(store=artifact_store(), run=run, artifact=artifact)


def artifact_record_ref(*, run: Run, ref: ArtifactRef) -> Artifact:
    """Record a large artifact a worker put in the shared store.

    The reference must name this run's own place in the platform's store, and the stored
    object must have the size (and, in S3, the checksum) it claims, so a worker message can
    never make the platform serve an arbitrary file or a half-written one.
    """
    store = artifact_store()
    expected = store.uri_for(_key(run=run, name=ref.name))
    if ref.uri != expected:
        raise ArtifactError(
            f"artifact {ref.name}: the worker stored it at {ref.uri!r}, not at {expected!r} "
            "(do the worker and the platform use the same artifact store?)"
        )
    try:
        stored = store.describe(expected)
    except ArtifactStoreError as error:
        raise ArtifactError(f"artifact {ref.name}: {error}") from None
    if stored is None:
        raise ArtifactError(f"artifact {ref.name}: nothing is stored at {expected}")
    if stored.size_bytes != ref.size_bytes or stored.sha256 not in {"", ref.sha256}:
        raise ArtifactError(
            f"artifact {ref.name}: the stored object ({stored.size_bytes} bytes) is not the "
            f"one the worker described ({ref.size_bytes} bytes, sha256 {ref.sha256})"
        )
    artifact, _ = Artifact.objects.update_or_create(
        run=run,
        name=ref.name,
        defaults={
            "kind": _kind(ref.kind),
            "uri": expected,
            "size_bytes": ref.size_bytes,
            "sha256": ref.sha256,
        },
    )
    return artifact


def artifacts_record_result(
    *, run: Run, refs: Iterable[ArtifactRef], inline: Iterable[InlineArtifact]
) -> list[Artifact]:
    """Record a job result's artifacts, all or none.

    Run inside the caller's transaction: on ArtifactError the rows roll back with it, and
    the inline artifacts written here are removed again.
    """
    store = artifact_store()
    written: list[str] = []
    recorded: list[Artifact] = []
    try:
        for artifact in inline:
            stored = _store_inline(store=store, run=run, artifact=artifact)
            written.append(stored.uri)
            recorded.append(stored)
        recorded.extend(artifact_record_ref(run=run, ref=ref) for ref in refs)
    except BaseException:
        for uri in written:
            _delete_quietly(store, uri)
        raise
    return recorded


def artifact_upload(*, run: Run, name: str, kind: str, source: BinaryIO, sha256: str) -> Artifact:
    """Store a file a run's owner uploads, once its checksum matches the one they sent.

    Nothing is stored when the checksum differs; the object is removed again when the row
    cannot be written. Names are unique per run, and a run executed by Podium takes its
    artifacts from its job only, so an upload cannot pass for the job's own output.
    """
    _key(run=run, name=name)
    claimed = sha256.strip().lower()
    if not SHA256_HEX.fullmatch(claimed):
        raise ArtifactError("sha256: give the file's SHA-256 as 64 hexadecimal digits.")
    if kind not in ArtifactKind.values:
        raise ArtifactError(f"kind: {kind!r} is not one of {', '.join(ArtifactKind.values)}.")
    if run.provenance_tier == ProvenanceTier.EXECUTED:
        raise ArtifactConflict(
            "Podium executed this run: its artifacts come from its job, not from uploads."
        )
    start = source.tell()
    digest = hashlib.sha256()
    while chunk := source.read(CHUNK):
        digest.update(chunk)
    source.seek(start)
    if digest.hexdigest() != claimed:
        raise ArtifactError(
            f"sha256: the uploaded file's SHA-256 is {digest.hexdigest()}, not {claimed}; "
            "it was changed or cut short on the way."
        )
    store = artifact_store()
    uri = ""
    try:
        with transaction.atomic():
            # Locking the run serialises uploads of one name: the loser sees the winner's row
            # before it writes to the same key.
            Run.objects.select_for_update().filter(pk=run.pk).first()
            if Artifact.objects.filter(run=run, name=name).exists():
                raise ArtifactConflict(f"name: this run already has an artifact {name!r}.")
            try:
                ref = store.put(run_uuid=run.uuid.hex, name=name, kind=kind, source=source)
            except ArtifactStoreError as error:
                raise ArtifactStoreFailure(f"file: {error}") from None
            uri = ref.uri
            if ref.sha256 != claimed:
                raise ArtifactError(f"file: {name} changed while it was being stored.")
            return Artifact.objects.create(
                run=run,
                name=name,
                kind=kind,
                uri=ref.uri,
                size_bytes=ref.size_bytes,
                sha256=ref.sha256,
            )
    except BaseException:
        if uri:
            _delete_quietly(store, uri)
        raise


# --- Reading -----------------------------------------------------------------------------


def artifact_list(*, run: Run) -> QuerySet[Artifact]:
    return Artifact.objects.filter(run=run).order_by("name")


def artifact_get(*, run: Run, name: str) -> Artifact | None:
    return Artifact.objects.filter(run=run, name=name).first()


class ArtifactContent:
    """An artifact's bytes as they stream from the store, checked against its record.

    The last chunk is held back until the size and the sha256 of everything before it have
    been checked, so a client never receives a complete copy of an artifact that differs
    from its record: the download breaks off short instead, with ArtifactGone raised here.
    """

    def __init__(self, *, artifact: Artifact, reader: Readable) -> None:
        self.artifact = artifact
        self._reader = reader

    def __iter__(self) -> Iterator[bytes]:
        digest = hashlib.sha256()
        size = 0
        held = b""
        try:
            while chunk := self._reader.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if held:
                    yield held
                held = chunk
        finally:
            self._reader.close()
        if size != self.artifact.size_bytes or digest.hexdigest() != self.artifact.sha256:
            logger.error(
                "artifact %s of run %s: the stored bytes (%s, sha256 %s) differ from the record",
                self.artifact.name,
                self.artifact.run_id,
                size,
                digest.hexdigest(),
            )
            raise ArtifactGone(
                f"artifact {self.artifact.name}: the stored bytes differ from the recorded "
                "checksum; the download was stopped"
            )
        if held:
            yield held

    def close(self) -> None:
        self._reader.close()

    def read(self) -> bytes:
        """All of it (for small artifacts), checked."""
        return b"".join(self)


def artifact_open(*, artifact: Artifact) -> ArtifactContent:
    """An artifact's bytes, wherever its uri says they are, checked as they stream.

    Raises ArtifactGone when the store has no such object or one of another size or
    recorded checksum, ArtifactUnavailable when the store cannot be reached.
    """
    store = _store_holding(artifact.uri)
    try:
        opened = store.open(artifact.uri)
    except ArtifactNotFound:
        raise ArtifactGone(
            f"artifact {artifact.name}: recorded, but missing from the artifact store"
        ) from None
    except ArtifactStoreError as error:
        raise ArtifactUnavailable(f"artifact {artifact.name}: {error}") from None
    stored = opened.stored
    if stored.size_bytes != artifact.size_bytes or stored.sha256 not in {"", artifact.sha256}:
        opened.reader.close()
        raise ArtifactGone(
            f"artifact {artifact.name}: the stored object is not the one recorded "
            f"({stored.size_bytes} bytes, not {artifact.size_bytes})"
        )
    return ArtifactContent(artifact=artifact, reader=opened.reader)
