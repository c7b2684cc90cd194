"""Tracking ingest benchmark (issue 10, benchmark 4): Podium against an MLflow tracking server.

    python tests/bench/bench_ingest.py --baseline-python .venv-bench/bin/python \\
        --points 100000 --out bench-results/ingest.json

Both servers run on this machine against one PostgreSQL server (started here with
`.ci/services.sh`, separate databases), each with 2 worker processes: Podium under gunicorn
with DEBUG off, MLflow as `mlflow server` (its own default server, uvicorn). A client logs
the same points to each: `--points` values over 10 metric keys (10 per step), timed end to
end from creating the run to the run being finished with every point stored:

- Podium: `podium.init`, `run.log({...10 keys}, step=...)` per step, `run.finish()` (the
  client batches in a background thread; finish waits until the server has every point).
- MLflow, as a user after speed would write it: `MlflowClient.create_run`, `log_batch` with
  the batch API's maximum of 1,000 metrics a call, `set_terminated`. Calling `log_metric`
  once per point would be far slower (one request per point), so the batch API is the fair
  baseline. MLflow's asynchronous mode (`log_batch(..., synchronous=False)`, then waiting
  for it) is measured too and reported beside it.

Each side gets one untimed warm-up run, then `--repeat` timed runs; the median is
compared. ratio = MLflow seconds / Podium seconds (above 1: Podium is faster). Every run is
checked afterwards: the server must hold exactly the points sent. Both databases run with
the test cluster's settings (fsync off), the same for both.

Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]

KEYS = 10
WORKERS = 2
TASK, METHOD, BACKBONE = "glue/sst2", "full_finetuning", "bench-backbone"


def value(step: int, key: int) -> float:
    return 1.0 / (step + 1) + key * 1e-3 + (step % 7) * 1e-6


# --- services and servers -----------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def postgres() -> Iterator[dict[str, str]]:
    """PostgreSQL (and Redis, which Podium's settings expect) on free ports, then stopped."""
    folder = tempfile.mkdtemp(prefix="podium-bench-services-")
    script = str(ROOT / ".ci" / "services.sh")
    started = subprocess.run([script, "start", folder], capture_output=True, text=True)
    if started.returncode != 0:
        raise SystemExit(f"bench_ingest: could not start PostgreSQL: {started.stderr.strip()}")
    try:
        exports = shlex.split(started.stdout.strip().removeprefix("export "))
        yield dict(item.split("=", 1) for item in exports)
    finally:
        subprocess.run([script, "stop", folder], capture_output=True)


def create_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


class Server:
    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._handle = log.open("w")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._handle, stderr=subprocess.STDOUT
        )

    def wait_ready(self, url: str, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        tail = self.log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"bench_ingest: {self.name} did not start:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._handle.close()


def podium_env(services: dict[str, str], var: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=services["DATABASE_URL"],
        CELERY_BROKER_URL=services["CELERY_BROKER_URL"],
        PODIUM_ENV="development",
        DEBUG="false",
        PODIUM_VAR_DIR=str(var),
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
        LOG_LEVEL="WARNING",
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


SETUP_PODIUM = """
from api.services import token_create
from catalog.models import Backbone
from django.contrib.auth.models import User
user = User.objects.create_user("bench")
Backbone.objects.create(key="bench-backbone", name="Bench", source="hub", hub_id="org/bench")
print(token_create(user=user, name="bench").key)
"""


def start_podium(services: dict[str, str], work: Path) -> tuple[Server, str, str]:
    env = podium_env(services, work / "var")
    manage = [sys.executable, str(ROOT / "manage.py")]
    for step in (["migrate", "--noinput"], ["load_catalog"]):
        subprocess.run([*manage, *step], env=env, check=True, capture_output=True)
    token = (
        subprocess.run(
            [*manage, "shell", "-c", SETUP_PODIUM],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(WORKERS)]
    command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    server = Server("Podium (gunicorn)", command, env, work / "podium.log")
    url = f"http://127.0.0.1:{port}"
    server.wait_ready(f"{url}/api/v1/benchmarks/")
    return server, url, token


def start_mlflow(baseline_python: str, database_url: str, work: Path) -> tuple[Server, str]:
    port = free_port()
    # SQLAlchemy 2.1 defaults to psycopg 3; the bench venv has psycopg2, as MLflow documents.
    uri = database_url.replace("postgres://", "postgresql+psycopg2://", 1)
    command = [baseline_python, "-m", "mlflow", "server", "--backend-store-uri", uri]
    command += ["--default-artifact-root", (work / "mlruns").as_uri()]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
    server = Server("MLflow server", command, dict(os.environ), work / "mlflow.log")
    url = f"http://127.0.0.1:{port}"
    server.wait_ready(f"{url}/health")
    return server, url


# --- the two clients ------------------------------------------------------------------------


def podium_ingest(url: str, token: str, *, points: int, seed: int) -> float:
    import podium
    from podium.config import Credentials
    from podium.http import Api

    steps = points // KEYS
    started = time.perf_counter()
    run = podium.init(
        task=TASK,
        method=METHOD,
        backbone=BACKBONE,
        config={"bench": "ingest"},
        seed=seed,
        url=url,
        token=token,
    )
    for step in range(steps):
        run.log({f"metric_{k}": value(step, k) for k in range(KEYS)}, step=step)
    delivered = run.finish(timeout=900)
    elapsed = time.perf_counter() - started
    if not delivered or run.errors:
        raise SystemExit(f"bench_ingest: Podium did not take every point: {run.errors}")
    api = Api(Credentials(url=url, token=token))
    series = api.get(f"/api/v1/runs/{run.uuid}/metrics/", max_points="4")["series"]
    stored = sum(s["total"] for s in series.values())
    if stored != steps * KEYS:
        raise SystemExit(f"bench_ingest: Podium stored {stored} points, not {steps * KEYS}")
    return elapsed


MLFLOW_CLIENT = r"""
import json, sys, time
from mlflow import MlflowClient
from mlflow.entities import Metric

url, name = sys.argv[1], sys.argv[5]
points, keys, asynchronous = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
steps = points // keys
client = MlflowClient(tracking_uri=url)
experiment = client.create_experiment(name)

def value(step, key):
    return 1.0 / (step + 1) + key * 1e-3 + (step % 7) * 1e-6

started = time.perf_counter()
run_id = client.create_run(experiment).info.run_id
batch, pending = [], []
for step in range(steps):
    now = int(time.time() * 1000)
    for key in range(keys):
        batch.append(Metric(f"metric_{key}", value(step, key), now, step))
    if len(batch) >= 1000:  # the batch API's limit
        done = client.log_batch(run_id, metrics=batch, synchronous=not asynchronous)
        if done is not None:
            pending.append(done)
        batch = []
if batch:
    done = client.log_batch(run_id, metrics=batch, synchronous=not asynchronous)
    if done is not None:
        pending.append(done)
for operation in pending:
    operation.wait()
client.set_terminated(run_id)
elapsed = time.perf_counter() - started
stored = sum(len(client.get_metric_history(run_id, f"metric_{k}")) for k in range(keys))
print(json.dumps({"seconds": elapsed, "stored": stored}))
"""


def mlflow_ingest(
    baseline_python: str, url: str, *, points: int, asynchronous: bool, name: str
) -> float:
    """One MLflow run, timed inside the baseline's own process (its start-up not timed)."""
    done = subprocess.run(
        [
            baseline_python,
            "-c",
            MLFLOW_CLIENT,
            url,
            str(points),
            str(KEYS),
            "1" if asynchronous else "0",
            name,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench_ingest: the MLflow client failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    expected = (points // KEYS) * KEYS
    if result["stored"] != expected:
        raise SystemExit(f"bench_ingest: MLflow stored {result['stored']} points, not {expected}")
    return float(result["seconds"])


def baseline_version(baseline_python: str) -> str:
    return subprocess.run(
        [baseline_python, "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "ingest.json"))
    args = parser.parse_args()
    if args.points < KEYS:
        parser.error(f"--points must be at least {KEYS}")
    if not Path(args.baseline_python).exists():
        parser.error(
            f"{args.baseline_python} not found: create the bench venv and install mlflow and "
            "psycopg2-binary in it (see tests/bench/README.md)"
        )
    version = baseline_version(args.baseline_python)
    points = (args.points // KEYS) * KEYS
    work = Path(tempfile.mkdtemp(prefix="podium-bench-ingest-"))  # server logs, kept
    timings: dict[str, list[float]] = {"podium": [], "mlflow_batch": [], "mlflow_async": []}
    with postgres() as services, ExitStack() as servers:
        mlflow_db = create_database(services["DATABASE_URL"], "mlflow")
        podium_server, podium_url, token = start_podium(services, work)
        servers.callback(podium_server.stop)
        mlflow_server, mlflow_url = start_mlflow(args.baseline_python, mlflow_db, work)
        servers.callback(mlflow_server.stop)
        print(f"{points:,} points ({points // KEYS:,} steps x {KEYS} keys); warming up")
        podium_ingest(podium_url, token, points=1000, seed=-1)
        mlflow_ingest(
            args.baseline_python, mlflow_url, points=1000, asynchronous=False, name="warm"
        )
        for attempt in range(args.repeat):
            timings["podium"].append(podium_ingest(podium_url, token, points=points, seed=attempt))
            for kind, asynchronous in (("mlflow_batch", False), ("mlflow_async", True)):
                timings[kind].append(
                    mlflow_ingest(
                        args.baseline_python,
                        mlflow_url,
                        points=points,
                        asynchronous=asynchronous,
                        name=f"{kind}-{attempt}",
                    )
                )
            print(
                f"  run {attempt + 1}: Podium {timings['podium'][-1]:.2f} s, MLflow "
                f"log_batch {timings['mlflow_batch'][-1]:.2f} s, MLflow async "
                f"{timings['mlflow_async'][-1]:.2f} s",
                flush=True,
            )
    median = {kind: statistics.median(values) for kind, values in timings.items()}
    ratio = median["mlflow_batch"] / median["podium"]
    ratio_async = median["mlflow_async"] / median["podium"]
    print(
        f"baseline (MLflow {version}, log_batch): {median['mlflow_batch']:.2f} s; "
        f"Podium: {median['podium']:.2f} s; ratio {ratio:.2f} "
        f"({'at least as fast' if ratio >= 1 else 'SLOWER than the baseline'})"
    )
    print(f"MLflow asynchronous log_batch: {median['mlflow_async']:.2f} s; ratio {ratio_async:.2f}")
    result: dict[str, Any] = {
        "benchmark": "tracking ingest (issue 10, benchmark 4)",
        "points": points,
        "keys": KEYS,
        "steps": points // KEYS,
        "repeat": args.repeat,
        "baseline": f"MLflow {version} tracking server, MlflowClient.log_batch (1,000 a call)",
        "baseline_s": median["mlflow_batch"],
        "podium_s": median["podium"],
        "ratio": ratio,
        "target": "ratio >= 1 (at least as fast)",
        "met": ratio >= 1,
        "mlflow_async_s": median["mlflow_async"],
        "ratio_vs_mlflow_async": ratio_async,
        "runs_s": timings,
        "points_per_s": {kind: points / seconds for kind, seconds in median.items()},
        "setup": {
            "database": "one PostgreSQL server (.ci/services.sh), a database each",
            "podium_server": f"gunicorn, {WORKERS} workers, DEBUG off",
            "mlflow_server": f"mlflow server, {WORKERS} workers",
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} (server logs in {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
