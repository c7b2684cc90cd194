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
    extend_schema_view,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import (
    AllowAny,
    IsAdminUser,
    IsAuthenticated,
    IsAuthenticatedOrReadOnly,
)
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.errors import IDEMPOTENCY_HEADER as IDEMPOTENCY_HEADER  # re-exported for views
from api.errors import api_exception_handler, field_error
from api.selectors import (
    RunFilters,
    audit_events,
    backbone_list,
    method_list,
    run_get,
    run_get_for_staff,
    run_list,
    run_list_by_ids,
    runs_awaiting_review,
    token_list,
)
from api.services import (
    request_fingerprint,
    run_submit,
    runs_submit,
    token_create,
    token_revoke,
)
from api.throttles import AnonThrottle, SubmissionThrottle, UserThrottle
from catalog.models import Benchmark, Suite
from catalog.selectors import benchmark_list, suite_list
from tracking.jobs import run_cancel, runs_request
from tracking.models import Run
from tracking.rescoring import run_create_from_predictions
from tracking.selectors import job_queue
from tracking.services import (
    RunInputError,
    run_create_external,
    run_review,
    run_update,
    run_withdraw,
)

T = TypeVar("T")

IDEMPOTENCY_KEY_MAX = 255
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    str,
    OpenApiParameter.HEADER,
    description="Any unique string, at most 255 characters, per submission.",
)
SUBMISSION_THROTTLES = [AnonThrottle, UserThrottle, SubmissionThrottle]

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
QUOTA_403 = OpenApiResponse(
    s.DetailSerializer,
    description="Not allowed, or past a suite's total submission quota (which never resets).",
)
QUOTA_429 = OpenApiResponse(
    s.DetailSerializer,
    description="Too many requests, or past a suite's daily submission quota; Retry-After "
    "says when it resets. A quota refusal has `quota`: suite, period, limit, used, "
    "requested, resets_at.",
)


class ApiErrorsMixin:
    # Errors as {"errors": {field: [message]}} on every API view (api.errors). A comment,
    # not a docstring: OpenAPI would show a docstring as every operation's description.

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


@extend_schema_view(get=extend_schema(summary="Benchmarks, with their number of current tasks"))
class BenchmarkListView(PublicListView):
    serializer_class = s.BenchmarkSerializer

    def get_queryset(self) -> Any:
        return benchmark_list()


@extend_schema_view(
    get=extend_schema(
        summary="A benchmark with the current version of each task and its metrics",
        responses={200: s.BenchmarkDetailSerializer, 404: DETAIL_404},
    )
)
class BenchmarkDetailView(ApiErrorsMixin, generics.RetrieveAPIView[Benchmark]):
    permission_classes = [AllowAny]
    serializer_class = s.BenchmarkDetailSerializer
    lookup_field = "key"

    def get_queryset(self) -> Any:
        return benchmark_list()


@extend_schema_view(get=extend_schema(summary="Suites, with their published versions"))
class SuiteListView(PublicListView):
    serializer_class = s.SuiteSerializer

    def get_queryset(self) -> Any:
        return suite_list()


@extend_schema_view(
    get=extend_schema(
        summary="A suite with its latest published version's tasks and weights",
        responses={200: s.SuiteDetailSerializer, 404: DETAIL_404},
    )
)
class SuiteDetailView(ApiErrorsMixin, generics.RetrieveAPIView[Suite]):
    permission_classes = [AllowAny]
    serializer_class = s.SuiteDetailSerializer
    lookup_field = "key"

    def get_queryset(self) -> Any:
        return suite_list()


@extend_schema_view(
    get=extend_schema(summary="Methods, with the JSON schema of their hyperparameters")
)
class MethodListView(PublicListView):
    serializer_class = s.MethodSerializer

    def get_queryset(self) -> Any:
        return method_list()


@extend_schema_view(get=extend_schema(summary="Backbones and where their weights come from"))
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
        suites=split(query.get("suite", "")),
        methods=split(query.get("method", "")),
        backbones=split(query.get("backbone", "")),
        statuses=query.get("status", ()),
        owners=split(query.get("owner", "")),
        tags=split(query.get("tag", "")),
        created_after=query.get("created_after"),
        created_before=query.get("created_before"),
        search=query.get("search", ""),
        ordering=query.get("ordering", "-created_at"),
    )


