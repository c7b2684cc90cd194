"""Artifacts over the API: the owner uploads (checksum checked, names validated, size
limited), whoever may see the run downloads, streamed and checked, from a folder or S3."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from tests.api.conftest import assert_field_error
from tests.factories import RunFactory
from tests.runners.test_artifact_store import (  # noqa: F401 - s3_endpoint is a fixture
    FullLocalStore,
    S3Endpoint,
    s3_endpoint,
    start_moto,
)
from tracking import artifacts
from tracking.artifacts import ArtifactGone
from tracking.models import Artifact, ProvenanceTier, Run, Visibility
from tracking.status import RunStatus

pytestmark = pytest.mark.django_db

DATA = os.urandom(40_000)
SHA = hashlib.sha256(DATA).hexdigest()


def external_run(owner: User, **fields: Any) -> Run:
    values: dict[str, Any] = {
        "owner": owner,
        "status": RunStatus.SUCCEEDED,
        "provenance_tier": ProvenanceTier.SELF_REPORTED,
    }
    values.update(fields)
    return RunFactory.create(**values)


def artifacts_url(run: Run) -> str:
    return f"/api/v1/runs/{run.uuid}/artifacts/"


def upload(
    client: APIClient, run: Run, *, data: bytes = DATA, filename: str = "model.bin", **fields: Any
) -> Any:
    body = {"file": SimpleUploadedFile(filename, data), "sha256": SHA, **fields}
    return client.post(artifacts_url(run), body, format="multipart")


def download(client: APIClient, run: Run, name: str, **headers: Any) -> Any:
    return client.get(f"{artifacts_url(run)}{name}/", **headers)


def stored_files() -> list[Path]:
    return [path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()]


def assert_nothing_stored(run: Run) -> None:
    assert not Artifact.objects.filter(run=run).exists()
    assert not stored_files()


@pytest.fixture
def owner_client(alice: User, client_for: Callable[[User], APIClient]) -> APIClient:
    return client_for(alice)


# --- Upload ------------------------------------------------------------------------------


def test_the_owner_uploads_and_anyone_downloads(alice: User, owner_client: APIClient) -> None:
    run = external_run(alice)
    response = upload(owner_client, run, kind="checkpoint")
    assert response.status_code == 201, response.content
    body = response.json()
    url = f"http://testserver/api/v1/runs/{run.uuid}/artifacts/model.bin/"
    assert body | {"created_at": None} == {
        "name": "model.bin",
        "kind": "checkpoint",
        "size_bytes": len(DATA),
        "sha256": SHA,
        "created_at": None,
        "download_url": url,
    }
    assert (Path(settings.MEDIA_ROOT) / f"runs/{run.uuid.hex}/model.bin").read_bytes() == DATA

    # Anonymous, asking for the file type as a download client would.
    got = download(APIClient(), run, "model.bin", HTTP_ACCEPT="application/octet-stream")
    assert got.status_code == 200
    assert b"".join(got.streaming_content) == DATA
    assert got["Content-Type"] == "application/octet-stream"
    assert got["Content-Length"] == str(len(DATA))
    assert got["Content-Disposition"] == 'attachment; filename="model.bin"'
    assert got["X-Checksum-SHA256"] == SHA
    assert got["Repr-Digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(SHA)).decode()}:"
    listed = APIClient().get(artifacts_url(run))
    assert [a["name"] for a in listed.json()] == ["model.bin"]


def test_the_name_defaults_to_the_files_own(alice: User, owner_client: APIClient) -> None:
    run = external_run(alice)
    response = upload(owner_client, run, filename="tokenizer.json")
    assert response.status_code == 201
    assert response.json()["name"] == "tokenizer.json"
    assert response.json()["kind"] == "other"


def test_a_checksum_mismatch_stores_nothing(alice: User, owner_client: APIClient) -> None:
    run = external_run(alice)
    response = upload(owner_client, run, data=DATA[:-1])  # cut short on the way
    assert_field_error(response, "sha256", f"SHA-256 is {hashlib.sha256(DATA[:-1]).hexdigest()}")
    assert_nothing_stored(run)
    malformed = upload(owner_client, run, sha256="md5:abc")
    assert_field_error(malformed, "sha256", "64 hexadecimal digits")


@pytest.mark.parametrize(
    "name", ["../evil.bin", "runs/x", "..", ".bashrc", "a\\b", "ok..no", "%2e%2e", "x" * 201]
)
def test_names_that_could_be_paths_are_refused(
    alice: User, owner_client: APIClient, name: str
) -> None:
    run = external_run(alice)
    response = upload(owner_client, run, name=name)
    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["name"]
    assert_nothing_stored(run)


def test_only_the_owner_may_upload(
    alice: User, bob: User, client_for: Callable[[User], APIClient]
) -> None:
    run = external_run(alice)
    assert upload(APIClient(), run).status_code == 401
    refused = upload(client_for(bob), run)
    assert refused.status_code == 403
    assert "Only the run's owner" in refused.json()["detail"]
    private = external_run(alice, visibility=Visibility.PRIVATE)
    assert upload(client_for(bob), private).status_code == 404
    assert_nothing_stored(run)


def test_a_name_is_taken_once(alice: User, owner_client: APIClient) -> None:
    run = external_run(alice)
    assert upload(owner_client, run).status_code == 201
    again = upload(owner_client, run, data=b"other", sha256=hashlib.sha256(b"other").hexdigest())
    assert again.status_code == 409
    assert again.json()["errors"] == {
        "name": ["name: this run already has an artifact 'model.bin'."]
    }
    assert (Path(settings.MEDIA_ROOT) / f"runs/{run.uuid.hex}/model.bin").read_bytes() == DATA


def test_a_run_executed_by_podium_takes_no_uploads(alice: User, owner_client: APIClient) -> None:
    run = external_run(alice, provenance_tier=ProvenanceTier.EXECUTED)
    response = upload(owner_client, run)
    assert response.status_code == 409
    assert "Podium executed this run" in response.json()["detail"]
    assert_nothing_stored(run)


@pytest.mark.parametrize("size", [5_000, 2 * 1024 * 1024])  # read and stopped; refused unread
def test_a_file_over_the_limit_is_refused_with_413(
    alice: User, owner_client: APIClient, settings: Settings, size: int
) -> None:
    settings.PODIUM_MAX_ARTIFACT_BYTES = 4_096
    run = external_run(alice)
    data = b"w" * size
    response = upload(owner_client, run, data=data, sha256=hashlib.sha256(data).hexdigest())
    assert response.status_code == 413
    assert response.json()["errors"] == {
        "file": ["The file is larger than the 4096 bytes an artifact may have."]
    }
    assert_nothing_stored(run)
    exact = b"w" * 4_096
    fits = upload(owner_client, run, data=exact, sha256=hashlib.sha256(exact).hexdigest())
    assert fits.status_code == 201


def test_a_failing_store_answers_503_and_keeps_nothing(
    alice: User, owner_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = FullLocalStore(Path(settings.MEDIA_ROOT), room=1_000)  # ENOSPC partway through
    monkeypatch.setattr(artifacts, "artifact_store", lambda: full)
    run = external_run(alice)
    response = upload(owner_client, run)
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "nothing was stored" in response.json()["detail"]
    assert_nothing_stored(run)


# --- Download ----------------------------------------------------------------------------


def test_a_private_runs_artifacts_are_its_owners_only(
    alice: User, bob: User, owner_client: APIClient, client_for: Callable[[User], APIClient]
) -> None:
    run = external_run(alice, visibility=Visibility.PRIVATE)
    assert upload(owner_client, run).status_code == 201
    for client in (APIClient(), client_for(bob)):
        assert download(client, run, "model.bin").status_code == 404
        assert client.get(artifacts_url(run)).status_code == 404
    assert b"".join(download(owner_client, run, "model.bin").streaming_content) == DATA


def test_unknown_and_path_like_names_are_not_found(alice: User, owner_client: APIClient) -> None:
    run = external_run(alice)
    assert upload(owner_client, run).status_code == 201
    missing = download(APIClient(), run, "other.bin")
    assert missing.status_code == 404
    assert "has no artifact 'other.bin'" in missing.json()["detail"]
    for name in ("..%2Fmodel.bin", "..%2F..%2F..%2Fetc%2Fpasswd", ".."):
        assert download(APIClient(), run, name).status_code == 404


def test_bytes_that_differ_from_the_record_are_never_served_whole(
    alice: User, owner_client: APIClient
) -> None:
    run = external_run(alice)
    data = os.urandom(5 * 1024 * 1024 // 2)  # streamed in several chunks
    sha256 = hashlib.sha256(data).hexdigest()
    assert upload(owner_client, run, data=data, sha256=sha256).status_code == 201
    path = Path(settings.MEDIA_ROOT) / f"runs/{run.uuid.hex}/model.bin"
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit flipped

    response = download(APIClient(), run, "model.bin")
    assert response.status_code == 200
    received: list[bytes] = []
    with pytest.raises(ArtifactGone, match="differ from the recorded checksum"):
        received.extend(response.streaming_content)
    # The first chunks went out as they were read; the last was held back.
    assert 0 < len(b"".join(received)) < len(data)

    path.write_bytes(DATA[:100])
    short = download(APIClient(), run, "model.bin")
    assert short.status_code == 410
    assert "not the one recorded" in short.json()["detail"]
    path.unlink()
    gone = download(APIClient(), run, "model.bin")
    assert gone.status_code == 410
    assert "missing from the artifact store" in gone.json()["detail"]


# --- S3 ----------------------------------------------------------------------------------


def test_upload_and_download_through_s3(
    alice: User,
    owner_client: APIClient,
    settings: Settings,
    s3_endpoint: S3Endpoint,  # noqa: F811
) -> None:
    bucket = s3_endpoint.new_bucket()
    settings.PODIUM_ARTIFACT_URL = f"s3://{bucket}/api"
    settings.PODIUM_S3_ENDPOINT_URL = s3_endpoint.url
    run = external_run(alice)
    assert upload(owner_client, run).status_code == 201
    artifact = Artifact.objects.get(run=run)
    assert artifact.uri == f"s3://{bucket}/api/runs/{run.uuid.hex}/model.bin"
    head = s3_endpoint.client().head_object(Bucket=bucket, Key=f"api/runs/{run.uuid.hex}/model.bin")
    assert head["Metadata"] == {"sha256": SHA}
    assert not stored_files()

    got = download(APIClient(), run, "model.bin")
    assert b"".join(got.streaming_content) == DATA
    assert got["X-Checksum-SHA256"] == SHA

    # Artifacts recorded before the switch to S3 stay readable from MEDIA_ROOT.
    settings.PODIUM_ARTIFACT_URL = ""
    local = external_run(alice)
    assert upload(owner_client, local).status_code == 201
    settings.PODIUM_ARTIFACT_URL = f"s3://{bucket}/api"
    assert b"".join(download(APIClient(), local, "model.bin").streaming_content) == DATA


def test_an_unreachable_s3_store_answers_503(
    alice: User,
    settings: Settings,
    s3_endpoint: S3Endpoint,  # noqa: F811
) -> None:
    server = start_moto()
    host, port = server.get_host_and_port()
    server.stop()
    settings.PODIUM_ARTIFACT_URL = "s3://podium-down/api"
    settings.PODIUM_S3_ENDPOINT_URL = f"http://{host}:{port}"
    run = external_run(alice)
    Artifact.objects.create(
        run=run,
        name="model.bin",
        kind="checkpoint",
        uri=f"s3://podium-down/api/runs/{run.uuid.hex}/model.bin",
        size_bytes=len(DATA),
        sha256=SHA,
    )
    response = download(APIClient(), run, "model.bin")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "cannot be reached" in response.json()["detail"]
