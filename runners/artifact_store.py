"""Where large artifacts (checkpoints) go: a store both the GPU worker and the platform reach.

One environment variable picks the store, read the same way on both sides:
- `PODIUM_ARTIFACT_DIR`: a local directory, in production a volume shared with the platform,
  whose MEDIA_ROOT is the same folder. An artifact's uri is its key, relative to the folder.
- `PODIUM_ARTIFACT_URL=s3://bucket/prefix`: an S3-compatible bucket (`PODIUM_S3_ENDPOINT_URL`
  for MinIO, Ceph or R2; credentials from the standard AWS_* variables). An artifact's uri is
  `s3://bucket/prefix/<key>` and its sha256 is stored as object metadata.
Keys are runs/<run uuid hex>/<name>; a result message carries only the reference. A store that
is full or failing raises ArtifactStoreError saying why, and leaves no partial object behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import urlsplit

from runners.spec import ArtifactRef

if TYPE_CHECKING:
    from boto3.s3.transfer import TransferConfig
    from mypy_boto3_s3 import S3Client

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
CHUNK = 1 << 20
SHA256_METADATA = "sha256"  # the object metadata key S3 stores the checksum under


class ArtifactStoreError(ValueError):
    """An artifact that cannot be stored or read; the message says why."""


class ArtifactNotFound(ArtifactStoreError):
    """Nothing is stored under the uri."""


def artifact_key(*, run_uuid: str, name: str) -> str:
    if not SAFE_NAME.fullmatch(name) or ".." in name:
        raise ArtifactStoreError(
            f"artifact name {name!r}: use letters, digits, '.', '_' and '-' only (no paths)"
        )
    return f"runs/{run_uuid.replace('-', '')}/{name}"


@dataclass(frozen=True, kw_only=True)
class StoredObject:
    size_bytes: int
    sha256: str  # "" where the store keeps no checksum of its own (local files)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class OpenedObject:
    stored: StoredObject
    reader: Readable  # the caller closes it


class ArtifactStore(Protocol):
    def uri_for(self, key: str) -> str: ...

    def put(
        self, *, run_uuid: str, name: str, kind: str, source: Path | BinaryIO
    ) -> ArtifactRef: ...

    def describe(self, uri: str) -> StoredObject | None: ...

    def open(self, uri: str) -> OpenedObject: ...

    def delete(self, uri: str) -> None: ...


@contextmanager
def _reading(source: Path | BinaryIO) -> Iterator[BinaryIO]:
    """A path is opened and closed here; a stream is read from where it is, left open."""
    if isinstance(source, Path):
        with source.open("rb") as reader:
            yield reader
    else:
        yield source


class LocalArtifactStore:
    """Files under a root folder, written to a temporary file and renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def uri_for(self, key: str) -> str:
        return key

    def path(self, uri: str) -> Path:
        """The file behind a uri; refuses one that leads outside the root."""
        root = self.root.resolve()
        path = (root / uri).resolve()
        if "://" in uri or not path.is_relative_to(root) or path == root:
            raise ArtifactStoreError(f"{uri!r} is not a file of the store under {self.root}")
        return path

    def _writer(self, handle: int) -> BinaryIO:
        """The temporary file's writer (a test stands a full disk in here)."""
        return os.fdopen(handle, "wb")

    def put(self, *, run_uuid: str, name: str, kind: str, source: Path | BinaryIO) -> ArtifactRef:
        key = artifact_key(run_uuid=run_uuid, name=name)
        target = self.path(key)
        folder = target.parent
        created = [p for p in (folder, *folder.parents) if not p.exists()]
        digest = hashlib.sha256()
        size = 0
        temporary: Path | None = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temporary_name = tempfile.mkstemp(dir=folder, prefix=".upload-")
            temporary = Path(temporary_name)
            with _reading(source) as reader, self._writer(handle) as writer:
                while chunk := reader.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    writer.write(chunk)
                writer.flush()
                # On disk before the reference to it is sent anywhere.
                os.fsync(writer.fileno())
            os.replace(temporary, target)
        except BaseException as error:
            if temporary is not None:
                temporary.unlink(missing_ok=True)
            for made in created:  # the folders this put created, innermost first
                try:
                    made.rmdir()
                except OSError:
                    break
            if isinstance(error, OSError):
                raise ArtifactStoreError(
                    f"cannot store artifact {name} under {self.root}: {error.strerror or error}"
                ) from error
            raise
        return ArtifactRef(
            name=name, kind=kind, uri=key, size_bytes=size, sha256=digest.hexdigest()
        )

    def describe(self, uri: str) -> StoredObject | None:
        path = self.path(uri)
        if not path.is_file():
            return None
        return StoredObject(size_bytes=path.stat().st_size, sha256="")

    def open(self, uri: str) -> OpenedObject:
        path = self.path(uri)
        try:
            reader = path.open("rb")
        except FileNotFoundError:
            raise ArtifactNotFound(f"no file {uri} in the store under {self.root}") from None
        except OSError as error:
            raise ArtifactStoreError(f"cannot read {uri}: {error.strerror or error}") from error
        size = os.fstat(reader.fileno()).st_size
        return OpenedObject(stored=StoredObject(size_bytes=size, sha256=""), reader=reader)

    def delete(self, uri: str) -> None:
        path = self.path(uri)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the run's folder, once its last artifact is gone
            path.parent.rmdir()