def _idempotency_key(request: Request) -> str:
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise ValidationError({IDEMPOTENCY_HEADER: [f"At most {IDEMPOTENCY_KEY_MAX} characters."]})
    return key


class RunListCreateView(ApiErrorsMixin, generics.GenericAPIView[Run]):
    serializer_class = s.RunSerializer
    throttle_classes = SUBMISSION_THROTTLES

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
            "(200) instead of recording a second; the same key with another body is a 409. "
            "A suite of the task may limit submissions per user and day or in all."
        ),
        request=s.RunCreateInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: s.RunDetailSerializer,
            200: OpenApiResponse(s.RunDetailSerializer, description="A replayed request."),
            400: ERRORS_400,
            401: DETAIL_401,
            403: QUOTA_403,
            409: DETAIL_409,
            429: QUOTA_429,
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

        submission = run_submit(
            owner=owner,
            idempotency_key=key,
            request_hash=request_fingerprint(endpoint="runs", data=request.data),
            create=create,
            quota_task_ids=[data["task"].pk],
        )
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
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        summary="A run with its scores, status history and provenance",
        responses={200: s.RunDetailSerializer, 404: DETAIL_404},
    )
    def get(self, request: Request, uuid: UUID) -> Response:
        return Response(s.RunDetailSerializer(_visible_run(request, uuid)).data)

    @extend_schema(
        summary="Edit your run's description, tags or visibility (recorded in its audit trail)",
        request=s.RunUpdateInputSerializer,
        responses={
            200: s.RunDetailSerializer,
            400: ERRORS_400,
            401: DETAIL_401,
            403: DETAIL_403,
            404: DETAIL_404,
            409: OpenApiResponse(s.DetailSerializer, description="The run was withdrawn."),
        },
    )
    def patch(self, request: Request, uuid: UUID) -> Response:
        run = _visible_run(request, uuid)
        form = s.RunUpdateInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        _service_call(
            lambda: run_update(run_id=run.pk, actor=_user(request), **form.validated_data),
            fields=form,
        )
        return Response(s.RunDetailSerializer(_visible_run(request, uuid)).data)


class RunWithdrawView(ApiErrorsMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Withdraw a run (its owner or staff): it leaves every leaderboard, and is kept",
        request=s.ReasonInputSerializer,
        responses={
            200: s.RunDetailSerializer,
            400: ERRORS_400,
            401: DETAIL_401,
            403: DETAIL_403,
            404: DETAIL_404,
            409: OpenApiResponse(s.DetailSerializer, description="Already withdrawn."),
        },
    )
    def post(self, request: Request, uuid: UUID) -> Response:
        user = _user(request)
        run = run_get_for_staff(uuid=uuid) if user.is_staff else _visible_run(request, uuid)
        if run is None:
            raise NotFound("No such run.")
        form = s.ReasonInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        run_withdraw(run_id=run.pk, actor=user, reason=form.validated_data["reason"])
        return Response(s.RunDetailSerializer(run_get_for_staff(uuid=uuid)).data)


class RunReviewView(ApiErrorsMixin, APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Staff: approve a run for public leaderboards, or reject it",
        description="Only runs on a task of a suite that requires approval wait for a "
        "decision; a decision may be reversed, and each is recorded in the audit trail.",
        request=s.RunReviewInputSerializer,
        responses={
            200: s.RunDetailSerializer,
            400: ERRORS_400,
            401: DETAIL_401,
            403: DETAIL_403,
            404: DETAIL_404,
            409: OpenApiResponse(
                s.DetailSerializer, description="Already decided so, or needs no approval."
            ),
        },
    )
    def post(self, request: Request, uuid: UUID) -> Response:
        run = run_get_for_staff(uuid=uuid)
        if run is None:
            raise NotFound("No such run.")
        form = s.RunReviewInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        run_review(
            run_id=run.pk,
            actor=_user(request),
            approve=form.validated_data["decision"] == "approve",
            reason=form.validated_data["reason"],
        )
        return Response(s.RunDetailSerializer(run_get_for_staff(uuid=uuid)).data)


