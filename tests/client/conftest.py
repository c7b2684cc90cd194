"""Fixtures for the `podium` client: a live Podium server with a user and token, an isolated
home for credentials and spool files, and a TCP proxy that can play an unreachable server."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from pytest_django.live_server_helper import LiveServer

from api.services import token_create
from tests.api import conftest as api_fixtures
from tests.api.conftest import Catalog

# The API tests' users, token clients and small catalog, reused rather than copied.
api = api_fixtures.api
alice = api_fixtures.alice
bob = api_fixtures.bob
client_for = api_fixtures.client_for
small_catalog = api_fixtures.small_catalog


@pytest.fixture(autouse=True)
def client_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Credentials and spool files under the test's folder; no server from the environment."""
    home = tmp_path / "home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    for name in ("PODIUM_URL", "PODIUM_TOKEN", "PODIUM_SPOOL_DIR"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(autouse=True)
def _runs_finished() -> Iterator[None]:
    """A test that fails midway leaves no run sending in the background."""
    yield
    from podium.errors import PodiumError
    from podium.tracking import _live_runs

    for run in list(_live_runs):
        if not run.finished:
            with contextlib.suppress(PodiumError):
                run.finish(status="failed", error="test ended", timeout=2)


@dataclass(frozen=True, kw_only=True)
class Server:
    url: str
    token: str
    user: User
    catalog: Catalog


@pytest.fixture
def server(live_server: LiveServer, small_catalog: Catalog, alice: User) -> Server:
    """A live Podium (its own thread, the test database) and alice's API token."""
    return Server(
        url=live_server.url,
        token=token_create(user=alice, name="client").key,
        user=alice,
        catalog=small_catalog,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class FlakyProxy:
    """A TCP proxy on a fixed local port in front of the live server.

    Closed (connection refused, as a server that is down) until `open()`; `cut_metrics`
    makes it forward the next N metric uploads but drop the server's answers, as a network
    that fails after the server has stored the points.
    """

    def __init__(self, target: str) -> None:
        host, _, port = target.removeprefix("http://").partition(":")
        self.target = (host, int(port))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cut_metrics = 0
        self.cut = 0  # answers dropped so far
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        first = client.recv(65536)
        discard = False
        if first.startswith(b"POST ") and b"/metrics/ " in first.split(b"\r\n", 1)[0]:
            with self._lock:
                if self.cut_metrics > 0:
                    self.cut_metrics -= 1
                    self.cut += 1
                    discard = True
        upstream.sendall(first)
        forward = threading.Thread(target=_pipe, args=(client, upstream, False), daemon=True)
        forward.start()
        _pipe(upstream, client, discard)
        forward.join(timeout=5)


def _pipe(source: socket.socket, target: socket.socket, discard: bool) -> None:
    try:
        while data := source.recv(65536):
            if not discard:
                target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


@pytest.fixture
def proxy(server: Server) -> Iterator[FlakyProxy]:
    flaky = FlakyProxy(server.url)
    yield flaky
    flaky.close()