class _HashingReader:
    """Hashes what boto3 reads. Not seekable, so boto3 reads it once, front to back."""

    def __init__(self, reader: BinaryIO) -> None:
        self._reader = reader
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._reader.read(size)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk


def _s3_reason(error: Exception) -> str:
    """The S3 error code and message, without boto3's wrapping."""
    from botocore.exceptions import ClientError

    cause = error.__context__ if not isinstance(error, ClientError) else error
    if isinstance(cause, ClientError):
        details = cause.response.get("Error", {})
        return f"{details.get('Code', 'error')}: {details.get('Message', '') or cause}"
    return str(error)


class S3ArtifactStore:
    """Objects in an S3-compatible bucket under a key prefix, uploaded by boto3's managed
    transfer (multipart above its threshold) with their sha256 as object metadata."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str = "",
        region: str = "",
        transfer: TransferConfig | None = None,
    ) -> None:
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        except ImportError:
            raise ArtifactStoreError(
                f"s3://{bucket}: an S3 artifact store needs boto3, which is not installed here "
                "(pip install boto3)"
            ) from None

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        config = Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
            # MinIO, Ceph and most self-hosted endpoints serve buckets by path only.
            s3={"addressing_style": "path"} if endpoint_url else {},
        )
        self.client: S3Client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config
        )
        self.transfer = transfer or TransferConfig()

    @property
    def root_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def uri_for(self, key: str) -> str:
        return self.root_uri + key

    def holds(self, uri: str) -> bool:
        return uri.startswith(self.root_uri) and len(uri) > len(self.root_uri)

    def _object_key(self, uri: str) -> str:
        if not self.holds(uri):
            raise ArtifactStoreError(f"{uri!r} is not an object of the store {self.root_uri}")
        return uri[len(f"s3://{self.bucket}/") :]

    def put(self, *, run_uuid: str, name: str, kind: str, source: Path | BinaryIO) -> ArtifactRef:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        uri = self.uri_for(artifact_key(run_uuid=run_uuid, name=name))
        try:
            with _reading(source) as reader:
                # Metadata goes with the first request, so the checksum is taken first;
                # the upload hashes again as it streams, and the two must agree.
                start = reader.tell()
                expected = hashlib.sha256()
                size = 0
                while chunk := reader.read(CHUNK):
                    expected.update(chunk)
                    size += len(chunk)
                reader.seek(start)
                streamed = _HashingReader(reader)
                self.client.upload_fileobj(
                    streamed,  # type: ignore[arg-type]
                    self.bucket,
                    self._object_key(uri),
                    ExtraArgs={
                        "Metadata": {SHA256_METADATA: expected.hexdigest()},
                        "ContentType": "application/octet-stream",
                    },
                    Config=self.transfer,
                )
        except (BotoCoreError, ClientError, Boto3Error, OSError) as error:
            # boto3 aborts a failed multipart upload itself: no object is left behind.
            raise ArtifactStoreError(
                f"cannot upload artifact {name} to {uri}: {_s3_reason(error)}"
            ) from error
        sha256 = expected.hexdigest()
        if streamed.digest.hexdigest() != sha256 or streamed.size != size:
            self.delete(uri)
            raise ArtifactStoreError(f"artifact {name} changed while it was uploaded to {uri}")
        return ArtifactRef(name=name, kind=kind, uri=uri, size_bytes=size, sha256=sha256)

    def describe(self, uri: str) -> StoredObject | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._object_key(uri))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
                return None
            raise ArtifactStoreError(f"cannot look up {uri}: {_s3_reason(error)}") from error
        except BotoCoreError as error:
            raise ArtifactStoreError(f"cannot look up {uri}: {error}") from error
        return StoredObject(
            size_bytes=head["ContentLength"], sha256=head["Metadata"].get(SHA256_METADATA, "")
        )

    def open(self, uri: str) -> OpenedObject:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._object_key(uri))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}:
                raise ArtifactNotFound(f"no object {uri}") from None
            raise ArtifactStoreError(f"cannot read {uri}: {_s3_reason(error)}") from error
        except BotoCoreError as error:
            raise ArtifactStoreError(f"cannot read {uri}: {error}") from error
        stored = StoredObject(
            size_bytes=answer["ContentLength"],
            sha256=answer["Metadata"].get(SHA256_METADATA, ""),
        )
        return OpenedObject(stored=stored, reader=answer["Body"])

    def delete(self, uri: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object_key(uri))
        except (BotoCoreError, ClientError) as error:
            raise ArtifactStoreError(f"cannot delete {uri}: {_s3_reason(error)}") from error


@dataclass(frozen=True, kw_only=True)
class S3Location:
    bucket: str
    prefix: str


def parse_artifact_url(url: str) -> S3Location:
    """PODIUM_ARTIFACT_URL's bucket and key prefix; a malformed value is refused by name."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ArtifactStoreError(
            f"PODIUM_ARTIFACT_URL={url!r}: expected s3://bucket or s3://bucket/prefix"
        )
    return S3Location(bucket=parts.netloc, prefix=parts.path.strip("/"))


