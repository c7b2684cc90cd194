"""Leaderboard at scale (issue 10, benchmark 5): the suite leaderboard API and page with
1,000 runs and with 100,000 runs (1,000 systems) in PostgreSQL, through a real server.

    python tests/bench/bench_leaderboard.py --out bench-results/leaderboard.json

A throwaway PostgreSQL + Redis come from ``.ci/services.sh`` (stopped at the end); the
schema is migrated and the catalog loaded with the project's own commands. Runs are
generated through the models with ``bulk_create`` on the official GLUE suite's tasks
(systems = method x backbone x config; every system has every task at every seed), all
public and succeeded, with one score per task metric. First the small size is served
and measured, then the same database grows to the large size and is measured again.

The server is gunicorn with the production settings (``PODIUM_ENV=production``,
DEBUG off; the requests carry ``X-Forwarded-Proto: https`` as from the TLS proxy), two
sync workers. For each size and URL (``/api/v1/suites/glue/leaderboard/`` and
``/suites/glue/``):

* warm: after warm-up requests (the computed board, and each page of it as sent, are
  cached under a key made of the suite's leaderboard stamps), sequential requests; p50
  and p95 of the wall time per request. Both URLs answer their first page (50 systems);
  the CSV/LaTeX exports, which hold the whole board, are not measured here;
* cold: before each request one run's description is edited through
  ``tracking.services.run_update``, which moves its task's leaderboard stamp, so every
  request recomputes the board (as after a new run arrives).

Targets (issue 10): the warm p95 grows by at most 2x from the small to the large size
and stays under 200 ms. Where a target is missed, the board computation at the large
size is profiled in-process (cProfile top functions and the SQL it runs, with times),
and both go into the JSON.

Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import os
import platform
import pstats
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SUITE = "glue"
URLS = {"api": f"/api/v1/suites/{SUITE}/leaderboard/", "page": f"/suites/{SUITE}/"}
P95_TARGET_MS = 200.0
GROWTH_TARGET = 2.0
# systems = METHODS x BACKBONES x configs; the small size keeps one backbone and config.
METHODS, BACKBONES = 10, 10


# ----------------------------------------------------------------------------- services


@contextmanager
def services() -> Iterator[dict[str, str]]:
    """PostgreSQL + Redis from .ci/services.sh; yields their environment variables."""
    folder = tempfile.mkdtemp(prefix="podium-bench-services-")
    script = str(ROOT / ".ci" / "services.sh")
    started = subprocess.run([script, "start", folder], capture_output=True, text=True)
    try:
        if started.returncode != 0:
            sys.exit(f"services.sh start failed:\n{started.stderr[-3000:]}")
        env: dict[str, str] = {}
        for line in started.stdout.splitlines():
            words = shlex.split(line)
            if words[:1] == ["export"]:
                for word in words[1:]:
                    name, _, value = word.partition("=")
                    env[name] = value
        yield env
    finally:
        subprocess.run([script, "stop", folder], capture_output=True, text=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def production_env(base: dict[str, str]) -> dict[str, str]:
    # Production refuses a password-less Redis broker; serving GETs never touches the
    # broker, so a URL with a password (unused) satisfies the check.
    broker = base["CELERY_BROKER_URL"].replace("redis://", "redis://:unused@", 1)
    return {
        **os.environ,
        **base,
        "CELERY_BROKER_URL": broker,
        "PODIUM_ENV": "production",
        "SECRET_KEY": "bench-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PODIUM_WORKER_KEY": "bench-worker-key-" + "y" * 32,
        "PODIUM_VAR_DIR": tempfile.mkdtemp(prefix="podium-bench-var-"),
        # Production serves collected, hashed static files (collected below).
        "STATIC_ROOT": tempfile.mkdtemp(prefix="podium-bench-static-"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }


def manage(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


@contextmanager
def gunicorn(env: dict[str, str], workers: int) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "300",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, _ = get(port, "/healthz")
                if status in (200, 503):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("gunicorn did not start")
            time.sleep(0.2)  # polling the server's readiness, with a deadline
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get(port: int, path: str) -> tuple[int, int, float]:
    """(status, body bytes, seconds) of one GET, as from behind the TLS proxy."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("GET", path, headers={"X-Forwarded-Proto": "https", "Host": "localhost"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return response.status, len(body), time.perf_counter() - started


