"""Fixtures shared by the whole suite.

Platform tests run against the database named by DATABASE_URL (PostgreSQL under
`make test`) and the broker named by CELERY_BROKER_URL (Redis under `make test`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env_dir(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: point it at the folder (make test sets it).")
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"{name}={value} is not a folder.")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Real benchmark samples in the hub's field format (PODIUM_DATA_DIR)."""
    return _env_dir("PODIUM_DATA_DIR")


@pytest.fixture(scope="session")
def validation_dir() -> Path:
    """Published leaderboards with their social-choice results (PODIUM_VALIDATION_DIR)."""
    return _env_dir("PODIUM_VALIDATION_DIR")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return  # importing torch costs seconds: only ask when a GPU test was collected
    try:
        import torch

        has_gpu = bool(torch.cuda.is_available())
    except ImportError:
        has_gpu = False
    if not has_gpu:
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


class CeleryWorker:
    """A real `celery worker` process: the platform's app by default, or the GPU worker's."""

    def __init__(
        self, *, queues: str, env: dict[str, str], log: Path, app: str = "config", name: str = ""
    ) -> None:
        self.log = log
        self._log_handle = log.open("w")
        command = [sys.executable, "-m", "celery", "-A", app, "worker", "--pool=solo"]
        command += ["--loglevel=INFO", "-Q", queues, "-n", f"{name or f'test-{os.getpid()}'}@%h"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=self._log_handle, stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-job without any chance to clean up."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_handle.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Keep artifacts written by platform code under the test's own folder."""
    if request.config.pluginmanager.hasplugin("django"):
        from django.core.cache import cache

        settings = request.getfixturevalue("settings")
        settings.MEDIA_ROOT = tmp_path / "var" / "artifacts"
        cache.clear()  # computed leaderboards must not leak from one test into another


def purge_queues() -> None:
    """Empty the broker's queues so no message from an earlier test reaches this one."""
    from config.celery import app
    from runners.spec import GPU_QUEUE, PLATFORM_QUEUE

    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        for queue in (GPU_QUEUE, PLATFORM_QUEUE):
            channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            channel.queue_purge(queue)


@pytest.fixture
def platform_worker(tmp_path: Path, transactional_db: None) -> Iterator[CeleryWorker]:
    """A worker process for the platform queue, on the test database and broker."""
    from django.db import connection

    purge_queues()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "platform")])
    env["PODIUM_ENV"] = "test"
    env["PODIUM_VAR_DIR"] = str(tmp_path / "var")
    db = connection.settings_dict
    if db["ENGINE"].endswith("postgresql"):
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        )
    worker = CeleryWorker(queues="platform", env=env, log=tmp_path / "worker.log")
    yield worker
    worker.stop()
