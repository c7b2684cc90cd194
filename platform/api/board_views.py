"""Leaderboards (per suite and per task), their exports, and frozen snapshots.

Each board is JSON by default; ?format=csv or ?format=latex (or an Accept header naming
text/csv or application/x-latex) exports the same table as a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotAuthenticated, NotFound, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.exports import ExportTable, table_from_board, table_from_snapshot, to_csv, to_latex
from api.renderers import BibTeXRenderer, CSVRenderer, LaTeXRenderer
from api.selectors import suite_published_latest, task_leaderboard
from api.throttles import AnonThrottle, SubmissionThrottle, UserThrottle
from api.views import DETAIL_401, DETAIL_404, ERRORS_400, ApiErrorsMixin, _user
from catalog.models import Suite, Task
from catalog.selectors import suite_version_latest
from dashboard.selectors import (
    MAX_PAGE_SIZE,
    OFFICIAL,
    PAGE_SIZE,
    PageOutOfRange,
    SuiteBoard,
    board_derived,
    board_page,
    suite_board_key,
    suite_leaderboard,
    suite_text_stamp,
)
from dashboard.snapshots import snapshot_bibtex, snapshot_freeze
from tracking.models import LeaderboardSnapshot

FILE_FORMATS = ("csv", "latex", "bibtex")


def _format_parameter(formats: tuple[str, ...]) -> OpenApiParameter:
    return OpenApiParameter(
        "format",
        str,
        OpenApiParameter.QUERY,
        enum=list(formats),
        description="json (default), or a file: "
        + ", ".join(f for f in formats if f != "json")
        + ". An Accept header naming the file's media type does the same.",
    )


def _file_responses(formats: tuple[str, ...]) -> dict[Any, Any]:
    media = {"csv": "text/csv", "latex": "application/x-latex", "bibtex": "application/x-bibtex"}
    return {(200, media[f]): OpenApiTypes.STR for f in formats if f in media}


class ExportViewMixin(ApiErrorsMixin):
    # JSON or a file of the same data; a bad ?format is a 400 and errors are always JSON.
    # (A comment: OpenAPI would show a docstring as every operation's description.)

    export_formats: tuple[str, ...] = ("json", "csv", "latex")
    renderer_classes: Sequence[type[BaseRenderer]] = [
        JSONRenderer,
        BrowsableAPIRenderer,
        CSVRenderer,
        LaTeXRenderer,
    ]

    def perform_content_negotiation(
        self, request: Request, force: bool = False
    ) -> tuple[BaseRenderer, str]:
        fmt = request.query_params.get("format")
        allowed = (*self.export_formats, "api")
        if fmt is not None and fmt not in allowed and not force:
            raise ValidationError(
                {"format": [f"Unknown format {fmt!r}; one of {', '.join(self.export_formats)}."]}
            )
        return super().perform_content_negotiation(request, force)  # type: ignore[misc, no-any-return]

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        renderer = getattr(request, "accepted_renderer", None)
        if response.status_code >= 400 and getattr(renderer, "format", "") in FILE_FORMATS:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc, no-any-return]

    def export_table(self, data: Any) -> ExportTable:
        raise NotImplementedError

    def export_text(self, data: Any, fmt: str) -> str:
        table = self.export_table(data)
        return to_csv(table) if fmt == "csv" else to_latex(table)

    def export_filename(self, data: Any, fmt: str) -> str:
        raise NotImplementedError


def _board_options(request: Request, serializer: type[s.LeaderboardQuerySerializer]) -> Any:
    query = serializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    if query.validated_data["view"] == "personal" and not request.user.is_authenticated:
        raise NotAuthenticated("The personal view needs a signed-in user or a token.")
    return query.validated_data


def _page_link(request: Request, options: dict[str, Any], number: int) -> str:
    """The absolute URL of page `number` of the board `options` (validated) describe."""
    query = {
        "rule": options["rule"] if options["rule"] != OFFICIAL else None,
        "missing": options["missing"] or None,
        "view": options["view"] if options["view"] != "public" else None,
        "page": number if number > 1 else None,
        "page_size": options["page_size"] if options["page_size"] != PAGE_SIZE else None,
    }
    encoded = urlencode({name: value for name, value in query.items() if value is not None})
    return request.build_absolute_uri(request.path + (f"?{encoded}" if encoded else ""))


class SuiteLeaderboardView(ExportViewMixin, APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="A suite's leaderboard: public runs, or with view=personal also your own",
        description="Ranked by the suite's official score (`rule=official`, rows without "
        "one unranked) or by a social-choice rule over its tasks. The rows come in pages "
        f"(`page`, `page_size`: {PAGE_SIZE} by default, at most {MAX_PAGE_SIZE}) with "
        "`count`, `next` and `previous`; ranks are over the whole board. "
        "`format=csv|latex` exports the whole table (LaTeX: booktabs, best value per "
        "column in bold).",
        parameters=[
            s.SuiteLeaderboardQuerySerializer,
            _format_parameter(("json", "csv", "latex")),
        ],
        responses={
            200: s.LeaderboardSerializer,
            **_file_responses(("csv", "latex")),
            400: ERRORS_400,
            401: DETAIL_401,
            404: DETAIL_404,
        },
    )
    def get(self, request: Request, key: str) -> Response | HttpResponse:
        suite = get_object_or_404(Suite, key=key)
        options = _board_options(request, s.SuiteLeaderboardQuerySerializer)
        version = suite_version_latest(suite=suite)
        if version is None:
            raise NotFound(f"Suite {key!r} has no published version yet.")
        viewer = request.user if options["view"] == "personal" else None
        rule, missing = options["rule"], options["missing"]
        board_key = suite_board_key(
            suite_version=version, viewer=viewer, rule=rule, missing=missing
        )

        def board() -> SuiteBoard:
            return suite_leaderboard(
                suite_version=version, viewer=viewer, rule=rule, missing=missing, key=board_key
            )

        fmt = request.accepted_renderer.format
        if fmt in FILE_FORMATS:
            # An export is the whole table, every page.
            return Response(s.leaderboard_data(board=board(), suite_version=version))
        number, size = options["page"], options["page_size"]

        def page_data() -> dict[str, Any]:
            full = board()
            try:
                page = board_page(rows=full.rows, number=number, size=size)
            except PageOutOfRange as error:
                raise ValidationError({"page": [str(error)]}) from None
            links = (
                _page_link(request, options, number + 1) if page.has_next else None,
                _page_link(request, options, number - 1) if page.has_previous else None,
            )
            data = s.leaderboard_data(board=full, suite_version=version, page=page, links=links)
            return dict(s.LeaderboardSerializer(data).data)

        # A page is made once per board (the key moves with every change to it) and host
        # (its links are absolute); a warm request then neither loads nor serialises the
        # board. The part names only validated values, so junk parameters add no entries.
        part = (
            f"api:{number}:{size}:{request.build_absolute_uri(request.path)}"
            f":{suite_text_stamp(suite=suite)}"
        )
        if fmt == "json":
            body = board_derived(
                key=board_key, part=f"{part}:json", build=lambda: JSONRenderer().render(page_data())
            )
            return HttpResponse(body, content_type="application/json")
        return Response(board_derived(key=board_key, part=part, build=page_data))

    def export_table(self, data: Any) -> ExportTable:
        return table_from_board(
            data,
            title=f"{data['suite_name']} v{data['version']} leaderboard",
            score_name=data["official_score_name"],
        )

    def export_filename(self, data: Any, fmt: str) -> str:
        return f"{data['suite']}-v{data['version']}-{data['rule']}"


class TaskLeaderboardView(ExportViewMixin, APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="A task's leaderboard: one column per metric, public runs (or view=personal)",
        description="Ranked by the task's score (`rule=official`: the benchmark's own task "
        "score, paired metrics averaged) or by a social-choice rule over its metrics, each "
        "with its direction. `format=csv|latex` exports the table.",
        parameters=[
            s.TaskLeaderboardQuerySerializer,
            _format_parameter(("json", "csv", "latex")),
        ],
        responses={
            200: s.TaskLeaderboardSerializer,
            **_file_responses(("csv", "latex")),
            400: ERRORS_400,
            401: DETAIL_401,
            404: DETAIL_404,
        },
    )
    def get(self, request: Request, benchmark: str, task: str) -> Response:
        options = _board_options(request, s.TaskLeaderboardQuerySerializer)
        tasks = Task.objects.select_related("benchmark").filter(benchmark__key=benchmark, key=task)
        version = options.get("version")
        found = (
            tasks.filter(version=version) if version is not None else tasks.filter(is_current=True)
        ).first()
        if found is None:
            which = f" version {version}" if version is not None else ""
            raise NotFound(f"No task {benchmark}/{task}{which} in the catalog.")
        board = task_leaderboard(
            task=found,
            viewer=request.user if options["view"] == "personal" else None,
            rule=options["rule"],
            missing=options["missing"],
        )
        return Response(s.TaskLeaderboardSerializer(s.task_leaderboard_data(board=board)).data)

    def export_table(self, data: Any) -> ExportTable:
        return table_from_board(
            data,
            title=f"{data['name']} ({data['task']} v{data['version']}) leaderboard",
            score_name="Task score",
            columns_are_metrics=True,
        )

    def export_filename(self, data: Any, fmt: str) -> str:
        return f"{data['task'].replace('/', '-')}-v{data['version']}-{data['rule']}"


# --- Snapshots -----------------------------------------------------------------------------


def _snapshot_body(request: Request, snapshot: LeaderboardSnapshot) -> Any:
    url = request.build_absolute_uri(reverse("dashboard:snapshot", kwargs={"uuid": snapshot.uuid}))
    context = {"url": url, "bibtex": snapshot_bibtex(snapshot=snapshot, url=url)}
    return s.SnapshotSerializer(snapshot, context=context).data


class SuiteSnapshotsView(ApiErrorsMixin, generics.GenericAPIView[LeaderboardSnapshot]):
    permission_classes = [IsAuthenticatedOrReadOnly]
    throttle_classes = [AnonThrottle, UserThrottle, SubmissionThrottle]
    serializer_class = s.SnapshotSerializer

    @extend_schema(
        summary="A suite's frozen snapshots, newest first",
        responses={200: s.SnapshotSerializer(many=True), 404: DETAIL_404},
    )
    def get(self, request: Request, key: str) -> Response:
        suite = get_object_or_404(Suite, key=key)
        snapshots = (
            LeaderboardSnapshot.objects.filter(suite_version__suite=suite)
            .select_related("suite_version__suite", "created_by__profile")
            .order_by("-created_at", "-id")
        )
        page = self.paginate_queryset(snapshots)
        return self.get_paginated_response([_snapshot_body(request, snap) for snap in page or []])

    @extend_schema(
        summary="Freeze the suite's public leaderboard (latest version) into a citable snapshot",
        description="Any signed-in user may freeze a board, as on the dashboard. The "
        "snapshot stores the whole table and never changes; cite its `url`.",
        request=s.SnapshotCreateInputSerializer,
        responses={201: s.SnapshotSerializer, 400: ERRORS_400, 401: DETAIL_401, 404: DETAIL_404},
    )
    def post(self, request: Request, key: str) -> Response:
        get_object_or_404(Suite, key=key)
        form = s.SnapshotCreateInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        version = suite_published_latest(key=key)
        if version is None:
            raise NotFound(f"Suite {key!r} has no published version yet.")
        board = suite_leaderboard(
            suite_version=version,
            viewer=None,
            rule=form.validated_data["rule"],
            missing=form.validated_data["missing"],
        )
        try:
            snapshot = snapshot_freeze(
                board=board, suite_version=version, created_by=_user(request)
            )
        except ValueError as error:
            raise ValidationError({"non_field_errors": [str(error)]}) from None
        body = _snapshot_body(request, snapshot)
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})


class SnapshotDetailView(ExportViewMixin, APIView):
    permission_classes = [AllowAny]
    export_formats = ("json", "bibtex", "csv", "latex")
    renderer_classes = [
        JSONRenderer,
        BrowsableAPIRenderer,
        BibTeXRenderer,
        CSVRenderer,
        LaTeXRenderer,
    ]

    @extend_schema(
        summary="A frozen leaderboard snapshot, with its stable URL and a BibTeX entry",
        description="Cite its `url`, a page that never changes. `format=bibtex` gives the "
        "BibTeX entry alone; `format=csv|latex` exports the frozen table.",
        parameters=[_format_parameter(("json", "bibtex", "csv", "latex"))],
        responses={
            200: s.SnapshotSerializer,
            **_file_responses(("bibtex", "csv", "latex")),
            400: ERRORS_400,
            404: DETAIL_404,
        },
    )
    def get(self, request: Request, uuid: str) -> Response:
        snapshot = get_object_or_404(
            LeaderboardSnapshot.objects.select_related("suite_version__suite"), uuid=uuid
        )
        return Response(_snapshot_body(request, snapshot))

    def export_table(self, data: Any) -> ExportTable:
        return table_from_snapshot(data["content"], title=data["title"])

    def export_text(self, data: Any, fmt: str) -> str:
        return str(data["bibtex"]) if fmt == "bibtex" else super().export_text(data, fmt)

    def export_filename(self, data: Any, fmt: str) -> str:
        return f"podium-{data['suite']}-{str(data['uuid'])[:8]}"
