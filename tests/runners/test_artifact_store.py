"""The artifact stores: a local folder, and an S3-compatible bucket served by moto's real
HTTP server (boto3 talks to it over HTTP, exactly as to MinIO or S3)."""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from moto.server import ThreadedMotoServer
from mypy_boto3_s3 import S3Client

from runners.artifact_store import (
    ArtifactNotFound,
    ArtifactStoreError,
    LocalArtifactStore,
    S3ArtifactStore,
    store_from_env,
)

RUN = "0123456789abcdef0123456789abcdef"
MIB = 1024 * 1024
# S3's smallest multipart part is 5 MiB: these make an 11 MiB file go up in three parts.
SMALL_PARTS = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    env: dict[str, str]  # what a process needs to reach it, besides PODIUM_ARTIFACT_URL

    def client(self) -> S3Client:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="podium-test",
            aws_secret_access_key="podium-test-secret",
        )

    def new_bucket(self) -> str:
        name = f"podium-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def start_moto() -> ThreadedMotoServer:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    return server


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    """moto's S3 server on a free local port, with the credentials boto3 reads from env."""
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)  # one log line per request otherwise
    server = start_moto()
    host, port = server.get_host_and_port()
    env = {
        "PODIUM_S3_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "podium-test",
        "AWS_SECRET_ACCESS_KEY": "podium-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        # boto3 in this process finds the credentials where a worker process does.
        for name, value in env.items():
            patch.setenv(name, value)
        yield S3Endpoint(url=env["PODIUM_S3_ENDPOINT_URL"], env=env)
    server.stop()
    werkzeug.setLevel(level)


def s3_store(endpoint: S3Endpoint, bucket: str, **kwargs: object) -> S3ArtifactStore:
    return S3ArtifactStore(
        bucket=bucket,
        endpoint_url=endpoint.url,
        region="us-east-1",
        **kwargs,  # type: ignore[arg-type]
    )


# --- S3 ----------------------------------------------------------------------------------


def test_s3_round_trip_in_parts_with_the_checksum_as_metadata(s3_endpoint: S3Endpoint) -> None:
    bucket = s3_endpoint.new_bucket()
    store = s3_store(s3_endpoint, bucket, prefix="/team/ckpts/", transfer=SMALL_PARTS)
    data = os.urandom(11 * MIB)
    source = io.BytesIO(data)

    ref = store.put(run_uuid=RUN, name="model.safetensors", kind="checkpoint", source=source)

    assert ref.uri == f"s3://{bucket}/team/ckpts/runs/{RUN}/model.safetensors"
    assert (ref.size_bytes, ref.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    head = s3_endpoint.client().head_object(
        Bucket=bucket, Key=f"team/ckpts/runs/{RUN}/model.safetensors"
    )
    assert head["Metadata"] == {"sha256": ref.sha256}
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload of three parts
    described = store.describe(ref.uri)
    assert described is not None
    assert (described.size_bytes, described.sha256) == (len(data), ref.sha256)
    opened = store.open(ref.uri)
    try:
        assert opened.reader.read() == data
    finally:
        opened.reader.close()
    assert opened.stored == described


def test_s3_small_file_from_a_path_and_delete(s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    store = s3_store(s3_endpoint, s3_endpoint.new_bucket())
    path = tmp_path / "config.json"
    path.write_bytes(b'{"lr": 0.001}\n')
    ref = store.put(run_uuid=RUN, name="config.json", kind="other", source=path)
    assert ref.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    store.delete(ref.uri)
    assert store.describe(ref.uri) is None
    with pytest.raises(ArtifactNotFound):
        store.open(ref.uri)


def test_s3_refuses_uris_outside_its_bucket_and_prefix(s3_endpoint: S3Endpoint) -> None:
    store = s3_store(s3_endpoint, "podium-mine", prefix="a")
    for uri in ("s3://podium-other/a/runs/x/y", "s3://podium-mine/b/runs/x/y", "runs/x/y"):
        with pytest.raises(ArtifactStoreError, match="is not an object of the store"):
            store.describe(uri)


def test_s3_missing_bucket_is_a_clear_error(s3_endpoint: S3Endpoint) -> None:
    store = s3_store(s3_endpoint, "podium-no-such-bucket")
    with pytest.raises(ArtifactStoreError) as raised:
        store.put(run_uuid=RUN, name="a.bin", kind="other", source=io.BytesIO(b"x" * 10))
    assert str(raised.value) == (
        f"cannot upload artifact a.bin to s3://podium-no-such-bucket/runs/{RUN}/a.bin: "
        "NoSuchBucket: The specified bucket does not exist"
    )


class FailsOnSecondPass(io.BytesIO):
    """A source whose disk fails while it is uploaded (after the checksum pass)."""

    def __init__(self, data: bytes, *, fail_after: int) -> None:
        super().__init__(data)
        self.fail_after = fail_after
        self.passes = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self.passes += 1
        return super().seek(offset, whence)

    def read(self, size: int | None = -1) -> bytes:
        if self.passes and self.tell() >= self.fail_after:
            raise OSError(errno.EIO, "Input/output error")
        return super().read(size)


def test_s3_upload_failing_midway_leaves_no_object_and_no_open_upload(
    s3_endpoint: S3Endpoint,
) -> None:
    bucket = s3_endpoint.new_bucket()
    store = s3_store(s3_endpoint, bucket, transfer=SMALL_PARTS)
    source = FailsOnSecondPass(os.urandom(11 * MIB), fail_after=6 * MIB)
    with pytest.raises(ArtifactStoreError, match="Input/output error"):
        store.put(run_uuid=RUN, name="big.bin", kind="checkpoint", source=source)
    client = s3_endpoint.client()
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_s3_stopped_server_is_a_clear_error() -> None:
    server = start_moto()
    host, port = server.get_host_and_port()
    store = S3ArtifactStore(
        bucket="podium-gone", endpoint_url=f"http://{host}:{port}", region="us-east-1"
    )
    server.stop()
    with pytest.raises(ArtifactStoreError, match="Could not connect to the endpoint URL"):
        store.put(run_uuid=RUN, name="a.bin", kind="other", source=io.BytesIO(b"weights"))


def test_the_environment_picks_the_store(tmp_path: Path) -> None:
    s3 = store_from_env(
        {
            "PODIUM_ARTIFACT_URL": "s3://podium-bucket/some/prefix/",
            "PODIUM_S3_ENDPOINT_URL": "http://127.0.0.1:9",
            "PODIUM_ARTIFACT_DIR": str(tmp_path),
        }
    )
    assert isinstance(s3, S3ArtifactStore)
    assert s3.uri_for("runs/a/b") == "s3://podium-bucket/some/prefix/runs/a/b"
    local = store_from_env({"PODIUM_ARTIFACT_DIR": str(tmp_path)})
    assert isinstance(local, LocalArtifactStore)
    assert local.root == tmp_path
    assert store_from_env({}) is None
    for url in ("s3://", "https://podium-bucket/x", "podium-bucket"):
        with pytest.raises(ArtifactStoreError, match="expected s3://bucket"):
            store_from_env({"PODIUM_ARTIFACT_URL": url})


# --- Local folder ------------------------------------------------------------------------


class FullDisk(io.FileIO):
    """A file on a disk with `room` bytes left: writing past it fails with ENOSPC."""

    def __init__(self, handle: int, *, room: int) -> None:
        super().__init__(handle, "wb")
        self.room = room

    def write(self, data: object) -> int:
        if self.tell() + len(data) > self.room:  # type: ignore[arg-type]
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)  # type: ignore[arg-type]


class FullLocalStore(LocalArtifactStore):
    """A local store whose disk has only `room` bytes left."""

    def __init__(self, root: Path, *, room: int) -> None:
        super().__init__(root)
        self.room = room

    def _writer(self, handle: int) -> BinaryIO:
        return io.BufferedWriter(FullDisk(handle, room=self.room))


def test_local_round_trip(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    data = os.urandom(3 * MIB + 17)
    ref = store.put(run_uuid=RUN, name="ckpt.bin", kind="checkpoint", source=io.BytesIO(data))
    assert ref.uri == f"runs/{RUN}/ckpt.bin"
    assert (tmp_path / "store" / ref.uri).read_bytes() == data
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    opened = store.open(ref.uri)
    with opened.reader:  # type: ignore[attr-defined]
        assert opened.reader.read() == data
    assert store.describe(ref.uri) == opened.stored
    store.delete(ref.uri)
    assert store.describe(ref.uri) is None
    assert not (tmp_path / "store" / "runs" / RUN).exists()


def test_local_full_disk_leaves_no_temporary_file_or_folder(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = FullLocalStore(root, room=3 * MIB)
    with pytest.raises(ArtifactStoreError) as raised:
        store.put(
            run_uuid=RUN, name="ckpt.bin", kind="checkpoint", source=io.BytesIO(b"w" * 5 * MIB)
        )
    assert "cannot store artifact ckpt.bin" in str(raised.value)
    assert "No space left on device" in str(raised.value)
    assert not root.exists()  # not even the folders this put created


def test_local_full_disk_keeps_the_previous_version(tmp_path: Path) -> None:
    root = tmp_path / "store"
    first = LocalArtifactStore(root).put(
        run_uuid=RUN, name="ckpt.bin", kind="checkpoint", source=io.BytesIO(b"v1")
    )
    with pytest.raises(ArtifactStoreError, match="No space left on device"):
        FullLocalStore(root, room=3 * MIB).put(
            run_uuid=RUN, name="ckpt.bin", kind="checkpoint", source=io.BytesIO(b"v2" * 4 * MIB)
        )
    assert sorted(p.name for p in (root / "runs" / RUN).iterdir()) == ["ckpt.bin"]
    assert (root / first.uri).read_bytes() == b"v1"


@pytest.mark.parametrize(
    "uri", ["../outside.bin", "/etc/passwd", "runs/../../x", "s3://bucket/runs/a/b", "", "."]
)
def test_local_refuses_uris_outside_its_folder(tmp_path: Path, uri: str) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(ArtifactStoreError, match="is not a file of the store"):
        store.open(uri)
