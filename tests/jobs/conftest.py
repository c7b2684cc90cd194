"""Fixtures for job tests: the catalog, a method and backbone, real GPU-worker processes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from catalog.models import Backbone, BackboneSource, Method, Task
from tests.conftest import REPO_ROOT, CeleryWorker
from tests.factories import UserFactory
from tracking.jobs import runs_request
from tracking.models import Run

STEPPER = "tests.jobs.stepping_method"


def wait_until(
    condition: Callable[[], object], *, timeout: float = 60, what: str | Callable[[], str] = ""
) -> None:
    """Poll a condition the system under test will make true; fail with `what` on timeout
    (a callable is evaluated then, so it can show the workers' logs at that moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    described = what() if callable(what) else what
    pytest.fail(f"timed out after {timeout} s waiting for {described or condition}")


class GpuWorker(CeleryWorker):
    """A real `celery -A gpu_worker.app worker` process (no Django, no database)."""

    def __init__(self, *, env: dict[str, str], log: Path, name: str) -> None:
        super().__init__(queues="gpu", env=env, log=log, app="gpu_worker.app", name=name)


@pytest.fixture
def start_gpu_worker(tmp_path: Path) -> Iterator[Callable[[], GpuWorker]]:
    workers: list[GpuWorker] = []
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        PODIUM_METHOD_MODULES=STEPPER,
        PODIUM_HEARTBEAT_INTERVAL_S="0.3",
        PODIUM_CLAIM_TIMEOUT_S="15",
        PODIUM_WORK_DIR=str(tmp_path / "work"),
        # The store is the platform worker's MEDIA_ROOT, as a shared volume is in production.
        PODIUM_ARTIFACT_DIR=str(tmp_path / "var" / "artifacts"),
    )

    def start() -> GpuWorker:
        worker = GpuWorker(
            env=env, log=tmp_path / f"gpu-{len(workers)}.log", name=f"gpu{len(workers)}"
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def catalog(transactional_db: None) -> None:
    call_command("load_catalog", verbosity=0)


@pytest.fixture
def sst2(catalog: None) -> Task:
    return Task.objects.get(benchmark__key="glue", key="sst2", is_current=True)


@pytest.fixture
def stepper_method(transactional_db: None) -> Method:
    method, _ = Method.objects.update_or_create(
        key="test-stepper", defaults={"name": "Test stepper", "executable": True}
    )
    return method


@pytest.fixture
def majority_method(transactional_db: None) -> Method:
    method, _ = Method.objects.update_or_create(
        key="majority", defaults={"name": "Majority class", "executable": True}
    )
    return method


@pytest.fixture
def no_backbone(transactional_db: None) -> Backbone:
    return Backbone.objects.create(
        key="none", name="No backbone", source=BackboneSource.PACKAGE, package="none"
    )


@pytest.fixture
def owner(transactional_db: None) -> User:
    return UserFactory.create(username="researcher")


__all__ = ["CeleryWorker", "GpuWorker", "wait_until"]


@pytest.fixture
def request_stepper(
    sst2: Task, stepper_method: Method, no_backbone: Backbone, owner: User
) -> Callable[..., Run]:
    """Request one test-stepper job on SST-2; returns its run."""

    def request(config: dict[str, Any], *, seed: int = 1, max_attempts: int = 3) -> Run:
        (run,) = runs_request(
            owner=owner,
            method=stepper_method,
            backbone=no_backbone,
            task=sst2,
            config=config,
            seeds=[seed],
            max_attempts=max_attempts,
        )
        return run

    return request