class ReviewQueueView(ApiErrorsMixin, generics.GenericAPIView[Run]):
    permission_classes = [IsAdminUser]
    serializer_class = s.RunSerializer

    @extend_schema(
        summary="Staff: public runs awaiting approval, oldest first",
        responses={200: s.RunSerializer(many=True), 401: DETAIL_401, 403: DETAIL_403},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(runs_awaiting_review())
        return self.get_paginated_response(s.RunSerializer(page, many=True).data)


class RunAuditView(ApiErrorsMixin, generics.GenericAPIView[Any]):
    permission_classes = [IsAuthenticated]
    serializer_class = s.AuditEventSerializer

    @extend_schema(
        summary="A run's audit trail (its owner and staff): who changed what, when, "
        "before and after",
        responses={
            200: s.AuditEventSerializer(many=True),
            401: DETAIL_401,
            403: DETAIL_403,
            404: DETAIL_404,
        },
    )
    def get(self, request: Request, uuid: UUID) -> Response:
        user = _user(request)
        run = run_get_for_staff(uuid=uuid) if user.is_staff else _visible_run(request, uuid)
        if run is None:
            raise NotFound("No such run.")
        if not user.is_staff and run.owner_id != user.pk:
            raise PermissionDenied("Only a run's owner and staff can read its audit trail.")
        page = self.paginate_queryset(audit_events(run=run))
        return self.get_paginated_response(s.AuditEventSerializer(page, many=True).data)


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
        run_cancel(run_id=run.pk)  # an InvalidTransition is a 409 (api.errors)
        return Response(s.RunDetailSerializer(_visible_run(request, uuid)).data)


# --- Jobs --------------------------------------------------------------------------------


class JobRequestView(ApiErrorsMixin, APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = SUBMISSION_THROTTLES

    @extend_schema(
        summary="Ask Podium to execute a method: one queued run per task and seed",
        description=(
            "With an `Idempotency-Key` header a retried request returns the first request's "
            "runs (200) instead of queuing them again; the same key with another body is a "
            "409. A suite of the tasks may limit submissions (one per run) per user and day "
            "or in all."
        ),
        request=s.JobRequestInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: s.JobRequestResultSerializer,
            200: OpenApiResponse(s.JobRequestResultSerializer, description="A replayed request."),
            400: ERRORS_400,
            401: DETAIL_401,
            403: QUOTA_403,
            409: DETAIL_409,
            429: QUOTA_429,
        },
    )
    def post(self, request: Request) -> Response:
        key = _idempotency_key(request)
        owner = _user(request)
        form = s.JobRequestInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        tasks = (
            [data["task"]]
            if "task" in data
            else [item.task for item in data["suite"].items.select_related("task")]
        )
        seeds = list(dict.fromkeys(data["seeds"]))
        submission = runs_submit(
            owner=owner,
            endpoint="jobs",
            idempotency_key=key,
            request_hash=request_fingerprint(endpoint="jobs", data=request.data),
            quota_task_ids=[task.pk for task in tasks for _ in seeds],
            create=lambda: _service_call(
                lambda: runs_request(
                    owner=owner,
                    method=data["method"],
                    backbone=data["backbone"],
                    config=data["config"],
                    seeds=seeds,
                    task=data.get("task"),
                    suite_version=data.get("suite"),
                    visibility=data["visibility"],
                    eval_split=data["eval_split"],
                    gpus=data["gpus"],
                    time_limit_s=data.get("time_limit_s"),
                ),
                fields=form,
            ),
        )
        runs = run_list_by_ids(viewer=owner, ids=[run.pk for run in submission.runs])
        return Response(
            s.JobRequestResultSerializer({"runs": runs}).data,
            status=status.HTTP_200_OK if submission.replayed else status.HTTP_201_CREATED,
            headers={"Idempotent-Replayed": "true"} if submission.replayed else None,
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
