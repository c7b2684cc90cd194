"""Dashboard pages. Each view only adapts: selectors fetch, templates render."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from catalog.models import Benchmark, Suite, Task
from catalog.selectors import (
    benchmark_list,
    benchmark_tasks,
    suite_list,
    suite_version_items,
    suite_version_latest,
)
from dashboard.selectors import suite_leaderboard
from tracking.models import Run
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


def suite_detail(request: HttpRequest, key: str) -> HttpResponse:
    suite = get_object_or_404(Suite, key=key)
    version = suite_version_latest(suite=suite)
    items = list(suite_version_items(suite_version=version)) if version else []
    board = suite_leaderboard(suite_version=version, viewer=None) if version else None
    return render(
        request,
        "dashboard/suite.html",
        {"suite": suite, "version": version, "items": items, "board": board},
    )


def job_queue_page(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/jobs.html", {"queue": job_queue()})
