"""A run's artifacts over the API: its owner uploads files, whoever may see the run downloads
them, streamed from the artifact store (local or S3) with their checksum in a header."""

from __future__ import annotations

import base64
import logging
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.errors import ApiError, field_error
from api.selectors import run_get
from api.views import DETAIL_401, DETAIL_403, DETAIL_404, DETAIL_409, ERRORS_400, ApiErrorsMixin
from tracking.artifacts import (
    SHA256_HEX,
    ArtifactConflict,
    ArtifactError,
    ArtifactGone,
    ArtifactStoreFailure,
    ArtifactUnavailable,
    artifact_get,
    artifact_list,
    artifact_open,
    artifact_upload,
)
from tracking.models import Artifact, ArtifactKind, Run

logger = logging.getLogger(__name__)

CHECKSUM_HEADER = "X-Checksum-SHA256"
# Room for the multipart framing and the small form fields around the file itself.
MULTIPART_SLACK_BYTES = 1024 * 1024
STORE_RETRY_AFTER_S = 30

DETAIL_410 = OpenApiResponse(
    s.DetailSerializer, description="Recorded, but missing from the store or not as recorded."
)
DETAIL_413 = OpenApiResponse(s.DetailSerializer, description="The file is over the size limit.")
DETAIL_503 = OpenApiResponse(
    s.DetailSerializer, description="The artifact store is failing; try again later."
)


class ArtifactSerializer(serializers.ModelSerializer[Artifact]):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Artifact
        fields = ["name", "kind", "size_bytes", "sha256", "created_at", "download_url"]

    def get_download_url(self, artifact: Artifact) -> str:
        path = reverse(
            "api:run-artifact", kwargs={"uuid": artifact.run.uuid, "name": artifact.name}
        )
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class ArtifactUploadSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(allow_empty_file=True, use_url=False)
    sha256 = serializers.CharField(
        max_length=64, help_text="The file's SHA-256, hexadecimal; the upload must match it."
    )
    name = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Letters, digits, '.', '_' and '-' (no paths); the file's own name if left out.",
    )
    kind = serializers.ChoiceField(choices=ArtifactKind.choices, default=ArtifactKind.OTHER)


class UploadSizeLimit(FileUploadHandler):
    """Counts an upload's file bytes as they arrive and stops storing them past the limit,
    so an oversized file never fills the server's disk; the view then answers 413."""

    def __init__(self, request: HttpRequest, *, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.exceeded = True
            # The rest of the body is read and dropped, so the client gets the 413.
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _too_large(limit: int) -> ApiError:
    return ApiError(
        f"The file is larger than the {limit} bytes an artifact may have.",
        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        field="file",
    )


def _visible_run(request: Request, uuid: UUID) -> Run:
    run = run_get(viewer=request.user, uuid=uuid)
    if run is None:
        raise NotFound("No such run, or it is private.")
    return run


class RunArtifactsView(ApiErrorsMixin, APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]
    parser_classes = [MultiPartParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before authentication, whose CSRF check may already read a session user's form.
        if request.method == "POST":
            self.size_limit = UploadSizeLimit(
                request._request, limit=settings.PODIUM_MAX_ARTIFACT_BYTES
            )
            request.upload_handlers.insert(0, self.size_limit)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        summary="A run's artifacts, with their size, checksum and download address",
        responses={200: ArtifactSerializer(many=True), 404: DETAIL_404},
    )
    def get(self, request: Request, uuid: UUID) -> Response:
        run = _visible_run(request, uuid)
        artifacts = artifact_list(run=run).select_related("run")
        return Response(ArtifactSerializer(artifacts, many=True, context={"request": request}).data)

    @extend_schema(
        summary="Upload an artifact to your run, checked against the SHA-256 you send",
        description=(
            "Multipart form: `file`, its `sha256` (hex), optionally `name` (the file's own "
            "name by default) and `kind`. Nothing is stored unless the checksum matches. "
            "Names are unique per run. Runs executed by Podium take their artifacts from "
            "their job only (409)."
        ),
        request={"multipart/form-data": ArtifactUploadSerializer},
        responses={
            201: ArtifactSerializer,
            400: ERRORS_400,
            401: DETAIL_401,
            403: DETAIL_403,
            404: DETAIL_404,
            409: DETAIL_409,
            413: DETAIL_413,
            503: DETAIL_503,
        },
    )
    def post(self, request: Request, uuid: UUID) -> Response:
        limit: int = settings.PODIUM_MAX_ARTIFACT_BYTES
        run = _visible_run(request, uuid)
        if run.owner_id != request.user.pk:
            raise PermissionDenied("Only the run's owner can upload artifacts to it.")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit + MULTIPART_SLACK_BYTES:
            raise _too_large(limit)  # refused before a byte of the body is read
        form = ArtifactUploadSerializer(data=request.data)
        if self.size_limit.exceeded:
            raise _too_large(limit)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        upload = data["file"]
        if upload.size is not None and upload.size > limit:
            raise _too_large(limit)
        name = data.get("name") or upload.name or ""
        try:
            artifact = artifact_upload(
                run=run, name=name, kind=data["kind"], source=upload, sha256=data["sha256"]
            )
        except ArtifactConflict as error:
            raise ApiError(str(error), status_code=status.HTTP_409_CONFLICT, field="name") from None
        except ArtifactStoreFailure as error:
            logger.error("run %s: upload of %s failed: %s", run.uuid, name, error)
            raise ApiError(
                "The artifact store could not take the file; nothing was stored. Try again later.",
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                field="file",
                wait=STORE_RETRY_AFTER_S,
            ) from None
        except ArtifactError as error:
            raise field_error(str(error), fields=form.fields.keys()) from None
        artifact.run = run
        body = ArtifactSerializer(artifact, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


class RunArtifactDownloadView(ApiErrorsMixin, APIView):
    permission_classes = [AllowAny]

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        # Errors in JSON whatever the client accepts (a download's 200 is the file itself),
        # rather than 406 to a client that asks for application/octet-stream.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        summary="Download an artifact, checked against its recorded SHA-256 as it streams",
        description=(
            f"The file itself (application/octet-stream), its SHA-256 in the `{CHECKSUM_HEADER}` "
            "header (hex) and in `Repr-Digest` (RFC 9530). Should the stored bytes differ from "
            "the record, the download breaks off before its last bytes."
        ),
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            404: DETAIL_404,
            410: DETAIL_410,
            503: DETAIL_503,
        },
    )
    def get(self, request: Request, uuid: UUID, name: str) -> StreamingHttpResponse:
        run = _visible_run(request, uuid)
        artifact = artifact_get(run=run, name=name)
        if artifact is None:
            raise NotFound(f"This run has no artifact {name!r}.")
        try:
            content = artifact_open(artifact=artifact)
        except ArtifactGone as error:
            raise ApiError(str(error), status_code=status.HTTP_410_GONE) from None
        except ArtifactUnavailable as error:
            logger.error("run %s: artifact %s unavailable: %s", run.uuid, name, error)
            raise ApiError(
                "The artifact store cannot be reached; try again later.",
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                wait=STORE_RETRY_AFTER_S,
            ) from None
        response = StreamingHttpResponse(content, content_type="application/octet-stream")
        response["Content-Length"] = str(artifact.size_bytes)
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=artifact.name
        )
        response[CHECKSUM_HEADER] = artifact.sha256
        response["ETag"] = f'"{artifact.sha256}"'
        if SHA256_HEX.fullmatch(artifact.sha256):
            digest = base64.b64encode(bytes.fromhex(artifact.sha256)).decode()
            response["Repr-Digest"] = f"sha-256=:{digest}:"
        return response
