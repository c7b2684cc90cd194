"""A database outage is a 503 with Retry-After, never a 500, and Podium heals by itself.

The end-to-end test serves Podium with gunicorn (persistent, health-checked connections, as
in production) on the test database, submits runs through the API from client threads, and
stops and restarts the PostgreSQL that `make test` started (`.ci/services.sh pg-stop` /
`pg-start`). Every submission carries an Idempotency-Key and is retried until acknowledged,
so afterwards the database must hold exactly one run per acknowledged submission.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections
from django.http import HttpRequest, HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from api.services import token_create
from tests.factories import BackboneFactory, MethodFactory, TaskFactory, UserFactory
from tracking.models import Run

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES = REPO_ROOT / ".ci" / "services.sh"
RETRY_AFTER_S = 1
# Production's shape: several processes, each with threads holding persistent connections.
GUNICORN_OPTIONS = ["--bind", "127.0.0.1:0", "--workers", "2", "--threads", "4", "--timeout", "60"]
MAX_ATTEMPTS = 2000  # per submission: about 100 s of retries


# --- The middleware, on a connection broken for real ----------------------------------


def break_connection() -> None:
    """Close the driver's connection behind Django's back, as a database restart does."""
    connection.ensure_connection()
    assert connection.connection is not None
    connection.connection.close()


@pytest.mark.django_db(transaction=True)
def test_an_api_request_on_a_broken_connection_is_a_503_with_retry_after(
    settings: Settings,
) -> None:
    settings.PODIUM_DB_OUTAGE_RETRY_AFTER_S = 7
    break_connection()
    try:
        response = Client(raise_request_exception=False).get("/api/v1/methods/")
    finally:
        connection.close()
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "7"
    assert response["Content-Type"] == "application/json"
    assert "retry in 7 seconds" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_page_on_a_broken_connection_is_a_short_html_503() -> None:
    break_connection()
    try:
        response = Client(raise_request_exception=False).get("/")
    finally:
        connection.close()
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert int(response["Retry-After"]) > 0
    assert b"briefly unavailable" in response.content


class DatabaseTouchingMiddleware:
    """A middleware that queries the database before any view runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        User.objects.exists()
        return self.get_response(request)


@pytest.mark.django_db(transaction=True)
def test_an_outage_met_inside_another_middleware_is_a_503_too(settings: Settings) -> None:
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        f"{__name__}.DatabaseTouchingMiddleware",
    ]
    break_connection()
    try:
        response = Client(raise_request_exception=False).get("/api/v1/methods/")
    finally:
        connection.close()
    assert response.status_code == 503, response.content
    assert "Retry-After" in response


@pytest.mark.django_db
def test_other_errors_are_left_alone(client: Client) -> None:
    assert client.get("/api/v1/runs/00000000-0000-0000-0000-000000000000/").status_code == 404


# --- PostgreSQL restarted under a running server ---------------------------------------


@pytest.fixture
def restartable_database() -> Path:
    """The services folder of the PostgreSQL that the test database lives on."""
    services_dir = os.environ.get("PODIUM_SERVICES_DIR", "")
    started = os.environ.get("PODIUM_SERVICES_DATABASE_URL", "")
    if not services_dir or not started or os.environ.get("DATABASE_URL") != started:
        pytest.skip(
            "the database was given from outside (DATABASE_URL), so this test has no control "
            "over it; `make test` without DATABASE_URL starts one it can restart"
        )
    return Path(services_dir)


