#!/usr/bin/env python3
"""Soak test: Podium's production shape on loopback under steady load.

Starts a throwaway PostgreSQL and Redis (.ci/services.sh), migrates, loads the catalog and
seeds leaderboards, then serves Podium with gunicorn under PODIUM_ENV=production (loopback
hosts, plain HTTP, shared Redis cache) beside the platform's Celery worker. For --duration
seconds, --readers threads read leaderboards (API and pages) and --submitters threads submit
runs through the API with an Idempotency-Key. Reports errors, p50/p95 latency and the
submissions acknowledged against those found in the database; exits 1 on any error or
mismatch.

    .venv/bin/python .ci/soak.py --duration 300
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
READ_PATHS = (
    "/api/v1/suites/glue/leaderboard/",
    "/api/v1/suites/glue/leaderboard/?rule=borda&missing=impute",
    "/api/v1/suites/superglue/leaderboard/?rule=copeland&missing=impute",
    "/api/v1/tasks/glue/sst2/leaderboard/",
    "/api/v1/suites/glue/leaderboard/?format=csv",
    "/suites/glue/",
    "/suites/glue/?rule=borda&missing=impute",
    "/",
)
SEED_SCRIPT = """
import json, random
from django.contrib.auth.models import User
from api.services import token_create
from catalog.models import Backbone, Method, Task
from tracking.services import run_create_external
rng = random.Random(0)
paper = Method.objects.create(key="soak-paper", name="Soak paper", executable=False)
backbones = [
    Backbone.objects.create(key=f"soak-b{i}", name=f"Soak backbone {i}", source="hub",
                            hub_id=f"soak/b{i}")
    for i in range(6)
]
owner = User.objects.create_user("soak-seed")
tasks = Task.objects.filter(is_current=True, benchmark__key__in=["glue", "superglue"])
for backbone in backbones:
    for task in tasks:
        for seed in range(2):
            scores = {m.key: rng.uniform(0.3, 0.9) for m in task.metrics.all()}
            run_create_external(owner=owner, method=paper, backbone=backbone, task=task,
                                config={"lr": backbone.pk}, seed=seed, scores=scores)
keys = [token_create(user=User.objects.create_user(f"soak-{i}"), name="soak").key
        for i in range({submitters})]
