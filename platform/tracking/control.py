"""Posting to a job's control queue on the broker (see runners.spec.control_queue_name)."""

from __future__ import annotations

import logging

from config.celery import app as celery_app
from runners.spec import ControlMessage, control_queue_name

logger = logging.getLogger(__name__)

# A control message is useless after the job's attempt is over; expire it on the broker.
CONTROL_MESSAGE_TTL_S = 24 * 3600


def control_send(*, job_id: int, attempt: int, action: str, reason: str = "") -> None:
    message = ControlMessage(job_id=job_id, attempt=attempt, action=action, reason=reason)
    with celery_app.connection_for_write() as connection:
        queue = connection.SimpleQueue(control_queue_name(job_id))
        try:
            queue.put(message.to_dict(), serializer="json", expiration=CONTROL_MESSAGE_TTL_S)
        finally:
            queue.close()
    logger.info("control %s -> job %s attempt %s (%s)", action, job_id, attempt, reason)
