"""Dashboard pages. Each view only adapts: selectors fetch, services act, templates render."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET, require_POST

from catalog.models import Backbone, Benchmark, Method, Suite, SuiteVersion, Task
from catalog.selectors import (
    benchmark_list,
    benchmark_tasks,
    suite_list,
    suite_version_items,
    suite_version_latest,
)
from dashboard.analysis import (
    board_flags,
    suite_efficiency,
    suite_rule_comparison,
    suite_uncertainty,
)
from dashboard.charts import (
    agreement_heatmap,
    bump_chart,
    compare_curves_figures,
    curves_figure,
    efficiency_figure,
)
from dashboard.forms import ExternalRunForm, TaskChoiceForm
from dashboard.runs import (
    COMPARE_MAX_RUNS,
    REPRODUCTION_TOLERANCE,
    backbones_with_run_counts,
    methods_with_run_counts,
    parse_run_ids,
    run_curves,
    run_for_page,
    run_is_final,
    run_label,
    run_live_state,
    run_same_spec,
    runs_compare,
    runs_count,
    runs_recent,
)
from dashboard.selectors import (
    MAX_PAGE_SIZE,
    OFFICIAL,
    PAGE_SIZE,
    BoardFilters,
    PageOutOfRange,
    SuiteBoard,
    board_derived,
    board_filter_options,
    board_page,
    board_ranks,
    board_rows_filtered,
    leaderboard_rules,
    suite_board_key,
    suite_leaderboard,
    suite_text_stamp,
)
from dashboard.services import ReproduceRefused, run_reproduce, run_submit_scores
from dashboard.snapshots import snapshot_bibtex, snapshot_freeze
from dashboard.task_board import task_board
from leaderboard.ranking import MISSING_POLICIES, RULES
from tracking.models import LeaderboardSnapshot
from tracking.selectors import job_details_visible, job_queue
from tracking.services import QuotaExceeded, RunInputError

# How often the run page asks for news while the run is not final.
LIVE_POLL_SECONDS = 5
EXPORT_FORMATS = ("csv", "json", "latex")


def home(request: HttpRequest) -> HttpResponse:
    queue = job_queue(failed_limit=5)
    return render(
        request,
        "dashboard/home.html",
        {
            "benchmarks": benchmark_list(),
            "suites": suite_list(),
            "recent_runs": runs_recent(viewer=request.user, limit=10),
            "queue": queue,
        },
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
    return render(
        request,
        "dashboard/task.html",
        {
            "task": task,
            "versions": versions,
            "board": task_board(task=task, viewer=None),
            "runs": runs_recent(viewer=request.user, task=task),
            "exports": _export_links(
                base=reverse(
                    "api:task-leaderboard",
                    kwargs={"benchmark": task.benchmark.key, "task": task.key},
                ),
                query={},
            ),
        },
    )


# --- Suites --------------------------------------------------------------------------------


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


def _suite_board(
    request: HttpRequest, key: str, *, rule: str | None = None
) -> tuple[Suite, SuiteVersion | None, SuiteBoard | None, str, str] | HttpResponse:
    suite = get_object_or_404(Suite, key=key)
    options = _board_options(request)
    if isinstance(options, HttpResponse):
        return options
    chosen, missing = options
    version = suite_version_latest(suite=suite)
    board = (
        suite_leaderboard(suite_version=version, viewer=None, rule=rule or chosen, missing=missing)
        if version
        else None
    )
    return suite, version, board, chosen, missing


def _export_links(
    *, base: str, query: dict[str, str], json_query: dict[str, str] | None = None
) -> list[tuple[str, str]]:
    """(format, URL) of the API's export of a board in each format; `json_query` adds to
    the JSON link's query (the JSON answer is paged, the files are whole)."""
    links = []
    for fmt in EXPORT_FORMATS:
        extra = (json_query or {}) if fmt == "json" else {}
        links.append((fmt, f"{base}?{urlencode({**query, **extra, 'format': fmt})}"))
    return links


# The suite page's query parameters; a page is cached only for a query of these alone.
SUITE_PAGE_PARAMS = ("rule", "missing", "method", "backbone", "provenance", "page")


def _page_number(request: HttpRequest) -> int | HttpResponse:
    raw = request.GET.get("page", "1")
    if not raw.isdigit() or int(raw) < 1 or len(raw) > 9:
        return HttpResponseBadRequest(
            f"Page {raw!r} is not a page number (1, 2, ...).", content_type="text/plain"
        )
    return int(raw)