print(json.dumps(keys))
"""


def say(message: str) -> None:
    print(f"soak: {message}", flush=True)


def poll(check: Callable[[], Any], *, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"soak: timed out after {timeout_s:.0f} s waiting for {what}")


# --- Services ----------------------------------------------------------------------------


@contextmanager
def services() -> Iterator[dict[str, str]]:
    """PostgreSQL + Redis from .ci/services.sh; Redis gets a password, as production needs."""
    # A folder of its own (services.sh opens it to the database's user and removes it).
    folder = Path(tempfile.mkdtemp(prefix="podium-soak-services-"))
    started = subprocess.run(
        [str(ROOT / ".ci" / "services.sh"), "start", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        if started.returncode != 0:
            raise SystemExit(f"soak: services did not start: {started.stderr.strip()}")
        exported = dict(
            item.split("=", 1)
            for item in shlex.split(started.stdout.strip().removeprefix("export "))
        )
        redis_port = re.search(r":(\d+)/", exported["CELERY_BROKER_URL"])
        assert redis_port is not None
        password = secrets.token_hex(16)
        redis = ["redis-cli", "-p", redis_port.group(1)]
        subprocess.run(
            [*redis, "CONFIG", "SET", "requirepass", password], check=True, capture_output=True
        )
        try:
            yield {
                "DATABASE_URL": exported["DATABASE_URL"],
                "CELERY_BROKER_URL": f"redis://:{password}@127.0.0.1:{redis_port.group(1)}/0",
                "CACHE_URL": f"redis://:{password}@127.0.0.1:{redis_port.group(1)}/1",
            }
        finally:
            # services.sh stops Redis without a password.
            subprocess.run(
                [*redis, "-a", password, "--no-auth-warning", "CONFIG", "SET", "requirepass", ""],
                check=False,
                capture_output=True,
            )
    finally:
        subprocess.run(
            [str(ROOT / ".ci" / "services.sh"), "stop", str(folder)], check=False, text=True
        )


def production_env(workdir: Path, urls: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODIUM_", "DJANGO_"))}
    env.update(urls)
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
        PODIUM_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        PODIUM_WORKER_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",  # plain HTTP on loopback, no TLS proxy in front
        PODIUM_VAR_DIR=str(workdir / "var"),
        STATIC_ROOT=str(workdir / "static"),
        # The soak measures the server, not the abuse limits: every throttle lifted.
        PODIUM_THROTTLE_ANON="off",
        PODIUM_THROTTLE_USER="off",
        PODIUM_THROTTLE_SUBMISSIONS="off",
        PODIUM_THROTTLE_ACCOUNTS="off",
        LOG_LEVEL="WARNING",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"soak: manage.py {args[0]} failed:\n{result.stderr[-3000:]}")
    return result.stdout


@contextmanager
def process(command: list[str], *, env: dict[str, str], log: Path) -> Iterator[Path]:
    with log.open("wb") as handle:
        child = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    try:
        yield log
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# --- Load ---------------------------------------------------------------------------------


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"read": [], "submit": []})
    by_path: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    acknowledged: dict[str, str] = field(default_factory=dict)  # idempotency key -> uuid

    def record(self, kind: str, path: str, seconds: float, error: str = "") -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            self.by_path.setdefault(path, []).append(seconds)
            if error:
                self.errors[error] += 1


class Connection:
    """One keep-alive HTTP connection per client thread, reopened after a failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            raise


def reader(port: int, tally: Tally, stop: threading.Event, offset: int) -> None:
    conn = Connection(port)
    paths = READ_PATHS[offset % len(READ_PATHS) :] + READ_PATHS[: offset % len(READ_PATHS)]
    while not stop.is_set():
        for path in paths:
            if stop.is_set():
                return
            began = time.perf_counter()
            try:
                status, _ = conn.request("GET", path, None, {"Host": "127.0.0.1"})
                error = "" if status == 200 else f"GET {path.split('?')[0]}: {status}"
            except (OSError, http.client.HTTPException) as failure:
                error = f"GET {path.split('?')[0]}: {type(failure).__name__}"
            tally.record("read", path, time.perf_counter() - began, error)


def submitter(port: int, key: str, number: int, tally: Tally, stop: threading.Event) -> None:
    conn = Connection(port)
    tasks = ("glue/sst2", "glue/rte", "glue/qnli", "glue/wnli")  # scored by accuracy alone
    sent = 0
    while not stop.is_set():
        sent += 1
        idempotency_key = f"soak-{number}-{sent}"
        body = {
            "method": "soak-paper",
            "backbone": f"soak-b{number % 6}",
            "task": tasks[sent % len(tasks)],
            "config": {"submitter": number},
            "seed": sent,
            "scores": {"accuracy": 0.5 + (sent % 10) / 100},
        }
        began = time.perf_counter()
        try:
            status, content = conn.request(
                "POST",
                "/api/v1/runs/",
                json.dumps(body).encode(),
                {
                    "Host": "127.0.0.1",
                    "Authorization": f"Token {key}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": idempotency_key,
                },
            )
            error = "" if status == 201 else f"POST /api/v1/runs/: {status} {content[:120]!r}"
            if status == 201:
                with tally.lock:
                    tally.acknowledged[idempotency_key] = json.loads(content)["uuid"]
        except (OSError, http.client.HTTPException) as failure:
            error = f"POST /api/v1/runs/: {type(failure).__name__}"
        tally.record("submit", "POST /api/v1/runs/", time.perf_counter() - began, error)


