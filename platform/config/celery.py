"""The platform's Celery app: runs the web side's own tasks (with database access).

Execution tasks for GPU machines are sent by name to the `gpu` queue and consumed by
gpu_worker/, which never imports Django; see runners/spec.py for the message contract.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("podium")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="platform.ping", ignore_result=False)
def ping() -> str:
    """Round-trip check (tests, operators): a worker consumed the queue and answered."""
    return "pong"
