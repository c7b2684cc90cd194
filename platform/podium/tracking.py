"""Tracking a run from your own training code: `init`, `Run.log`, `Run.finish`.

`log` only appends to an in-memory buffer under a lock, so the training loop never waits
for the network. A background thread sends the buffer every few seconds, or sooner once a
batch is full. While the server is unreachable (or answers 5xx/429) it retries with
exponential backoff and jitter, honouring Retry-After; past `max_buffered` points the
oldest go to a spool file on local disk (bounded memory) and are sent first once the
server answers. Nothing is dropped silently: points the server refuses are logged as
errors and counted in `Run.stats`, and whatever cannot be delivered by `finish` stays in
the spool for `podium sync`.
"""

from __future__ import annotations

import atexit
import logging
import math
import sys
import threading
import time
import uuid as uuid_module
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from podium.config import load_credentials, spool_root
from podium.errors import ApiError, PodiumError, Unreachable
from podium.http import Api, Backoff
from podium.spool import Point, RunSpool
from podium.transport import (
    BATCH_MAX,
    UploadResult,
    check_metric_key,
    create_run,
    finish_body,
    finish_path,
    upload_points,
)

logger = logging.getLogger("podium")


@dataclass
class RunStats:
    logged: int = 0  # points taken by log()
    accepted: int = 0  # stored by the server
    duplicates: int = 0  # re-sent points the server already had (after a lost answer)
    conflicts: int = 0  # refused: their step already held another value (logged)
    rejected: int = 0  # refused by the server for another reason (logged as errors)
    not_finite: int = 0  # NaN or infinite values, not sent (logged once per key)
    spooled: int = 0  # written to the local spool while the server was unreachable


