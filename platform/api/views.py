"""The REST API. Each view only adapts HTTP to services and selectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from django.contrib.auth.models import User
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotAuthenticated, NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.errors import api_exception_handler, field_error
from api.selectors import (
    RunFilters,
    backbone_list,
    method_list,
    run_get,
    run_list,
    suite_published_latest,
    token_list,
)
from api.services import (
    IdempotencyConflict,
    request_fingerprint,
    run_submit,
    token_create,
    token_revoke,
)
from catalog.models import Benchmark, Suite
from catalog.selectors import benchmark_list, suite_list
from dashboard.selectors import suite_leaderboard
from tracking.jobs import run_cancel, runs_request
from tracking.models import Run
from tracking.rescoring import run_create_from_predictions
from tracking.selectors import job_queue
from tracking.services import RunInputError, run_create_external
from tracking.status import InvalidTransition

T = TypeVar("T")

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 255

ERRORS_400 = OpenApiResponse(
    inline_serializer(
        name="ValidationErrors",
        fields={
            "errors": serializers.DictField(
                child=serializers.ListField(child=serializers.CharField()),
                help_text='Messages by input field, e.g. {"scores.accuracy": ["..."]}; '
                '"non_field_errors" for the request as a whole.',
            )
        },
    ),
    description="Invalid input.",
)
DETAIL_401 = OpenApiResponse(s.DetailSerializer, description="Not authenticated.")
DETAIL_403 = OpenApiResponse(s.DetailSerializer, description="Not allowed.")
DETAIL_404 = OpenApiResponse(s.DetailSerializer, description="Not found (or not visible).")
DETAIL_409 = OpenApiResponse(s.DetailSerializer, description="Conflict.")


class ApiErrorsMixin:
    """Validation errors as {"errors": {field: [message]}} on every API view."""

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return api_exception_handler


def _service_call(call: Callable[[], T], *, fields: serializers.Serializer[Any]) -> T:
    """Run a service; its input errors become 400s on the field their message names."""
    try:
        return call()
    except RunInputError as error:
        raise field_error(str(error), fields=fields.fields.keys()) from None


def _user(request: Request) -> User:
    # Only reached behind IsAuthenticated, where DRF has set a real user.
    assert isinstance(request.user, User)
    return request.user


# --- Tokens ------------------------------------------------------------------------------


class TokenListCreateView(ApiErrorsMixin, generics.GenericAPIView[Any]):
    permission_classes = [IsAuthenticated]
    serializer_class = s.TokenSerializer

    def get_queryset(self) -> Any:
        return token_list(user=_user(self.request))

    @extend_schema(
        summary="Your API tokens, newest first (keys are never shown again)",
        responses={200: s.TokenSerializer(many=True), 401: DETAIL_401},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.TokenSerializer(page, many=True).data)

    @extend_schema(
        summary="Create an API token; its key is in this response only",
        request=s.TokenCreateInputSerializer,
        responses={201: s.TokenCreatedSerializer, 400: ERRORS_400, 401: DETAIL_401},
    )
    def post(self, request: Request) -> Response:
        data = s.TokenCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        created = token_create(user=_user(request), name=data.validated_data["name"])
        body = s.TokenCreatedSerializer(created.token, context={"key": created.key}).data
        return Response(body, status=status.HTTP_201_CREATED)


class TokenRevokeView(ApiErrorsMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Revoke one of your tokens; it stops working at once",
        responses={204: None, 401: DETAIL_401, 404: DETAIL_404},
    )
    def delete(self, request: Request, pk: int) -> Response:
        token_revoke(token=get_object_or_404(token_list(user=_user(request)), pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Catalog -----------------------------------------------------------------------------


class PublicListView(ApiErrorsMixin, generics.ListAPIView[Any]):
    permission_classes = [AllowAny]


class BenchmarkListView(PublicListView):
    serializer_class = s.BenchmarkSerializer

    def get_queryset(self) -> Any:
        return benchmark_list()


class BenchmarkDetailView(ApiErrorsMixin, generics.RetrieveAPIView[Benchmark]):
    permission_classes = [AllowAny]
    serializer_class = s.BenchmarkDetailSerializer
    lookup_field = "key"

    def get_queryset(self) -> Any:
        return benchmark_list()


class SuiteListView(PublicListView):
    serializer_class = s.SuiteSerializer

    def get_queryset(self) -> Any:
        return suite_list()


class SuiteDetailView(ApiErrorsMixin, generics.RetrieveAPIView[Suite]):
    permission_classes = [AllowAny]
    serializer_class = s.SuiteDetailSerializer
    lookup_field = "key"

    def get_queryset(self) -> Any:
        return suite_list()


class MethodListView(PublicListView):
    serializer_class = s.MethodSerializer

    def get_queryset(self) -> Any:
        return method_list()


class BackboneListView(PublicListView):
    serializer_class = s.BackboneSerializer

    def get_queryset(self) -> Any:
        return backbone_list()


# --- Runs --------------------------------------------------------------------------------


def _run_filters(query: dict[str, Any]) -> RunFilters:
    split = s.RunListQuerySerializer.split
    return RunFilters(
        tasks=query.get("task", ()),
        benchmarks=split(query.get("benchmark", "")),
        methods=split(query.get("method", "")),
        backbones=split(query.get("backbone", "")),
        statuses=query.get("status", ()),
        owners=split(query.get("owner", "")),
        tags=split(query.get("tag", "")),
        ordering=query.get("ordering", "-created_at"),
    )


def _idempotency_key(request: Request) -> str:
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise ValidationError({IDEMPOTENCY_HEADER: [f"At most {IDEMPOTENCY_KEY_MAX} characters."]})
    return key


class RunListCreateView(ApiErrorsMixin, generics.GenericAPIView[Run]):
    serializer_class = s.RunSerializer

    @extend_schema(
        summary="Runs you may see (public ones and your own), filtered and ordered",
        parameters=[s.RunListQuerySerializer],
        responses={200: s.RunSerializer(many=True), 400: ERRORS_400},
    )
    def get(self, request: Request) -> Response:
        query = s.RunListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        runs = run_list(viewer=request.user, filters=_run_filters(query.validated_data))
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(s.RunSerializer(page, many=True).data)

    @extend_schema(
        summary="Record a run made elsewhere, from its scores or from predictions",
        description=(
            "Give `scores` ({metric: value}, recorded as self-reported) or `predictions` with "
            "their `split` (scored by Podium against its gold labels). With an "
            "`Idempotency-Key` header a retried request returns the first request's run "
            "(200) instead of recording a second; the same key with another body is a 409."
        ),
        request=s.RunCreateInputSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                str,
                OpenApiParameter.HEADER,
                description="Any unique string, at most 255 characters, per submission.",
            )
        ],
        responses={
            201: s.RunDetailSerializer,
            200: OpenApiResponse(s.RunDetailSerializer, description="A replayed request."),
            400: ERRORS_400,
            401: DETAIL_401,
            409: DETAIL_409,
        },
    )
    def post(self, request: Request) -> Response:
        key = _idempotency_key(request)
        owner = _user(request)
        form = s.RunCreateInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        common = {
            "owner": owner,
            "method": data["method"],
            "backbone": data["backbone"],
            "task": data["task"],
            "config": data["config"],
            "seed": data["seed"],
            "visibility": data["visibility"],
            "tags": data["tags"],
            "description": data["description"],
        }

        def create() -> Run:
            if "scores" in data:
                return _service_call(
                    lambda: run_create_external(**common, scores=data["scores"]), fields=form
                )
            return _service_call(
                lambda: run_create_from_predictions(
                    **common,
                    split=data["split"],
                    predictions=data["predictions"],
                    fmt=data["format"],
                ),
                fields=form,
            )

        try:
            submission = run_submit(
                owner=owner,
                idempotency_key=key,
                request_hash=request_fingerprint(endpoint="runs", data=request.data),
                create=create,
            )
        except IdempotencyConflict as conflict:
            return Response({"detail": str(conflict)}, status=status.HTTP_409_CONFLICT)
        run = run_get(viewer=owner, uuid=submission.run.uuid)
        return Response(
            s.RunDetailSerializer(run).data,
            status=status.HTTP_200_OK if submission.replayed else status.HTTP_201_CREATED,
            headers={"Idempotent-Replayed": "true"} if submission.replayed else None,
        )


def _visible_run(request: Request, uuid: UUID) -> Run:
    run = run_get(viewer=request.user, uuid=uuid)
    if run is None:
        raise NotFound("No such run, or it is private.")
    return run


class RunDetailView(ApiErrorsMixin, APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="A run with its scores, status history and provenance",
        responses={200: s.RunDetailSerializer, 404: DETAIL_404},
    )
    def get(self, request: Request, uuid: UUID) -> Response:
        return Response(s.RunDetailSerializer(_visible_run(request, uuid)).data)


class RunCancelView(ApiErrorsMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Cancel your run: a queued one at once, a running one at its next step",
        request=None,
        responses={
            200: s.RunDetailSerializer,
            401: DETAIL_401,
            403: DETAIL_403,
            404: DETAIL_404,
            409: OpenApiResponse(s.DetailSerializer, description="The run is already finished."),
        },
    )
    def post(self, request: Request, uuid: UUID) -> Response:
        run = _visible_run(request, uuid)
        if run.owner_id != request.user.pk:
            raise PermissionDenied("Only a run's owner can cancel it.")
        try:
            run_cancel(run_id=run.pk)
        except InvalidTransition as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(s.RunDetailSerializer(_visible_run(request, uuid)).data)


# --- Jobs --------------------------------------------------------------------------------


class JobRequestView(ApiErrorsMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Ask Podium to execute a method: one queued run per task and seed",
        request=s.JobRequestInputSerializer,
        responses={201: s.JobRequestResultSerializer, 400: ERRORS_400, 401: DETAIL_401},
    )
    def post(self, request: Request) -> Response:
        form = s.JobRequestInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        runs = _service_call(
            lambda: runs_request(
                owner=_user(request),
                method=data["method"],
                backbone=data["backbone"],
                config=data["config"],
                seeds=data["seeds"],
                task=data.get("task"),
                suite_version=data.get("suite"),
                visibility=data["visibility"],
                eval_split=data["eval_split"],
            ),
            fields=form,
        )
        return Response(
            s.JobRequestResultSerializer({"runs": runs}).data, status=status.HTTP_201_CREATED
        )


class JobQueueView(ApiErrorsMixin, APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="The job queue: running, queued (with position and estimated start), failed",
        responses={200: s.QueueSerializer},
    )
    def get(self, request: Request) -> Response:
        data = s.queue_data(queue=job_queue(), viewer=request.user)
        return Response(s.QueueSerializer(data).data)


# --- Leaderboards ------------------------------------------------------------------------


class SuiteLeaderboardView(ApiErrorsMixin, APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="A suite's leaderboard: public runs, or with view=personal also your own",
        parameters=[s.LeaderboardQuerySerializer],
        responses={200: s.LeaderboardSerializer, 400: ERRORS_400, 404: DETAIL_404},
    )
    def get(self, request: Request, key: str) -> Response:
        get_object_or_404(Suite, key=key)
        query = s.LeaderboardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        version = suite_published_latest(key=key)
        if version is None:
            raise NotFound(f"Suite {key!r} has no published version yet.")
        personal = query.validated_data["view"] == "personal"
        if personal and not request.user.is_authenticated:
            raise NotAuthenticated("The personal view needs a signed-in user or a token.")
        board = suite_leaderboard(
            suite_version=version,
            viewer=request.user if personal else None,
            rule=query.validated_data["rule"],
            missing=query.validated_data["missing"],
        )
        data = s.leaderboard_data(board=board, suite_version=version)
        return Response(s.LeaderboardSerializer(data).data)