def services(action: str, services_dir: Path) -> None:
    result = subprocess.run(
        [str(SERVICES), action, str(services_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"services.sh {action}: {result.stderr}"


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def gunicorn(tmp_path: Path, transactional_db: None) -> Iterator[Server]:
    """Podium under gunicorn on the test database: threads with persistent connections."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "platform")]),
        PODIUM_ENV="test",
        PODIUM_VAR_DIR=str(tmp_path / "var"),
        PODIUM_DB_OUTAGE_RETRY_AFTER_S=str(RETRY_AFTER_S),
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        ),
        DATABASE_CONN_MAX_AGE="600",
    )
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", *GUNICORN_OPTIONS],
            cwd=REPO_ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        port = poll(lambda: _listening_port(log), timeout_s=60, what=f"gunicorn to listen ({log})")
        server = Server(url=f"http://127.0.0.1:{port}", process=process, log=log)
        poll(lambda: get(server, "/healthz")[0] == 200, timeout_s=60, what="/healthz to be 200")
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def _listening_port(log: Path) -> int | None:
    match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
    return int(match.group(1)) if match else None


def poll(check: Callable[[], Any], *, timeout_s: float, what: str) -> Any:
    """Poll a condition until it holds (its value) or the deadline passes (a failure)."""
    stop = threading.Event()
    for _ in range(int(timeout_s / 0.05)):
        value = check()
        if value:
            return value
        stop.wait(0.05)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def request(
    server: Server, method: str, path: str, *, body: Any = None, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode() if body is not None else None
    call = urllib.request.Request(server.url + path, data=data, method=method, headers=headers)
    if data is not None:
        call.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(call, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def get(server: Server, path: str) -> tuple[int, dict[str, str], bytes]:
    try:
        return request(server, "GET", path, headers={})
    except (ConnectionError, urllib.error.URLError):
        return 0, {}, b""


@dataclass
class Tally:
    """What the client threads saw, and a condition to wait on."""

    changed: threading.Condition = field(default_factory=threading.Condition)
    acknowledged: dict[str, str] = field(default_factory=dict)  # idempotency key -> run uuid
    statuses: list[tuple[str, int]] = field(default_factory=list)  # (what, status)
    unavailable: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def record(self, what: str, status: int) -> None:
        with self.changed:
            self.statuses.append((what, status))
            self.changed.notify_all()

    def count(self, what: str, status: int, *, since: int = 0) -> int:
        return sum(1 for w, s in self.statuses[since:] if (w, s) == (what, status))

    def wait_for(self, predicate: Callable[[], bool], *, timeout_s: float, what: str) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: predicate() or bool(self.unexpected), timeout_s):
                pytest.fail(f"timed out after {timeout_s} s waiting for {what}: {self.summary()}")
        assert not self.unexpected, self.unexpected

    def summary(self) -> str:
        counts: dict[tuple[str, int], int] = {}
        for entry in self.statuses:
            counts[entry] = counts.get(entry, 0) + 1
        return f"{counts}, unexpected: {self.unexpected[:5]}"


def submitter(
    server: Server, token: str, tally: Tally, stop: threading.Event, keys: Iterator[int]
) -> None:
    """Submits runs one after another, each retried under its key until acknowledged (also
    after `stop`: a submission once begun is seen through, as a real client would)."""
    headers = {"Authorization": f"Token {token}"}
    while not stop.is_set():
        number = next(keys)
        key = f"outage-{number}"
        body = {
            "method": "paper",
            "backbone": "minilm",
            "task": "bench/sst",
            "seed": number,
            "scores": {"accuracy": 0.5},
        }
        for _ in range(MAX_ATTEMPTS):
            try:
                status, response_headers, content = request(
                    server,
                    "POST",
                    "/api/v1/runs/",
                    body=body,
                    headers=headers | {"Idempotency-Key": key},
                )
            except (ConnectionError, urllib.error.URLError, TimeoutError) as error:
                tally.unexpected.append(f"POST {key}: {error!r}")
                tally.record("submit", -1)
                return
            if status in (200, 201):
                with tally.changed:
                    tally.acknowledged[key] = json.loads(content)["uuid"]
                tally.record("submit", status)
                break
            if status != 503:
                tally.unexpected.append(f"POST {key}: {status} {content[:300]!r}")
                tally.record("submit", status)
                return
            tally.unavailable.append(("submit", response_headers, content))
            tally.record("submit", status)
            stop.wait(0.05)  # a short pause before the retry
        else:
            tally.unexpected.append(f"POST {key}: still 503 after {MAX_ATTEMPTS} attempts")
            tally.record("submit", -1)
            return


READS = (("page", "/"), ("list", "/api/v1/runs/?limit=5"), ("health", "/healthz"))


def reader(server: Server, tally: Tally, stop: threading.Event) -> None:
    """Reads a page, an API list and /healthz, expecting 200 or, during the outage, 503."""
    while not stop.is_set():
        for what, path in READS:
            try:
                status, response_headers, content = request(server, "GET", path, headers={})
            except (ConnectionError, urllib.error.URLError, TimeoutError) as error:
                tally.unexpected.append(f"GET {path}: {error!r}")
                tally.record(what, -1)
                return
            if status == 503:
                tally.unavailable.append((what, response_headers, content))
            elif status != 200:
                tally.unexpected.append(f"GET {path}: {status} {content[:300]!r}")
            tally.record(what, status)
        stop.wait(0.05)


@pytest.mark.timeout(240)
def test_restarting_postgresql_under_load_loses_no_acknowledged_submission(
    restartable_database: Path, gunicorn: Server
) -> None:
    MethodFactory.create(key="paper", executable=False)
    BackboneFactory.create(key="minilm")
    TaskFactory.create(benchmark__key="bench", key="sst")
    token = token_create(user=UserFactory.create(username="alice"), name="outage").key
    # The restart cuts this process's connection too; reconnect afterwards.
    connections.close_all()

    tally, stop, keys = Tally(), threading.Event(), itertools.count()
    threads = [
        threading.Thread(target=submitter, args=(gunicorn, token, tally, stop, keys), daemon=True)
        for _ in range(3)
    ] + [threading.Thread(target=reader, args=(gunicorn, tally, stop), daemon=True)]
    for thread in threads:
        thread.start()
    stopped = False
    try:
        tally.wait_for(
            lambda: tally.count("submit", 201) >= 10, timeout_s=60, what="submissions to flow"
        )
        services("pg-stop", restartable_database)
        stopped = True
        outage_began = len(tally.statuses)
        tally.wait_for(
            lambda: (
                tally.count("submit", 503, since=outage_began) >= 5
                and tally.count("page", 503, since=outage_began) >= 1
                and tally.count("list", 503, since=outage_began) >= 1
                and tally.count("health", 503, since=outage_began) >= 1
            ),
            timeout_s=60,
            what="503s during the outage",
        )
        services("pg-start", restartable_database)
        stopped = False
        restarted = len(tally.statuses)
        tally.wait_for(
            lambda: (
                tally.count("submit", 201, since=restarted) >= 10
                and tally.count("page", 200, since=restarted) >= 1
            ),
            timeout_s=60,
            what="the server to recover by itself",
        )
    finally:
        if stopped:  # a failed wait: bring the database back for the other tests
            services("pg-start", restartable_database)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        connections.close_all()

    assert not any(thread.is_alive() for thread in threads), "a client thread hangs"
    assert not tally.unexpected, tally.unexpected
    statuses = {status for _, status in tally.statuses}
    assert statuses <= {200, 201, 503}, tally.summary()
    for what, headers, content in tally.unavailable:
        if what == "health":  # /healthz reports the outage itself, check by check
            assert json.loads(content)["checks"]["database"]["ok"] is False
            continue
        assert int(headers["Retry-After"]) == RETRY_AFTER_S
        if what == "page":
            assert headers["Content-Type"].startswith("text/html")
            assert b"briefly unavailable" in content
        else:
            assert "retry in" in json.loads(content)["detail"]
    # Every acknowledged submission is stored, exactly once.
    acknowledged = set(tally.acknowledged.values())
    stored = {str(uuid) for uuid in Run.objects.values_list("uuid", flat=True)}
    assert acknowledged == stored
    assert Run.objects.count() == len(tally.acknowledged)
    assert "Database unavailable" in gunicorn.log.read_text(errors="replace")