def suite_detail(request: HttpRequest, key: str) -> HttpResponse:
    suite = get_object_or_404(Suite, key=key)
    options = _board_options(request)
    if isinstance(options, HttpResponse):
        return options
    rule, missing = options
    number = _page_number(request)
    if isinstance(number, HttpResponse):
        return number
    filters = BoardFilters(
        method=request.GET.get("method", ""),
        backbone=request.GET.get("backbone", ""),
        provenance=request.GET.get("provenance", ""),
    )
    version = suite_version_latest(suite=suite)
    if version is None:
        return HttpResponse(_suite_page(request, suite, None, None, rule, filters, number))
    board_key = suite_board_key(suite_version=version, viewer=None, rule=rule, missing=missing)

    def page() -> str:
        board = suite_leaderboard(
            suite_version=version, viewer=None, rule=rule, missing=missing, key=board_key
        )
        return _suite_page(request, suite, version, board, rule, filters, number)

    # Anonymous visitors all see the same page for a board and query (no CSRF token, no
    # user links): it is rendered once per board, and a warm request loads neither the
    # board nor its rows. Pending messages, and queries with other parameters, are
    # rendered afresh (the key names only the parameters the page reads).
    cacheable = (
        not request.user.is_authenticated
        and set(request.GET) <= set(SUITE_PAGE_PARAMS)
        and not len(messages.get_messages(request))
    )
    try:
        if cacheable:
            query = urlencode([(name, request.GET.get(name, "")) for name in SUITE_PAGE_PARAMS])
            part = f"page:{query}:{suite_text_stamp(suite=suite)}"
            return HttpResponse(board_derived(key=board_key, part=part, build=page))
        return HttpResponse(page())
    except PageOutOfRange as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain")


def _pager_link(request: HttpRequest, number: int) -> str:
    """This page's query with another page number (filters and rule kept)."""
    query = [
        (name, request.GET[name])
        for name in SUITE_PAGE_PARAMS
        if name != "page" and request.GET.get(name)
    ]
    return "?" + urlencode([*query, *([("page", str(number))] if number > 1 else [])])


def _suite_page(
    request: HttpRequest,
    suite: Suite,
    version: SuiteVersion | None,
    board: SuiteBoard | None,
    rule: str,
    filters: BoardFilters,
    number: int,
) -> str:
    context: dict[str, Any] = {
        "suite": suite,
        "version": version,
        "items": list(suite_version_items(suite_version=version)) if version else [],
        "board": board,
        "rules": leaderboard_rules(),
        "missing_policies": MISSING_POLICIES,
        "filters": filters,
    }
    if board is not None:
        # Filters narrow the rows first, then the page is cut; ranks, rank intervals and
        # flags are those over the whole board.
        shown = board_page(
            rows=board_rows_filtered(board=board, filters=filters), number=number, size=PAGE_SIZE
        )
        uncertainty = suite_uncertainty(board=board)
        flags = board_flags(board=board)
        ranks = board_ranks(board=board)
        context |= {
            # (row, its rank, its rank uncertainty, its flags) per shown system
            "rows": [
                (
                    row,
                    ranks.get(row.system.label),
                    uncertainty.systems.get(row.system.label),
                    flags.get(row.system.label, []),
                )
                for row in shown.rows
            ],
            "page": shown,
            "first_shown": (shown.number - 1) * shown.size + 1,
            "last_shown": (shown.number - 1) * shown.size + len(shown.rows),
            "previous_page": _pager_link(request, shown.number - 1) if shown.has_previous else "",
            "next_page": _pager_link(request, shown.number + 1) if shown.has_next else "",
            "show_ranks": bool(ranks),
            "show_rule_scores": any(row.rule_score is not None for row in board.rows),
            "options": board_filter_options(board=board),
            "uncertainty": uncertainty,
            "rule_description": RULES[rule].description if rule in RULES else "",
            "exports": _export_links(
                base=reverse("api:suite-leaderboard", kwargs={"key": suite.key}),
                query={"rule": rule} | ({"missing": board.missing} if board.missing else {}),
                json_query={"page_size": str(MAX_PAGE_SIZE)},
            ),
        }
    return render_to_string("dashboard/suite.html", context, request=request)


