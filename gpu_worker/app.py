"""Celery app for GPU hosts, configured from the environment alone (no Django).

One job at a time per GPU (prefetch 1, one process per GPU), late acknowledgement, and a
Redis visibility timeout longer than the longest job so a running job is never handed to
a second worker while the first still runs it.
"""

from __future__ import annotations

import os

from celery import Celery

from runners.spec import GPU_QUEUE

# Jobs carry their own time limit; the broker must never redeliver before it passes.
VISIBILITY_TIMEOUT_S = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", str(12 * 3600)))

app = Celery("podium-gpu")
app.conf.update(
    broker_url=os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/0"),
    broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_S},
    broker_connection_retry_on_startup=True,
    task_default_queue=GPU_QUEUE,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    worker_concurrency=1,
    task_serializer="json",
    accept_content=["json"],
)