def store_from_url(url: str, *, endpoint_url: str = "", region: str = "") -> S3ArtifactStore:
    location = parse_artifact_url(url)
    return S3ArtifactStore(
        bucket=location.bucket, prefix=location.prefix, endpoint_url=endpoint_url, region=region
    )


def store_from_env(environ: Mapping[str, str] = os.environ) -> ArtifactStore | None:
    """The store named by PODIUM_ARTIFACT_URL (S3) or else PODIUM_ARTIFACT_DIR (a folder),
    or None when the worker keeps no files."""
    url = environ.get("PODIUM_ARTIFACT_URL", "")
    if url:
        return store_from_url(
            url,
            endpoint_url=environ.get("PODIUM_S3_ENDPOINT_URL", ""),
            region=environ.get("AWS_DEFAULT_REGION", ""),
        )
    folder = environ.get("PODIUM_ARTIFACT_DIR", "")
    return LocalArtifactStore(Path(folder)) if folder else None


__all__ = [
    "ArtifactNotFound",
    "ArtifactStore",
    "ArtifactStoreError",
    "LocalArtifactStore",
    "OpenedObject",
    "S3ArtifactStore",
    "StoredObject",
    "artifact_key",
    "parse_artifact_url",
    "store_from_env",
    "store_from_url",
]