class Run:
    """A run being tracked. Create it with `podium.init`."""

    def __init__(
        self,
        *,
        api: Api,
        create_body: Mapping[str, Any],
        spool_dir: Path,
        flush_interval: float = 2.0,
        batch_size: int = BATCH_MAX,
        max_buffered: int = 100_000,
        backoff: Backoff | None = None,
    ) -> None:
        if not 1 <= batch_size <= BATCH_MAX:
            raise ValueError(f"batch_size must be between 1 and {BATCH_MAX}")
        self._api = api
        self._create_body = dict(create_body)
        self._spool_dir = spool_dir
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._max_buffered = max(max_buffered, batch_size)
        self._backoff = backoff or Backoff()
        self.local_id = uuid_module.uuid4().hex
        self._idempotency_key = f"podium-track-{self.local_id}"
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._buffer: list[Point] = []
        self._inflight: list[Point] = []
        self._next_step = 0
        self._finishing = False
        self._finished = False
        self._abandoned = False  # finish gave up: what was left went to the spool
        self._drained = threading.Event()  # the flusher delivered everything and exited
        self._flusher_done = threading.Event()
        self._stop = threading.Event()
        self._poke = threading.Event()  # cuts a backoff wait short: finish or flush wants it
        self._spool: RunSpool | None = None
        self._warned_keys: set[str] = set()
        self._info: dict[str, Any] | None = None
        self.errors: list[str] = []  # what the server refused, one line each
        self.stats = RunStats()
        self._thread = threading.Thread(
            target=self._flusher, name=f"podium-{self.local_id[:8]}", daemon=True
        )

    # --- what a script sees -------------------------------------------------------------

    @property
    def uuid(self) -> str | None:
        """The server's id for the run; None while the server has not been reached yet."""
        return str(self._info["uuid"]) if self._info else None

    @property
    def url(self) -> str | None:
        return f"{self._api.url}/runs/{self.uuid}/" if self.uuid else None

    @property
    def task_metrics(self) -> list[str]:
        """The scores a successful finish records (known once the server was reached)."""
        return list(self._info.get("task_metrics", [])) if self._info else []

    @property
    def finished(self) -> bool:
        return self._finished

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record metric values at a step (default: one past the previous step).

        Never waits for the network. NaN and infinite values are not sent (the server keeps
        finite values only); each such key is reported once.
        """
        if self._finishing:
            raise PodiumError("this run is finished; start another with podium.init()")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise TypeError(f"step must be an int, not {type(step).__name__}")
        now = time.time()
        points: list[Point] = []
        for key, raw in metrics.items():
            check_metric_key(key)
            if isinstance(raw, bool) or not hasattr(raw, "__float__"):
                raise TypeError(f"{key}: {raw!r} is not a number")
            points.append((key, 0, float(raw), now))
        with self._wake:
            if step is None:
                step = self._next_step
            self._next_step = step + 1
            for key, _, value, at in points:
                if not math.isfinite(value):
                    self.stats.not_finite += 1
                    if key not in self._warned_keys:
                        self._warned_keys.add(key)
                        logger.warning(
                            "podium: %s is %s at step %d: not sent (only finite values are "
                            "stored); further non-finite %s values are counted in "
                            "run.stats.not_finite",
                            key,
                            value,
                            step,
                            key,
                        )
                    continue
                self._buffer.append((key, step, value, at))
                self.stats.logged += 1
            if len(self._buffer) >= self._batch_size:
                self._wake.notify()
            if len(self._buffer) >= 2 * self._max_buffered:
                # The flusher is stuck on a slow server: bound memory here, at the cost
                # of one local file write.
                self._spill_locked(keep=self._max_buffered)

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every point logged so far is on the server (True), or `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._wake:
                if self._delivered_locked():
                    return True
                self._wake.notify()
            self._poke.set()
            time.sleep(0.05)
        return False

    def finish(
        self,
        *,
        scores: Mapping[str, float] | None = None,
        status: str = "succeeded",
        error: str = "",
        timeout: float = 120.0,
    ) -> bool:
        """Send what is left and end the run: `succeeded` with the task's scores (every
        metric of the task, or none to track curves only) or `failed` with an error.

        Returns True when the server has everything. If it stays unreachable for `timeout`
        seconds, the remaining points and the finish are kept in the spool (a warning says
        where) and False is returned: `podium sync` uploads them later.
        """
        body = finish_body(status=status, scores=dict(scores or {}), error=error)
        expected = set(self.task_metrics)
        if body["scores"] and expected and set(body["scores"]) != expected:
            raise ValueError(
                f"scores must give every metric of the task ({', '.join(sorted(expected))}), "
                f"not {', '.join(sorted(body['scores']))}"
            )
        with self._wake:
            if self._finishing:
                raise PodiumError("this run was already finished")
            self._finishing = True
            self._wake.notify()
        self._poke.set()
        deadline = time.monotonic() + timeout
        self._flusher_done.wait(timeout)
        if self._drained.is_set() and self.uuid is not None:
            try:
                self._api.call(
                    "POST",
                    finish_path(self.uuid),
                    json_body=body,
                    deadline=deadline,
                    backoff=self._backoff,
                )
            except Unreachable:
                pass
            except ApiError:
                # Refused for good (e.g. the run was finished or cancelled elsewhere): every
                # point is delivered, so nothing is left to keep.
                self._close(spool_done=True)
                raise
            else:
                self._close(spool_done=True)
                self._report_refusals()
                return True
        self._abandon(finish=body)
        return False

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._finishing:
            return
        if value is None:
            self.finish()
            return
        try:
            self.finish(status="failed", error=f"{kind.__name__ if kind else 'error'}: {value}")
        except PodiumError as problem:
            # Never hide the training script's own exception behind ours.
            logger.error("podium: could not finish the failed run: %s", problem)

    # --- the flusher thread -------------------------------------------------------------

    def _start(self, *, init_timeout: float) -> None:
        """Create the run on the server, waiting at most `init_timeout` seconds; an
        unreachable server is not an error: the flusher creates it once it answers."""
        deadline = time.monotonic() + init_timeout
        attempt = 0
        while True:
            try:
                info = create_run(
                    self._api, self._create_body, idempotency_key=self._idempotency_key
                )
                self._created(info)
                break
            except Unreachable as problem:
                wait = self._backoff.delay(attempt, retry_after=problem.retry_after)
                attempt += 1
                if time.monotonic() + wait > deadline:
                    logger.warning(
                        "podium: %s; the run will be created and its points sent once it "
                        "answers (meanwhile they are buffered, then spooled to %s)",
                        problem,
                        self._spool_dir,
                    )
                    break
                time.sleep(wait)
        self._thread.start()

    def _created(self, info: dict[str, Any]) -> None:
        self._info = info
        if self._spool is not None:
            self._spool.set_uuid(str(info["uuid"]))

    def _delivered_locked(self) -> bool:
        spooled = self._spool is not None and bool(self._spool.chunks())
        return self._info is not None and not self._buffer and not self._inflight and not spooled

    def _flusher(self) -> None:
        try:
            self._flush_until_done()
        finally:
            self._flusher_done.set()

    def _flush_until_done(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            with self._wake:
                if self._finishing and self._delivered_locked():
                    self._drained.set()
                    return
                if len(self._buffer) < self._batch_size and not self._finishing:
                    self._wake.wait(self._flush_interval)
            try:
                self._deliver_some()
                attempt = 0
            except Unreachable as problem:
                with self._wake:
                    if len(self._buffer) > self._max_buffered:
                        self._spill_locked(keep=self._max_buffered)
                wait = self._backoff.delay(attempt, retry_after=problem.retry_after)
                attempt += 1
                logger.info("podium: %s; retrying in %.1f s", problem, wait)
                self._poke.wait(wait)
                self._poke.clear()
            except ApiError as problem:
                # Only the deferred creation gets here (points refused are handled per
                # batch): the server will not take this run, so stop asking.
                message = f"the server refused to create the run: {problem}"
                logger.error("podium: %s", message)
                with self._lock:
                    self.errors.append(message)
                return
            except Exception as problem:  # a bug must not kill the thread silently
                logger.exception("podium: the sender failed; keeping the points: %s", problem)
                self._stop.wait(self._flush_interval)

    def _deliver_some(self) -> None:
        if self._info is None:
            self._created(
                create_run(self._api, self._create_body, idempotency_key=self._idempotency_key)
            )
        uuid = str(self.uuid)
        spool = self._spool
        chunks = spool.chunks() if spool is not None else []
        if spool is not None and chunks:
            points = spool.read_chunk(chunks[0])
            self._record(self._upload(uuid, points))
            chunks[0].unlink()
            with self._lock:
                self.stats.spooled -= len(points)
            return
        with self._wake:
            batch = self._buffer[: self._batch_size]
            del self._buffer[: self._batch_size]
            self._inflight = batch
        if not batch:
            return
        try:
            result = self._upload(uuid, batch)
        except Unreachable:
            with self._wake:
                if not self._abandoned:
                    self._buffer[0:0] = batch
                self._inflight = []
            raise
        with self._wake:
            self._inflight = []
        self._record(result)

    def _upload(self, uuid: str, points: Sequence[Point]) -> UploadResult:
        try:
            return upload_points(self._api, uuid, points)
        except ApiError as problem:
            # Retrying the same points would be refused the same way: say so, loudly.
            message = f"{len(points)} point(s) refused by the server: {problem}"
            logger.error("podium: run %s: %s", uuid, message)
            with self._lock:
                self.errors.append(message)
                self.stats.rejected += len(points)
            return UploadResult()

    def _record(self, result: UploadResult) -> None:
        with self._lock:
            self.stats.accepted += result.accepted
            self.stats.duplicates += result.duplicates
            self.stats.conflicts += len(result.conflicts)

    # --- the spool ----------------------------------------------------------------------

    def _ensure_spool(self) -> RunSpool:
        if self._spool is None:
            spool = RunSpool.create(
                self._spool_dir,
                local_id=self.local_id,
                url=self._api.url,
                create_body=self._create_body,
                idempotency_key=self._idempotency_key,
                uuid=self.uuid,
            )
            spool.try_lock()
            self._spool = spool
        return self._spool

    def _spill_locked(self, *, keep: int) -> None:
        """Move the oldest buffered points to a spool file, keeping the newest `keep`."""
        count = len(self._buffer) - keep
        if count <= 0:
            return
        self._ensure_spool().add_points(self._buffer[:count])
        del self._buffer[:count]
        self.stats.spooled += count

    def _abandon(self, *, finish: dict[str, Any]) -> None:
        """Give up on the server for now: everything not delivered goes to the spool."""
        self._stop.set()
        self._poke.set()
        self._thread.join(timeout=5.0)
        with self._wake:
            self._abandoned = True
            # An in-flight batch may yet arrive: sending it again later is harmless, as the
            # server counts re-sent points as duplicates.
            left = self._inflight + self._buffer
            self._buffer = []
            spool = self._ensure_spool()
            if left:
                spool.add_points(left)
                self.stats.spooled += len(left)
            spool.set_finish(finish)
            pending = spool.point_count()
        spool.unlock()
        self._finished = True
        why = self.errors[-1] if self.errors else f"{self._api.url} did not answer in time"
        logger.warning(
            "podium: %s: %d point(s) and the run's finish are kept in %s; run `podium sync` "
            "to upload them",
            why,
            pending,
            spool.directory,
        )

    def _close(self, *, spool_done: bool) -> None:
        self._stop.set()
        self._poke.set()
        self._thread.join(timeout=5.0)
        if self._spool is not None and spool_done:
            self._spool.remove()
        self._finished = True

    def _report_refusals(self) -> None:
        if self.errors:
            logger.error(
                "podium: run %s finished, but the server refused %d point(s); see run.errors",
                self.uuid,
                self.stats.rejected,
            )


_live_runs: weakref.WeakSet[Run] = weakref.WeakSet()


def _finish_at_exit() -> None:
    """A script that ends without calling finish: its run ends now, `failed` if the script
    died of an exception, with a short wait for the server."""
    died = getattr(sys, "last_value", None)
    for run in list(_live_runs):
        if run.finished or run._finishing:
            continue
        try:
            if died is not None:
                run.finish(status="failed", error=f"{type(died).__name__}: {died}", timeout=15)
            else:
                run.finish(timeout=15)
        except PodiumError as problem:
            logger.error("podium: could not finish run at exit: %s", problem)


atexit.register(_finish_at_exit)


def init(
    *,
    task: str,
    method: str,
    backbone: str,
    config: Mapping[str, Any] | None = None,
    seed: int = 0,
    tags: Sequence[str] = (),
    description: str = "",
    visibility: str = "public",
    url: str | None = None,
    token: str | None = None,
    flush_interval: float = 2.0,
    max_buffered: int = 100_000,
    init_timeout: float = 10.0,
    max_retry_wait: float = 30.0,
    spool_dir: Path | None = None,
) -> Run:
    """Start tracking a run of `method` + `backbone` on `task` ("benchmark/key").

    The server and token come from the arguments, PODIUM_URL / PODIUM_TOKEN, or
    `podium login`. Bad input (an unknown task, a bad token) raises ApiError at once; an
    unreachable server does not: the run is created as soon as it answers. While it is
    unreachable, retries back off exponentially up to `max_retry_wait` seconds apart.
    """
    api = Api(load_credentials(url=url, token=token), timeout=15.0)
    body = {
        "task": task,
        "method": method,
        "backbone": backbone,
        "config": dict(config or {}),
        "seed": seed,
        "tags": list(tags),
        "description": description,
        "visibility": visibility,
    }
    run = Run(
        api=api,
        create_body=body,
        spool_dir=spool_dir or spool_root(),
        flush_interval=flush_interval,
        batch_size=max(1, min(BATCH_MAX, max_buffered)),
        max_buffered=max_buffered,
        backoff=Backoff(base=min(0.5, max_retry_wait), cap=max_retry_wait),
    )
    run._start(init_timeout=init_timeout)
    _live_runs.add(run)
    return run
