"""The run status machine: every allowed transition works, every other one is refused."""

from __future__ import annotations

import itertools

import pytest

from tests.factories import RunFactory
from tracking.models import RunTransition
from tracking.services import run_transition
from tracking.status import (
    ALLOWED_TRANSITIONS,
    FINAL_STATUSES,
    InvalidTransition,
    RunStatus,
    can_transition,
)

pytestmark = pytest.mark.django_db

ALL = list(RunStatus.values)
ALLOWED = sorted((a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets)
REFUSED = sorted(
    (a, b) for a, b in itertools.product(ALL, ALL) if a != b and (a, b) not in set(ALLOWED)
)


def test_the_machine_is_the_documented_one() -> None:
    assert {"succeeded", "failed", "cancelled"} == FINAL_STATUSES
    assert set(ALLOWED) == {
        ("queued", "running"),
        ("queued", "cancelled"),
        ("queued", "failed"),
        ("running", "succeeded"),
        ("running", "failed"),
        ("running", "cancelling"),
        ("running", "queued"),
        ("cancelling", "cancelled"),
        ("cancelling", "failed"),
    }
    for final in FINAL_STATUSES:
        assert not ALLOWED_TRANSITIONS[final]


@pytest.mark.parametrize(("current", "requested"), ALLOWED)
def test_allowed_transition_is_applied_and_recorded(current: str, requested: str) -> None:
    run = RunFactory.create(status=current)
    result = run_transition(run_id=run.pk, to=requested, reason="because")
    assert result.changed
    run.refresh_from_db()
    assert run.status == requested
    assert run.status_reason == "because"
    transition = RunTransition.objects.get(run=run)
    assert (transition.from_status, transition.to_status, transition.reason) == (
        current,
        requested,
        "because",
    )
    assert (run.finished_at is not None) == (requested in FINAL_STATUSES)
    if requested == RunStatus.RUNNING:
        assert run.started_at is not None


@pytest.mark.parametrize(("current", "requested"), REFUSED)
def test_refused_transition_changes_nothing(current: str, requested: str) -> None:
    run = RunFactory.create(status=current)
    assert not can_transition(current=current, requested=requested)
    with pytest.raises(InvalidTransition, match=f"from {current} to {requested}"):
        run_transition(run_id=run.pk, to=requested)
    run.refresh_from_db()
    assert run.status == current
    assert not RunTransition.objects.filter(run=run).exists()


def test_repeating_the_current_state_is_a_no_op() -> None:
    run = RunFactory.create(status=RunStatus.RUNNING)
    result = run_transition(run_id=run.pk, to=RunStatus.RUNNING)
    assert not result.changed
    assert not RunTransition.objects.filter(run=run).exists()


def test_retry_goes_back_to_queued_and_can_run_again() -> None:
    run = RunFactory.create(status=RunStatus.QUEUED)
    for status in ("running", "queued", "running", "succeeded"):
        run_transition(run_id=run.pk, to=status, reason=f"to {status}")
    history = list(RunTransition.objects.filter(run=run).values_list("from_status", "to_status"))
    assert history == [
        ("queued", "running"),
        ("running", "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
    ]


def test_database_refuses_an_unknown_status() -> None:
    from django.db import IntegrityError, transaction

    run = RunFactory.create()
    with pytest.raises(IntegrityError), transaction.atomic():
        type(run).objects.filter(pk=run.pk).update(status="exploded")


def test_database_refuses_a_final_run_without_finish_time() -> None:
    from django.db import IntegrityError, transaction

    run = RunFactory.create()
    with pytest.raises(IntegrityError), transaction.atomic():
        type(run).objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