def stored_runs(database_url: str, uuids: list[str]) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM tracking_run WHERE uuid::text = ANY(%s)", (uuids,)
        ).fetchone()
    return int(row[0]) if row else 0


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds of load")
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--submitters", type=int, default=10)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per process")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="podium-soak-")))
        say("starting PostgreSQL and Redis")
        urls = stack.enter_context(services())
        env = production_env(workdir, urls)
        say("migrating, loading the catalog, seeding leaderboards")
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "collectstatic", "--noinput", "-v0")
        manage(env, "load_catalog", "-v0")
        keys = json.loads(
            manage(
                env, "shell", "-v0", "-c", SEED_SCRIPT.replace("{submitters}", str(args.submitters))
            )
            .strip()
            .splitlines()[-1]
        )
        web_log = stack.enter_context(
            process(
                [
                    PYTHON,
                    "-m",
                    "gunicorn",
                    "config.wsgi",
                    "--bind",
                    "127.0.0.1:0",
                    "--workers",
                    str(args.workers),
                    "--threads",
                    str(args.threads),
                    "--timeout",
                    "60",
                ],
                env=env,
                log=workdir / "gunicorn.log",
            )
        )
        stack.enter_context(
            process(
                [
                    PYTHON,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    "platform",
                    "--concurrency",
                    "2",
                    "--loglevel",
                    "WARNING",
                    "-n",
                    "soak@%h",
                ],
                env=env,
                log=workdir / "worker.log",
            )
        )
        port = int(
            poll(
                lambda: (
                    re.findall(r"Listening at: http://127\.0\.0\.1:(\d+)", web_log.read_text())
                    or [None]
                )[0],
                timeout_s=60,
                what="gunicorn to listen",
            )
        )
        poll(
            lambda: (
                Connection(port).request("GET", "/healthz", None, {"Host": "127.0.0.1"})[0] == 200
            ),
            timeout_s=60,
            what="/healthz to answer 200",
        )
        say(
            f"serving on 127.0.0.1:{port} ({args.workers} processes x {args.threads} threads); "
            f"{args.readers} readers and {args.submitters} submitters for {args.duration:.0f} s"
        )
        tally, stop = Tally(), threading.Event()
        threads = [
            threading.Thread(target=reader, args=(port, tally, stop, i), daemon=True)
            for i in range(args.readers)
        ] + [
            threading.Thread(target=submitter, args=(port, key, i, tally, stop), daemon=True)
            for i, key in enumerate(keys)
        ]
        load_before = round(os.getloadavg()[0], 2)
        began = time.monotonic()
        for thread in threads:
            thread.start()
        stop.wait(args.duration)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        elapsed = time.monotonic() - began
        found = stored_runs(urls["DATABASE_URL"], list(tally.acknowledged.values()))
        server_errors = web_log.read_text(errors="replace").count("Internal Server Error")

    reads, submits = tally.latencies["read"], tally.latencies["submit"]
    every = reads + submits
    figures = {
        "duration_s": round(elapsed, 1),
        "requests": len(every),
        "requests_per_s": round(len(every) / elapsed, 1),
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors.most_common(10)),
        "server_errors_logged": server_errors,
        "latency_ms": {
            name: {
                "count": len(values),
                "p50": round(1000 * percentile(values, 50), 1),
                "p95": round(1000 * percentile(values, 95), 1),
            }
            for name, values in (("all", every), ("read", reads), ("submit", submits))
        },
        "latency_ms_by_path": {
            path: {
                "count": len(values),
                "p50": round(1000 * percentile(values, 50), 1),
                "p95": round(1000 * percentile(values, 95), 1),
            }
            for path, values in sorted(tally.by_path.items())
        },
        # This machine's load (1-minute average) before and after: other work shares the CPUs.
        "load_average": [load_before, round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "submissions_acknowledged": len(tally.acknowledged),
        "submissions_found_in_db": found,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    failed = figures["errors"] or server_errors or found != len(tally.acknowledged)
    say("FAILED: errors or lost submissions" if failed else "passed: no error, nothing lost")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
