"""The tracking client against a live Podium: exact delivery, buffering and spooling while
the server is down, retries that never store a point twice, and clear failures."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import podium
from podium.config import Credentials
from podium.http import Api, Backoff, retry_after_seconds
from podium.spool import pending_spools
from podium.transport import METRIC_KEY as CLIENT_METRIC_KEY
from tests.client.conftest import FlakyProxy, Server
from tests.jobs.conftest import wait_until
from tracking.models import MetricPoint, Run, Score
from tracking.status import RunStatus
from tracking.tracked import METRIC_KEY as SERVER_METRIC_KEY

pytestmark = pytest.mark.django_db(transaction=True)


def start(server: Server, url: str | None = None, **options: object) -> podium.Run:
    return podium.init(
        task="bench/sst",
        method="lora",
        backbone="minilm",
        config={"rank": 4},
        seed=1,
        url=url or server.url,
        token=server.token,
        flush_interval=0.1,
        **options,  # type: ignore[arg-type]
    )


def curve(run_uuid: str, key: str) -> list[tuple[int, float]]:
    return list(
        MetricPoint.objects.filter(run__uuid=run_uuid, key=key)
        .order_by("step")
        .values_list("step", "value")
    )


def loss(step: int) -> float:
    return 2.0 / (step + 1) + step * 1e-6


def test_a_run_logged_from_a_script_reaches_the_server_point_for_point(server: Server) -> None:
    run = start(server)
    assert run.uuid is not None
    assert run.task_metrics == ["accuracy", "loss"]
    for step in range(300):
        run.log({"loss": loss(step), "learning_rate": 1e-3 * (1 - step / 300)}, step=step)
    run.log({"eval_accuracy": 0.8})  # no step: the one after the last
    assert run.finish(scores={"accuracy": 0.8, "loss": 0.1})

    assert curve(run.uuid, "loss") == [(s, loss(s)) for s in range(300)]
    assert curve(run.uuid, "eval_accuracy") == [(300, 0.8)]
    assert MetricPoint.objects.count() == 601
    assert (run.stats.logged, run.stats.accepted, run.stats.duplicates) == (601, 601, 0)
    stored = Run.objects.get(uuid=run.uuid)
    assert stored.status == RunStatus.SUCCEEDED
    assert dict(Score.objects.filter(run=stored).values_list("metric__key", "value")) == {
        "accuracy": 0.8,
        "loss": 0.1,
    }
    with pytest.raises(podium.PodiumError, match="finished"):
        run.log({"loss": 1.0})


def spooled_points(home: Path) -> int:
    return sum(spool.point_count() for spool in pending_spools(home / "state/podium/spool"))


def test_points_logged_while_the_server_is_down_arrive_once_and_only_once(
    server: Server, proxy: FlakyProxy, client_home: Path
) -> None:
    # The server is down when the script starts: init does not fail, log does not wait.
    run = start(server, url=proxy.url, init_timeout=0.2, max_buffered=500, max_retry_wait=0.3)
    assert run.url is None  # not created yet
    started = time.monotonic()
    for step in range(3000):
        run.log({"loss": loss(step)}, step=step)
    assert time.monotonic() - started < 5
    # Beyond max_buffered, the oldest points wait on disk rather than in memory.
    wait_until(lambda: spooled_points(client_home) >= 2000, timeout=30, what="a spool file")
    assert not Run.objects.exists()

    # The server comes back, but the answer to the first upload is lost on the way: the
    # client sends those points again and the server counts them as duplicates.
    proxy.cut_metrics = 1
    proxy.open()
    assert run.finish(scores={"accuracy": 0.7, "loss": 0.3}, timeout=60)

    assert proxy.cut == 1
    assert Run.objects.count() == 1  # the deferred creation happened once
    assert run.uuid is not None
    assert curve(run.uuid, "loss") == [(s, loss(s)) for s in range(3000)]
    # The points whose answer was lost were stored then, and counted as duplicates after.
    assert run.stats.duplicates > 0
    assert run.stats.accepted + run.stats.duplicates == 3000
    assert Run.objects.get(uuid=run.uuid).status == RunStatus.SUCCEEDED
    assert spooled_points(client_home) == 0
    assert not list((client_home / "state/podium/spool").iterdir())


def test_a_finish_the_server_never_hears_is_kept_for_podium_sync(
    server: Server, proxy: FlakyProxy, client_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = start(server, url=proxy.url, init_timeout=0.2, max_retry_wait=0.2)
    for step in range(50):
        run.log({"loss": loss(step)}, step=step)
    with caplog.at_level(logging.WARNING, logger="podium"):
        assert not run.finish(scores={"accuracy": 0.6, "loss": 0.4}, timeout=1)
    assert "podium sync" in caplog.text
    (spool,) = pending_spools(client_home / "state/podium/spool")
    assert spool.point_count() == 50
    assert spool.finish() == {
        "status": "succeeded",
        "scores": {"accuracy": 0.6, "loss": 0.4},
        "error": "",
    }

    from podium.cli import main

    proxy.open()
    assert main(["--token", server.token, "sync"]) == 0
    stored = Run.objects.get()
    assert stored.status == RunStatus.SUCCEEDED
    assert curve(str(stored.uuid), "loss") == [(s, loss(s)) for s in range(50)]
    assert not list(pending_spools(client_home / "state/podium/spool"))


def test_a_script_that_raises_inside_the_run_fails_it_with_the_error(server: Server) -> None:
    runs: list[podium.Run] = []

    def train() -> None:
        with start(server) as run:
            runs.append(run)
            run.log({"loss": 1.0}, step=0)
            raise RuntimeError("diverged at step 1")

    with pytest.raises(RuntimeError, match="diverged"):
        train()
    stored = Run.objects.get(uuid=str(runs[0].uuid))
    assert stored.status == RunStatus.FAILED
    assert stored.status_reason == "RuntimeError: diverged at step 1"
    assert curve(str(stored.uuid), "loss") == [(0, 1.0)]


def test_bad_input_is_refused_at_once(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(podium.ApiError, match="task: No task 'bench/nope'"):
        podium.init(
            task="bench/nope", method="lora", backbone="minilm", url=server.url, token=server.token
        )
    with pytest.raises(podium.ApiError, match="HTTP 401"):
        podium.init(
            task="bench/sst", method="lora", backbone="minilm", url=server.url, token="pdm_wrong"
        )
    with pytest.raises(podium.PodiumError, match="no API token"):
        podium.init(task="bench/sst", method="lora", backbone="minilm", url=server.url)
    run = start(server)
    with pytest.raises(ValueError, match="not a metric key"):
        run.log({"loss (train)!": 1.0})
    with pytest.raises(TypeError, match="not a number"):
        run.log({"loss": "low"})
    with pytest.raises(ValueError, match="every metric of the task"):
        run.finish(scores={"accuracy": 0.5})
    with caplog.at_level(logging.WARNING, logger="podium"):
        run.log({"loss": float("nan")}, step=0)
        run.log({"loss": float("inf")}, step=1)
        run.log({"loss": 0.5}, step=2)
    assert caplog.text.count("only finite values are stored") == 1  # once per key
    assert run.finish()
    assert run.stats.not_finite == 2
    assert curve(str(run.uuid), "loss") == [(2, 0.5)]


def test_the_client_checks_metric_keys_by_the_servers_rule() -> None:
    assert CLIENT_METRIC_KEY.pattern == SERVER_METRIC_KEY.pattern


class _Busy(BaseHTTPRequestHandler):
    """503 with Retry-After: 1 for the first request, then 200."""

    calls: list[float] = []

    def do_GET(self) -> None:
        self.calls.append(time.monotonic())
        busy = len(self.calls) == 1
        body = b'{"detail": "busy"}' if busy else b'{"ok": true}'
        self.send_response(503 if busy else 200)
        if busy:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def busy_server() -> Iterator[str]:
    _Busy.calls = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_retries_wait_as_long_as_retry_after_asks(busy_server: str) -> None:
    api = Api(Credentials(url=busy_server, token="t"))
    answer = api.call("GET", "/x", backoff=Backoff(base=0.01, cap=0.02))
    assert answer.body == {"ok": True}
    first, second = _Busy.calls
    assert second - first >= 1.0


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
