"""The worker's side of a job's conversation with the platform, over the broker only.

A background thread sends a heartbeat (with progress and the log tail) and the buffered
metric points every interval, and polls the job's control queue for go/stop/cancel. A
worker killed mid-job therefore loses at most the points of its last unsent batch. Every
message is signed with the worker key, which the platform checks before it records anything.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from celery import Celery
from kombu.simple import SimpleQueue

from gpu_worker.app import WORKER_KEY
from runners.spec import (
    CONTROL_CANCEL,
    CONTROL_GO,
    CONTROL_STOP,
    PLATFORM_QUEUE,
    TASK_RECORD_HEARTBEAT,
    TASK_RECORD_METRICS,
    TASK_RECORD_RESULT,
    ControlMessage,
    Heartbeat,
    JobResult,
    Message,
    MetricBatch,
    MetricPointMessage,
    SpecError,
    control_queue_name,
    sign_message,
)

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 60
# Sending survives a broker restart: retry for up to about ten minutes before giving up.
RETRY_POLICY = {"max_retries": 120, "interval_start": 0.5, "interval_step": 1, "interval_max": 5}


class BrokerReporter:
    """Implements runners.reporting.Reporter by messages to the platform queue."""

    def __init__(
        self,
        *,
        app: Celery,
        job_id: int,
        attempt: int,
        worker: str,
        interval_s: float,
        key: str = WORKER_KEY,
    ) -> None:
        self.app = app
        self.key = key
        self.job_id = job_id
        self.attempt = attempt
        self.worker = worker
        self.interval_s = interval_s
        self.lines: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self._points: list[MetricPointMessage] = []
        self._progress: tuple[int, int, float] = (0, 0, 0.0)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cancel_reason = ""
        self.stop_reason = ""  # set when the platform says this attempt must not go on
        self._open_control()

    def _open_control(self) -> None:
        self._control_connection = self.app.connection_for_read()
        self._control: SimpleQueue = self._control_connection.SimpleQueue(
            control_queue_name(self.job_id)
        )

    def _reopen_control(self) -> None:
        """After a broker outage the old channel is dead: start a fresh connection."""
        try:
            self._control.close()
            self._control_connection.release()
        except Exception:  # the connection is already broken; nothing to close cleanly
            logger.debug("job %s: closing the broken control connection failed", self.job_id)
        self._open_control()

    # --- runners.reporting.Reporter ------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        now = time.time()
        with self._lock:
            self._points.extend(
                MetricPointMessage(key=key, step=step, value=float(value), time=now)
                for key, value in metrics.items()
            )

    def progress(self, *, step: int, total_steps: int, examples_per_second: float = 0.0) -> None:
        with self._lock:
            self._progress = (step, total_steps, examples_per_second)

    def log(self, message: str) -> None:
        for line in message.splitlines() or [""]:
            self.lines.append(line)
        logger.info("job %s: %s", self.job_id, message)

    def cancel_requested(self) -> bool:
        return bool(self.cancel_reason or self.stop_reason)

    # --- messages ------------------------------------------------------------------------
    def _send(self, name: str, message: Message) -> None:
        envelope: dict[str, Any] = sign_message(message, key=self.key)
        with self._send_lock:
            self.app.send_task(
                name, args=[envelope], queue=PLATFORM_QUEUE, retry=True, retry_policy=RETRY_POLICY
            )

    def heartbeat(self, *, claim: bool = False) -> None:
        with self._lock:
            step, total, speed = self._progress
        self._send(
            TASK_RECORD_HEARTBEAT,
            Heartbeat(
                job_id=self.job_id,
                attempt=self.attempt,
                worker=self.worker,
                claim=claim,
                step=step,
                total_steps=total,
                examples_per_second=speed,
                log_tail="\n".join(self.lines)[-4000:],
            ),
        )

    def flush_metrics(self) -> None:
        with self._lock:
            points, self._points = self._points, []
        if points:
            self._send(
                TASK_RECORD_METRICS,
                MetricBatch(job_id=self.job_id, attempt=self.attempt, points=tuple(points)),
            )

    def send_result(self, result: JobResult) -> None:
        self.flush_metrics()
        self._send(TASK_RECORD_RESULT, result)

    # --- control queue -------------------------------------------------------------------
    def poll_control(self) -> str:
        """Apply every pending control message for this attempt; return the last action."""
        last = ""
        while True:
            try:
                message = self._control.get_nowait()
            except SimpleQueue.Empty:
                return last
            message.ack()
            try:
                control = ControlMessage.from_dict(message.payload)
            except SpecError as error:
                logger.error("job %s: refused control message: %s", self.job_id, error)
                continue
            if control.attempt != self.attempt:
                continue  # meant for another attempt of this job
            last = control.action
            if control.action == CONTROL_CANCEL:
                self.cancel_reason = control.reason or "cancelled"
            elif control.action == CONTROL_STOP:
                self.stop_reason = control.reason or "stopped by the platform"

    def wait_for_claim(self, *, timeout_s: float) -> str:
        """Claim the job and wait for the platform's answer (go, stop or cancel).

        Returns "" if none came in time: the worker then goes ahead, and the platform's
        attempt fencing still keeps a stale run from recording anything.
        """
        self.heartbeat(claim=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                message = self._control.get(block=True, timeout=min(1.0, timeout_s))
            except SimpleQueue.Empty:
                continue
            message.ack()
            try:
                control = ControlMessage.from_dict(message.payload)
            except SpecError:
                continue
            if control.attempt != self.attempt:
                continue
            if control.action == CONTROL_STOP:
                self.stop_reason = control.reason or "stopped by the platform"
            elif control.action == CONTROL_CANCEL:
                self.cancel_reason = control.reason or "cancelled"
            return control.action
        return ""

    # --- background thread ---------------------------------------------------------------
    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.heartbeat()
                self.flush_metrics()
            except Exception:  # a failed beat must never kill the job; the next one retries
                logger.exception("job %s: heartbeat failed", self.job_id)
            try:
                self.poll_control()
            except Exception:
                logger.warning("job %s: control queue unreachable, reconnecting", self.job_id)
                self._reopen_control()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat-{self.job_id}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._control.close()
        self._control_connection.release()


__all__ = ["CONTROL_GO", "BrokerReporter"]
