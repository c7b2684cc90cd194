"""How a running method talks to whoever runs it: metrics, progress, log lines, cancellation.

The GPU worker passes a reporter that batches messages onto the broker; tests and local
runs use `CollectingReporter`. Methods call `check_cancelled()` at step boundaries, so a
cancelled job stops at its next step rather than mid-update.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


class JobCancelled(Exception):
    """Raised at a step boundary once the job has been asked to stop."""


class Reporter(Protocol):
    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None: ...

    def progress(
        self, *, step: int, total_steps: int, examples_per_second: float = 0.0
    ) -> None: ...

    def log(self, message: str) -> None: ...

    def cancel_requested(self) -> bool: ...


def check_cancelled(reporter: Reporter) -> None:
    if reporter.cancel_requested():
        raise JobCancelled("the job was cancelled")


@dataclass
class CollectingReporter:
    """Keeps everything in memory: for tests, `python -m runners`, and the local demo."""

    points: list[tuple[str, int, float, float]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    last_progress: tuple[int, int, float] = (0, 0, 0.0)
    cancel_after_steps: int | None = None
    echo: bool = False

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        now = time.time()
        self.points.extend((key, step, float(value), now) for key, value in metrics.items())

    def progress(self, *, step: int, total_steps: int, examples_per_second: float = 0.0) -> None:
        self.last_progress = (step, total_steps, examples_per_second)

    def log(self, message: str) -> None:
        self.lines.append(message)
        if self.echo:
            print(message, flush=True)

    def cancel_requested(self) -> bool:
        return (
            self.cancel_after_steps is not None and self.last_progress[0] >= self.cancel_after_steps
        )

    def curve(self, key: str) -> list[tuple[int, float]]:
        return [(step, value) for k, step, value, _ in self.points if k == key]
