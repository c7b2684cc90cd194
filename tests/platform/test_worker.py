"""A real Celery worker process consumes the platform queue on the configured broker."""

from __future__ import annotations

import pytest

from config.celery import ping
from tests.conftest import CeleryWorker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_task_round_trips_through_the_broker_and_a_worker(platform_worker: CeleryWorker) -> None:
    result = ping.apply_async(queue="platform")
    # .get blocks until the worker has answered (no sleep); the timeout only bounds a failure.
    assert result.get(timeout=60) == "pong", platform_worker.output()
    assert platform_worker.process.poll() is None