def suite_rules(request: HttpRequest, key: str) -> HttpResponse:
    found = _suite_board(request, key, rule=OFFICIAL)
    if isinstance(found, HttpResponse):
        return found
    suite, version, board, _, missing = found
    comparison = suite_rule_comparison(board=board) if board is not None else None
    figures: dict[str, Any] = {}
    if comparison is not None and comparison.rules:
        figures["bump"] = bump_chart(
            rules=comparison.rules, systems=comparison.systems, ranks=comparison.ranks
        )
        if comparison.tau:
            figures["agreement"] = agreement_heatmap(rules=comparison.rules, tau=comparison.tau)
    rank_rows = (
        [
            (system, [comparison.ranks[rule].get(system) for rule in comparison.rules])
            for system in comparison.systems
        ]
        if comparison is not None
        else []
    )
    return render(
        request,
        "dashboard/rules.html",
        {
            "suite": suite,
            "version": version,
            "board": board,
            "missing": missing,
            "missing_policies": MISSING_POLICIES,
            "comparison": comparison,
            "rank_rows": rank_rows,
            "figures": figures,
        },
    )


def suite_efficiency_page(request: HttpRequest, key: str) -> HttpResponse:
    found = _suite_board(request, key, rule=OFFICIAL)
    if isinstance(found, HttpResponse):
        return found
    suite, version, board, _, missing = found
    efficiency = suite_efficiency(board=board) if board is not None else None
    charts = (
        [
            (
                axis,
                efficiency_figure(
                    points=efficiency.points[axis.key], cost_label=axis.label, log_x=True
                ),
            )
            for axis in efficiency.axes
            if efficiency.points.get(axis.key)
        ]
        if efficiency is not None
        else []
    )
    return render(
        request,
        "dashboard/efficiency.html",
        {
            "suite": suite,
            "version": version,
            "board": board,
            "missing": missing,
            "efficiency": efficiency,
            "charts": charts,
            "table": [(row, row.cells(efficiency.axes)) for row in efficiency.rows]
            if efficiency is not None
            else [],
        },
    )


@require_POST
@login_required
def suite_freeze(request: HttpRequest, key: str) -> HttpResponse:
    suite = get_object_or_404(Suite, key=key)
    version = suite_version_latest(suite=suite)
    options = _board_options(request)
    if isinstance(options, HttpResponse):
        return options
    if version is None:
        return HttpResponseBadRequest(
            "This suite has no published version.", content_type="text/plain"
        )
    rule, missing = options
    board = suite_leaderboard(suite_version=version, viewer=None, rule=rule, missing=missing)
    assert isinstance(request.user, User)  # behind login_required
    try:
        snapshot = snapshot_freeze(board=board, suite_version=version, created_by=request.user)
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


# --- Runs ----------------------------------------------------------------------------------


def run_detail(request: HttpRequest, uuid: str) -> HttpResponse:
    run = run_for_page(viewer=request.user, uuid=uuid)
    if run is None:
        raise Http404("No such run, or it is private.")
    curves = run_curves(run_ids=[run.pk]).get(run.pk, {})
    final = run_is_final(run=run)
    user = request.user
    return render(
        request,
        "dashboard/run.html",
        {
            "run": run,
            "scores": run.scores.select_related("metric").order_by("metric__position"),
            "transitions": run.transitions.order_by("at", "id"),
            "artifacts": run.artifacts.order_by("name"),
            "job": getattr(run, "job", None),
            "curves": curves_figure(curves=curves),
            "final": final,
            "live_url": "" if final else reverse("dashboard:run-live", kwargs={"uuid": run.uuid}),
            "poll_seconds": LIVE_POLL_SECONDS,
            "same_spec": run_same_spec(run=run, viewer=user),
            "tolerance": REPRODUCTION_TOLERANCE,
            "can_reproduce": user.is_authenticated
            and (user.pk == run.owner_id or user.is_staff)
            and run.method.executable,
        },
    )


@never_cache
@require_GET
def run_live(request: HttpRequest, uuid: str) -> JsonResponse:
    """What the run page polls while the run trains: status, progress, log tail, curves."""
    run = run_for_page(viewer=request.user, uuid=uuid)
    if run is None:
        return JsonResponse({"detail": "No such run, or it is private."}, status=404)
    curves = run_curves(run_ids=[run.pk]).get(run.pk, {})
    return JsonResponse(
        {**run_live_state(run=run, curves=curves), "figure": curves_figure(curves=curves)}
    )