# ----------------------------------------------------------------------------- data


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def grow(*, systems: int, seeds: int) -> dict[str, float]:
    """Add runs (and their scores) until `systems` systems have every suite task at every
    seed; systems already there are kept. Returns the counts in the database."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from api.selectors import suite_published_latest
    from catalog.models import Backbone, Method, TaskMetric
    from catalog.selectors import suite_version_items
    from tracking.models import ProvenanceTier, Run, Score, Visibility
    from tracking.services import board_stamps_bump, config_fingerprint, eval_split_fields
    from tracking.status import RunStatus

    owner, _ = get_user_model().objects.get_or_create(username="bench-owner")
    methods = [
        Method.objects.get_or_create(key=f"bench-method-{m}", defaults={"name": f"Method {m}"})[0]
        for m in range(METHODS)
    ]
    backbones = [
        Backbone.objects.get_or_create(
            key=f"bench-backbone-{b}",
            defaults={"name": f"Backbone {b}", "source": "package", "package": f"bench_{b}"},
        )[0]
        for b in range(BACKBONES)
    ]
    version = suite_published_latest(key=SUITE)
    assert version is not None, "load_catalog publishes the official suite"
    tasks = [item.task for item in suite_version_items(suite_version=version)]
    metrics = {t.pk: list(TaskMetric.objects.filter(task=t)) for t in tasks}
    split_fields = {t.pk: eval_split_fields(task=t) for t in tasks}
    have = (
        Run.objects.filter(owner=owner).values("method", "backbone", "config_hash").distinct()
    ).count()
    rng = random.Random(systems)
    now = timezone.now()
    batch: list[Run] = []

    def flush() -> None:
        created = Run.objects.bulk_create(batch)
        Score.objects.bulk_create(
            [
                Score(run=run, metric=metric, value=rng.uniform(0.4, 0.95))
                for run in created
                for metric in metrics[run.task_id]
            ],
            batch_size=5000,
        )
        batch.clear()

    for s in range(have, systems):
        method, backbone = methods[s % METHODS], backbones[(s // METHODS) % BACKBONES]
        config = {"learning_rate": 1e-5 * (1 + s // (METHODS * BACKBONES)), "system": s}
        fingerprint = config_fingerprint(config)
        for task in tasks:
            for seed in range(seeds):
                batch.append(
                    Run(
                        owner=owner,
                        method=method,
                        backbone=backbone,
                        task=task,
                        config=config,
                        config_hash=fingerprint,
                        seed=seed,
                        status=RunStatus.SUCCEEDED,
                        visibility=Visibility.PUBLIC,
                        provenance_tier=ProvenanceTier.EXECUTED,
                        finished_at=now,
                        **split_fields[task.pk],
                    )
                )
        if len(batch) >= 5000:
            flush()
    if batch:
        flush()
    # bulk_create sends no signals: a bulk import moves the stamps itself, once.
    board_stamps_bump(task_ids=[t.pk for t in tasks])
    return {
        "runs": Run.objects.count(),
        "scores": Score.objects.count(),
        "systems": systems,
        "tasks": len(tasks),
        "seeds": seeds,
    }


def change_board() -> None:
    """Edit one run's description through the service: its task's leaderboard stamp
    moves, so the board's cache key changes, as on a new run."""
    from tracking.models import Run
    from tracking.services import run_update

    run = Run.objects.select_related("owner").order_by("id").first()
    assert run is not None
    run_update(run_id=run.pk, actor=run.owner, description=f"edited {time.monotonic_ns()}")


# ----------------------------------------------------------------------------- measuring


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def figures(seconds: list[float]) -> dict[str, Any]:
    ms = [1000 * s for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 0.95),
        "max_ms": max(ms),
        "mean_ms": statistics.fmean(ms),
    }


