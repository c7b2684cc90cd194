"""Tracked runs over the API: what the `podium` client calls from users' training scripts."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import AllowAny, IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import tracked_serializers as ts
from api.selectors import run_get
from api.services import request_fingerprint, run_submit
from api.views import (
    DETAIL_401,
    DETAIL_403,
    DETAIL_404,
    DETAIL_409,
    ERRORS_400,
    IDEMPOTENCY_PARAMETER,
    QUOTA_403,
    QUOTA_429,
    SUBMISSION_THROTTLES,
    ApiErrorsMixin,
    _idempotency_key,
    _service_call,
    _user,
)
from tracking.models import Run
from tracking.tracked import (
    PointConflicts,
    metric_points_page,
    metric_points_record,
    metric_series_downsampled,
    run_for_viewer,
    run_progress,
    tracked_run_finish,
    tracked_run_start,
)

ACCEPTED_200 = OpenApiResponse(
    ts.MetricsAcceptedSerializer, description="Every point was already stored (a re-send)."
)


def _run(request: Request, uuid: UUID) -> Run:
    run = run_for_viewer(viewer=request.user, uuid=uuid)
    if run is None:
        raise NotFound("No such run, or it is private.")
    return run


def _own_run(request: Request, uuid: UUID) -> Run:
    run = _run(request, uuid)
    if run.owner_id != request.user.pk:
        raise PermissionDenied("Only the run's owner can log to it or finish it.")
    return run


class TrackedRunCreateView(ApiErrorsMixin, APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = SUBMISSION_THROTTLES

    @extend_schema(
        summary="Start tracking a run from your own training script",
        description=(
            "Creates a self-reported run in status `running`, owned by you; log its curves "
            "to /runs/{uuid}/metrics/ and end it with /runs/{uuid}/finish/. With an "
            "`Idempotency-Key` header a retried request returns the first request's run "
            "(200); the same key with another body is a 409. A tracked run counts as a "
            "submission towards the quotas of its task's suites."
        ),
        request=ts.TrackInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: ts.TrackedRunSerializer,
            200: OpenApiResponse(ts.TrackedRunSerializer, description="A replayed request."),
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
        form = ts.TrackInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        submission = run_submit(
            owner=owner,
            endpoint="runs/track",
            idempotency_key=key,
            request_hash=request_fingerprint(endpoint="runs/track", data=request.data),
            create=lambda: _service_call(
                lambda: tracked_run_start(owner=owner, **data), fields=form
            ),
            quota_task_ids=[data["task"].pk],
        )
        run = run_get(viewer=owner, uuid=submission.run.uuid)
        return Response(
            ts.TrackedRunSerializer(run).data,
            status=status.HTTP_200_OK if submission.replayed else status.HTTP_201_CREATED,
            headers={"Idempotent-Replayed": "true"} if submission.replayed else None,
        )


class RunMetricsView(ApiErrorsMixin, APIView):
    # Anyone who may see the run reads its curves; only its owner logs to it.
    permission_classes = [IsAuthenticatedOrReadOnly]

    @extend_schema(
        summary="A run's metric points: raw pages, or each curve downsampled for display",
        parameters=[ts.MetricsQuerySerializer],
        responses={
            200: OpenApiResponse(
                ts.PointsPageSerializer,
                description="Raw points in (key, step) order; with max_points, the shape "
                "of SeriesSet instead.",
            ),
            400: ERRORS_400,
            404: DETAIL_404,
        },
    )
    def get(self, request: Request, uuid: UUID) -> Response:
        run = _run(request, uuid)
        query = ts.MetricsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        keys = data.get("key", [])
        if "max_points" in data:
            series = metric_series_downsampled(run=run, keys=keys, max_points=data["max_points"])
            return Response(
                {
                    "max_points": data["max_points"],
                    "series": {
                        key: {"steps": s.steps, "values": s.values, "total": s.total}
                        for key, s in series.items()
                    },
                }
            )
        rows, after = metric_points_page(
            run=run, keys=keys, after=data.get("cursor"), limit=data["limit"]
        )
        cursor = ts.encode_cursor(after) if after is not None else None
        next_url = None
        if cursor is not None:
            params = request.query_params.copy()
            params["cursor"] = cursor
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response(
            {
                "results": [
                    {
                        "key": row.key,
                        "step": row.step,
                        "value": row.value,
                        "timestamp": row.recorded_at.timestamp(),
                    }
                    for row in rows
                ],
                "next_cursor": cursor,
                "next": next_url,
            }
        )

    @extend_schema(
        summary="Log metric points to your running run",
        description=(
            "All or nothing. A point re-sent with the same (key, step) and value is counted "
            "as a duplicate, not stored twice; another value for a stored step is a 409 "
            "listing the conflicts, and nothing of the batch is stored. A finished run "
            "refuses points (409)."
        ),
        request=ts.MetricsInputSerializer,
        responses={
            201: ts.MetricsAcceptedSerializer,
            200: ACCEPTED_200,
            400: ERRORS_400,
            401: DETAIL_401,
            403: DETAIL_403,
            404: DETAIL_404,
            409: OpenApiResponse(
                ts.MetricsConflictSerializer,
                description="Conflicting values, or the run is not running (detail only).",
            ),
        },
    )
    def post(self, request: Request, uuid: UUID) -> Response:
        run = _own_run(request, uuid)
        form = ts.MetricsInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            outcome = _service_call(
                lambda: metric_points_record(
                    run_id=run.pk, user=_user(request), points=form.validated_data["points"]
                ),
                fields=form,
            )
        except PointConflicts as error:
            body: dict[str, Any] = {
                "detail": str(error),
                "errors": {"points": [str(error)]},
                "conflicts": error.conflicts,
                "conflict_count": error.total,
            }
            return Response(body, status=status.HTTP_409_CONFLICT)
        return Response(
            {"accepted": outcome.accepted, "duplicates": outcome.duplicates},
            status=status.HTTP_201_CREATED if outcome.accepted else status.HTTP_200_OK,
        )


class RunFinishView(ApiErrorsMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Finish your tracked run: succeeded with its scores, or failed",
        description=(
            "Scores are validated as an external run's are (every metric of the task); a "
            "success without scores keeps the run off leaderboards. Repeating a finish with "
            "the same body is harmless (200); finishing a finished run differently is a 409."
        ),
        request=ts.FinishInputSerializer,
        responses={
            200: ts.TrackedRunSerializer,
            400: ERRORS_400,
            401: DETAIL_401,
            403: DETAIL_403,
            404: DETAIL_404,
            409: DETAIL_409,
        },
    )
    def post(self, request: Request, uuid: UUID) -> Response:
        run = _own_run(request, uuid)
        form = ts.FinishInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        _service_call(
            lambda: tracked_run_finish(
                run_id=run.pk,
                user=_user(request),
                status=data["status"],
                scores=data["scores"],
                error=data["error"],
            ),
            fields=form,
        )
        return Response(ts.TrackedRunSerializer(run_get(viewer=request.user, uuid=uuid)).data)


class RunProgressView(ApiErrorsMixin, APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Where a run stands: status, queue position, worker, progress, log tail",
        responses={200: ts.RunProgressSerializer, 404: DETAIL_404},
    )
    def get(self, request: Request, uuid: UUID) -> Response:
        progress = run_progress(run=_run(request, uuid), viewer=request.user)
        return Response(ts.RunProgressSerializer(progress).data)
