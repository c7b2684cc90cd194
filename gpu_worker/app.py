"""Celery app for GPU hosts, configured from the environment alone (no Django, no database).

One job at a time per GPU (prefetch 1, one process per GPU) and late acknowledgement: a
job's message is acknowledged when the job ends. Redis's visibility timeout is longer than
the longest job, so Redis never hands a running job to a second worker; if a worker dies,
Podium's reaper requeues the job as a new attempt, and when the dead worker's message comes
back later the platform answers its claim with "stop" (the attempt is stale).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from celery import Celery

from runners.spec import DEV_WORKER_KEY, GPU_QUEUE, WORKER_KEY_ENV


def worker_key_from_env(environ: Mapping[str, str] = os.environ) -> str:
    """The key this worker signs its messages with: PODIUM_WORKER_KEY, the platform's too.

    Outside production the development key is the default, as on the platform; in
    production a missing (or development) key stops the worker before it takes a job.
    """
    key = environ.get(WORKER_KEY_ENV, "")
    if environ.get("PODIUM_ENV", "development") == "production" and key in {"", DEV_WORKER_KEY}:
        raise RuntimeError(
            f"{WORKER_KEY_ENV} must be set when PODIUM_ENV=production "
            "(the same secret as the platform's)."
        )
    return key or DEV_WORKER_KEY


# Jobs carry their own time limit; the broker must never redeliver before it passes.
VISIBILITY_TIMEOUT_S = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", str(12 * 3600)))
BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0")
WORKER_KEY = worker_key_from_env()


def _transport_options() -> dict[str, object]:
    if BROKER_URL.startswith("filesystem"):
        # The embedded local queue shared with the platform (see config.settings).
        folder = Path(os.environ.get("PODIUM_QUEUE_DIR", str(Path.cwd() / "var" / "queue")))
        folder.mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder.parent / "queue-control"),
        }
    return {"visibility_timeout": VISIBILITY_TIMEOUT_S}


app = Celery("podium-gpu", include=["gpu_worker.tasks"])
app.conf.update(
    broker_url=BROKER_URL,
    broker_transport_options=_transport_options(),
    broker_connection_retry_on_startup=True,
    task_default_queue=GPU_QUEUE,
    task_acks_late=True,
    task_reject_on_worker_lost=False,  # a lost job is requeued by Podium, not the broker
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    worker_concurrency=1,
    task_serializer="json",
    accept_content=["json"],
)
