"""Dashboard pages. Each view only adapts: selectors fetch, templates render."""

from __future__ import annotations

import functools

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST

from catalog.models import Benchmark, Suite, Task
from catalog.selectors import (
    benchmark_list,
    benchmark_tasks,
    suite_list,
    suite_version_items,
    suite_version_latest,
)
from dashboard.charts import run_curves_figure
from dashboard.selectors import OFFICIAL, leaderboard_rules, suite_leaderboard
from dashboard.snapshots import snapshot_bibtex, snapshot_freeze
from leaderboard.ranking import MISSING_POLICIES
from tracking.models import LeaderboardSnapshot, Run
from tracking.selectors import job_queue, visible_runs_filter


def home(request: HttpRequest) -> HttpResponse:
    recent_runs = (
        Run.objects.filter(visible_runs_filter(viewer=request.user))
        .select_related("method", "backbone", "task", "task__benchmark")
        .order_by("-created_at")[:10]
    )
    return render(
        request,
        "dashboard/home.html",
        {"benchmarks": benchmark_list(), "suites": suite_list(), "recent_runs": recent_runs},
    )


def benchmark_detail(request: HttpRequest, key: str) -> HttpResponse:
    benchmark = get_object_or_404(Benchmark, key=key)
    return render(
        request,
        "dashboard/benchmark.html",
        {"benchmark": benchmark, "tasks": benchmark_tasks(benchmark=benchmark)},
    )


def task_detail(request: HttpRequest, benchmark: str, key: str) -> HttpResponse:
    task = get_object_or_404(
        Task.objects.select_related("benchmark").prefetch_related("metrics"),
        benchmark__key=benchmark,
        key=key,
        is_current=True,
    )
    versions = Task.objects.filter(benchmark=task.benchmark, key=task.key).order_by("-version")
    return render(request, "dashboard/task.html", {"task": task, "versions": versions})


def _board_options(request: HttpRequest) -> tuple[str, str] | HttpResponse:
    rule = request.GET.get("rule", OFFICIAL)
    missing = request.GET.get("missing", "")
    if rule not in leaderboard_rules():
        return HttpResponseBadRequest(
            f"Unknown rule {rule!r}; choose one of {', '.join(leaderboard_rules())}.",
            content_type="text/plain",
        )
    if missing and missing not in MISSING_POLICIES:
        return HttpResponseBadRequest(
            f"Unknown missing-score policy {missing!r}; choose one of "
            f"{', '.join(MISSING_POLICIES)}.",
            content_type="text/plain",
        )
    return rule, missing


def suite_detail(request: HttpRequest, key: str) -> HttpResponse:
    suite = get_object_or_404(Suite, key=key)
    options = _board_options(request)
    if isinstance(options, HttpResponse):
        return options
    rule, missing = options
    version = suite_version_latest(suite=suite)
    items = list(suite_version_items(suite_version=version)) if version else []
    board = (
        suite_leaderboard(suite_version=version, viewer=None, rule=rule, missing=missing)
        if version
        else None
    )
    return render(
        request,
        "dashboard/suite.html",
        {
            "suite": suite,
            "version": version,
            "items": items,
            "board": board,
            "rules": leaderboard_rules(),
            "missing_policies": MISSING_POLICIES,
        },
    )


@require_POST
@login_required
def suite_freeze(request: HttpRequest, key: str) -> HttpResponse:
    suite = get_object_or_404(Suite, key=key)
    version = suite_version_latest(suite=suite)
    options = _board_options(request)
    if isinstance(options, HttpResponse) or version is None:
        return (
            options
            if isinstance(options, HttpResponse)
            else HttpResponseBadRequest(
                "This suite has no published version.", content_type="text/plain"
            )
        )
    rule, missing = options
    board = suite_leaderboard(suite_version=version, viewer=None, rule=rule, missing=missing)
    try:
        snapshot = snapshot_freeze(board=board, suite_version=version, created_by=request.user)  # type: ignore[arg-type]
    except ValueError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain")
    return redirect("dashboard:snapshot", uuid=snapshot.uuid)


def snapshot_detail(request: HttpRequest, uuid: str) -> HttpResponse:
    snapshot = get_object_or_404(LeaderboardSnapshot, uuid=uuid)
    url = request.build_absolute_uri()
    return render(
        request,
        "dashboard/snapshot.html",
        {"snapshot": snapshot, "bibtex": snapshot_bibtex(snapshot=snapshot, url=url)},
    )


def run_detail(request: HttpRequest, uuid: str) -> HttpResponse:
    run = get_object_or_404(
        Run.objects.filter(visible_runs_filter(viewer=request.user)).select_related(
            "method", "backbone", "task", "task__benchmark", "owner"
        ),
        uuid=uuid,
    )
    return render(
        request,
        "dashboard/run.html",
        {
            "run": run,
            "scores": run.scores.select_related("metric").order_by("metric__position"),
            "transitions": run.transitions.order_by("at", "id"),
            "artifacts": run.artifacts.order_by("name"),
            "job": getattr(run, "job", None),
            "curves": run_curves_figure(run=run),
        },
    )


@cache_control(public=True, max_age=7 * 24 * 3600)
def plotly_js(request: HttpRequest) -> HttpResponse:
    """plotly.js from the installed plotly package: the dashboard works offline, no CDN."""
    return HttpResponse(_plotly_bundle(), content_type="application/javascript")


@functools.cache
def _plotly_bundle() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def job_queue_page(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/jobs.html", {"queue": job_queue()})