@require_POST
@login_required
def run_reproduce_view(request: HttpRequest, uuid: str) -> HttpResponse:
    run = run_for_page(viewer=request.user, uuid=uuid)
    if run is None:
        raise Http404("No such run, or it is private.")
    assert isinstance(request.user, User)  # behind login_required
    try:
        queued = run_reproduce(run=run, requested_by=request.user)
    except ReproduceRefused as refused:
        messages.error(request, str(refused))
        return redirect("dashboard:run", uuid=run.uuid)
    messages.success(request, "Queued a reproduction of this run's spec.")
    return redirect("dashboard:run", uuid=queued.uuid)


def compare(request: HttpRequest) -> HttpResponse:
    requested = parse_run_ids(request.GET.getlist("runs"))
    comparison = runs_compare(viewer=request.user, uuids=requested)
    labels = {run.pk: run_label(run) for run in comparison.runs}
    return render(
        request,
        "dashboard/compare.html",
        {
            "comparison": comparison,
            "requested": len(requested),
            "limit": COMPARE_MAX_RUNS,
            "figures": [
                (key, f"compare-curve-{index}", figure)
                for index, (key, figure) in enumerate(
                    compare_curves_figures(labels=labels, curves=comparison.curves), start=1
                )
            ],
        },
    )


# --- Methods and backbones -----------------------------------------------------------------


def method_list(request: HttpRequest) -> HttpResponse:
    methods = methods_with_run_counts(viewer=request.user)
    return render(request, "dashboard/methods.html", {"methods": methods})


def method_detail(request: HttpRequest, key: str) -> HttpResponse:
    method = get_object_or_404(Method, key=key)
    return render(
        request,
        "dashboard/method.html",
        {
            "method": method,
            "runs": runs_recent(viewer=request.user, method=method),
            "run_count": runs_count(viewer=request.user, method=method),
        },
    )


def backbone_list(request: HttpRequest) -> HttpResponse:
    backbones = backbones_with_run_counts(viewer=request.user)
    return render(request, "dashboard/backbones.html", {"backbones": backbones})


def backbone_detail(request: HttpRequest, key: str) -> HttpResponse:
    backbone = get_object_or_404(Backbone, key=key)
    return render(
        request,
        "dashboard/backbone.html",
        {
            "backbone": backbone,
            "runs": runs_recent(viewer=request.user, backbone=backbone),
            "run_count": runs_count(viewer=request.user, backbone=backbone),
        },
    )


# --- Submitting ----------------------------------------------------------------------------


@login_required
def submit(request: HttpRequest) -> HttpResponse:
    """Scores of a run made elsewhere: pick the task, then give one score per metric."""
    chooser = TaskChoiceForm(request.GET or None)
    task = chooser.cleaned_data["task"] if request.GET and chooser.is_valid() else None
    if task is None:
        return render(request, "dashboard/submit.html", {"chooser": chooser, "form": None})
    form = ExternalRunForm(request.POST or None, task=task)
    if request.method == "POST" and form.is_valid():
        assert isinstance(request.user, User)  # behind login_required
        data = form.cleaned_data
        try:
            run = run_submit_scores(
                owner=request.user,
                method=data["method"],
                backbone=data["backbone"],
                task=task,
                config=data["config"],
                seed=data["seed"],
                scores=form.scores(),
                visibility=data["visibility"],
                tags=data["tags"],
                description=data["description"],
            )
        except RunInputError as error:
            form.add_error(form.field_for(str(error)), str(error))
        except QuotaExceeded as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Recorded your run.")
            return redirect("dashboard:run", uuid=run.uuid)
    return render(
        request,
        "dashboard/submit.html",
        {
            "chooser": chooser,
            "form": form,
            "task": task,
            "action": f"{reverse('dashboard:submit')}?{urlencode({'task': task.pk})}",
        },
    )


# --- Jobs and assets -----------------------------------------------------------------------


def job_queue_page(request: HttpRequest) -> HttpResponse:
    queue = job_queue()
    jobs = [*queue.running, *(item.job for item in queue.queued), *queue.failed]
    # Another user's private run shows as method, task and status only, as in the API.
    shown = {job.pk for job in jobs if job_details_visible(job=job, viewer=request.user)}
    return render(request, "dashboard/jobs.html", {"queue": queue, "shown": shown})


@cache_control(public=True, max_age=7 * 24 * 3600)
def plotly_js(request: HttpRequest) -> HttpResponse:
    """plotly.js from the installed plotly package: the dashboard works offline, no CDN."""
    return HttpResponse(_plotly_bundle(), content_type="application/javascript")


@functools.cache
def _plotly_bundle() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())
