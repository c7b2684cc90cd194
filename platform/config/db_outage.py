"""A database outage is answered 503 with Retry-After, never 500, and heals by itself.

While PostgreSQL restarts, connecting fails (OperationalError) and connections that were
open break mid-query (OperationalError, or InterfaceError once closed). Both are transient
from a client's point of view: the request did not happen and may be retried, so the answer
is 503 with a Retry-After hint, as JSON for the API and as a line of HTML for pages (no
template: rendering one may itself need the database).

Recovery needs nothing from here: a query error marks the connection, Django closes a
marked connection that fails its usability check at the end of the request, and
CONN_HEALTH_CHECKS (see settings) re-checks a persistent connection before its first use in
the next request, so the first request after the restart reconnects.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from config.http_errors import refusal_response

logger = logging.getLogger(__name__)

OUTAGE_ERRORS = (OperationalError, InterfaceError)
_OUTAGE_FLAG = "_podium_database_outage"


def database_outage_response(request: HttpRequest) -> HttpResponse:
    retry_after = settings.PODIUM_DB_OUTAGE_RETRY_AFTER_S
    return refusal_response(
        request,
        status=503,
        title="Podium is briefly unavailable",
        message=(
            "The database is unavailable or busy, so nothing was done; "
            f"please retry in {retry_after} seconds."
        ),
        retry_after_s=retry_after,
    )


@receiver(got_request_exception, dispatch_uid="podium-database-outage")
def _mark_outage(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Sent while the exception is being handled, so sys.exc_info() names it. This catches
    # what process_exception cannot see: errors raised by other middleware.
    if request is not None and isinstance(sys.exc_info()[1], OUTAGE_ERRORS):
        setattr(request, _OUTAGE_FLAG, True)


class DatabaseOutageMiddleware:
    """Put first in MIDDLEWARE, so its answer replaces any 500 the outage caused."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code >= 500 and getattr(request, _OUTAGE_FLAG, False):
            return database_outage_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # Errors of views and of rendering their responses: answered here, quietly (one
        # warning line, not an error report with a traceback per request).
        if not isinstance(exception, OUTAGE_ERRORS):
            return None
        logger.warning(
            "Database unavailable during %s %s: %s",
            request.method,
            request.path,
            str(exception).strip().splitlines()[0] if str(exception).strip() else "",
        )
        return database_outage_response(request)