def measure(port: int, *, warmup: int, requests: int, cold: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path in URLS.items():
        statuses = set()
        cold_times = []
        for _ in range(cold):
            change_board()
            status, _, seconds = get(port, path)
            statuses.add(status)
            cold_times.append(seconds)
        for _ in range(warmup):
            get(port, path)
        warm_times = []
        body = 0
        for _ in range(requests):
            status, body, seconds = get(port, path)
            statuses.add(status)
            warm_times.append(seconds)
        if statuses != {200}:
            sys.exit(f"{path} answered {sorted(statuses)}")
        out[name] = {
            "path": path,
            "bytes": body,
            "warm": figures(warm_times),
            "cold": figures(cold_times) if cold_times else None,
        }
    return out


def profile_board(top: int = 25) -> dict[str, Any]:
    """The cold board computation in-process: cProfile's top functions and the SQL."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from api.selectors import suite_published_latest
    from dashboard.selectors import suite_leaderboard

    version = suite_published_latest(key=SUITE)
    assert version is not None
    cache.clear()
    profiler = cProfile.Profile()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        profiler.enable()
        board = suite_leaderboard(suite_version=version, viewer=None)
        profiler.disable()
    seconds = time.perf_counter() - started
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
    sql = sorted(
        ((1000 * float(q["time"]), q["sql"][:400]) for q in queries.captured_queries),
        reverse=True,
    )
    return {
        "seconds": seconds,
        "rows": len(board.rows),
        "queries": len(sql),
        "sql_ms_total": sum(ms for ms, _ in sql),
        "slowest_queries": [{"ms": ms, "sql": text} for ms, text in sql[:8]],
        "cprofile_cumulative_top": text.getvalue().splitlines()[:60],
    }


def profile_warm_request(path: str, top: int = 25) -> dict[str, Any]:
    """One warm request in-process (Django's test client, this process's cache warmed by
    a first request): where a cached board's request still spends its time."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="localhost")
    client.get(path)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        profiler.enable()
        response = client.get(path)
        profiler.disable()
    seconds = time.perf_counter() - started
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
    return {
        "path": path,
        "status": response.status_code,
        "seconds": seconds,
        "queries": [
            {"ms": 1000 * float(q["time"]), "sql": q["sql"][:300]} for q in queries.captured_queries
        ],
        "cprofile_cumulative_top": text.getvalue().splitlines()[:60],
    }


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench-results/leaderboard.json")
    ap.add_argument("--small-systems", type=int, default=10)
    ap.add_argument("--large-systems", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=0, help="0: 100,000 runs at the large size")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    started = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "leaderboard at scale (issue 10, benchmark 5)"}
    with services() as base:
        env = production_env(base)
        # The production settings would refuse plain HTTP from the bench's own process.
        os.environ["SECURE_SSL_REDIRECT"] = "0"
        manage({**env, "SECURE_SSL_REDIRECT": "0"}, "migrate", "--noinput")
        manage(env, "load_catalog")
        manage(env, "collectstatic", "--noinput")
        django_setup({**env, "SECURE_SSL_REDIRECT": "0"})
        from api.selectors import suite_published_latest
        from catalog.selectors import suite_version_items

        version = suite_published_latest(key=SUITE)
        assert version is not None
        n_tasks = len(list(suite_version_items(suite_version=version)))
        seeds = args.seeds or max(1, round(100_000 / (args.large_systems * n_tasks)))
        sizes: dict[str, Any] = {}
        for label, systems in (("small", args.small_systems), ("large", args.large_systems)):
            t0 = time.perf_counter()
            counts = grow(systems=systems, seeds=seeds)
            counts["generate_s"] = time.perf_counter() - t0
            print(f"{label}: {counts}", flush=True)
            with gunicorn(env, args.workers) as port:
                got = measure(port, warmup=args.warmup, requests=args.requests, cold=args.cold)
            sizes[label] = {"counts": counts, **got}
            for name in URLS:
                w, c = got[name]["warm"], got[name]["cold"]
                print(
                    f"  {name:4}: warm p50 {w['p50_ms']:.1f} ms, p95 {w['p95_ms']:.1f} ms; "
                    f"cold p50 {c['p50_ms']:.0f} ms ({got[name]['bytes']} bytes)",
                    flush=True,
                )
        growth = {
            name: sizes["large"][name]["warm"]["p95_ms"] / sizes["small"][name]["warm"]["p95_ms"]
            for name in URLS
        }
        met = {
            name: growth[name] <= GROWTH_TARGET
            and sizes["large"][name]["warm"]["p95_ms"] < P95_TARGET_MS
            for name in URLS
        }
        result["sizes"] = sizes
        result["warm_p95_growth"] = growth
        result["cold_p50_growth"] = {
            name: sizes["large"][name]["cold"]["p50_ms"] / sizes["small"][name]["cold"]["p50_ms"]
            for name in URLS
        }
        result["targets_met"] = met
        # Where the time goes at scale: the cold board computation, and a warm request of
        # each kind (the board then comes from the cache). Always profiled.
        result["profile_large_cold_board"] = profile_board()
        result["profile_large_warm_requests"] = {
            name: profile_warm_request(path) for name, path in URLS.items()
        }
    result["meta"] = {
        "python": platform.python_version(),
        "server": f"gunicorn, {args.workers} sync workers, PODIUM_ENV=production (DEBUG off), "
        "default cache (per-process LocMemCache)",
        "database": "PostgreSQL from .ci/services.sh (fsync off, as for tests)",
        "client": "sequential GETs from the bench process, a new connection each",
        "warm": f"{args.warmup} warm-up requests, then {args.requests} timed",
        "cold": f"{args.cold} requests, each after one run's description was edited",
        "targets": f"warm p95 growth <= {GROWTH_TARGET}x and large warm p95 < {P95_TARGET_MS} ms",
        "cpus": os.cpu_count(),
        "total_seconds": time.perf_counter() - started,
    }
    print("\n== Leaderboard at scale: warm p95 (ms), small -> large ==")
    for name in URLS:
        small, large = sizes["small"][name], sizes["large"][name]
        print(
            f"{name:4} {URLS[name]:32} {small['warm']['p95_ms']:8.1f} -> "
            f"{large['warm']['p95_ms']:8.1f}  growth {growth[name]:.2f}x  "
            f"{'met' if met[name] else 'MISSED'}; cold p50 {small['cold']['p50_ms']:.0f} -> "
            f"{large['cold']['p50_ms']:.0f} ms"
        )
    profile = result.get("profile_large_cold_board")
    if profile:
        print(
            f"cold board at the large size in-process: {profile['seconds']:.2f}s, "
            f"{profile['queries']} queries ({profile['sql_ms_total']:.0f} ms of SQL)"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {out} in {result['meta']['total_seconds']:.0f}s")


if __name__ == "__main__":
    main()
