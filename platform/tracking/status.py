"""The run status machine: named states, the allowed transitions, and the final states.

Every status change goes through `tracking.services.run_transition`, which checks this
table under a row lock and records the transition with its time and reason.
"""

from __future__ import annotations

from django.db import models


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    CANCELLING = "cancelling", "Cancelling"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINAL_STATUSES: frozenset[str] = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
)

# A run executed by Podium starts queued; an external run is recorded directly as finished;
# a run tracked from the user's own script starts running.
INITIAL_STATUSES: frozenset[str] = frozenset(
    {RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED}
)

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    # running -> queued is a retry: the worker was lost and attempts remain.
    RunStatus.RUNNING: frozenset(
        {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLING, RunStatus.QUEUED}
    ),
    # A job asked to stop halts at its next step boundary, or fails on its way out.
    RunStatus.CANCELLING: frozenset({RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


class InvalidTransition(Exception):
    """A status change the machine does not allow; the message names both states."""

    def __init__(self, *, current: str, requested: str) -> None:
        allowed = sorted(ALLOWED_TRANSITIONS.get(current, frozenset()))
        hint = f"allowed from {current}: {', '.join(allowed)}" if allowed else f"{current} is final"
        super().__init__(f"A run cannot go from {current} to {requested} ({hint}).")
        self.current = current
        self.requested = requested


def can_transition(*, current: str, requested: str) -> bool:
    return requested in ALLOWED_TRANSITIONS.get(current, frozenset())
