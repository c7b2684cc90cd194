"""Reachability of the services Podium depends on, for /healthz and `manage.py` checks."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import Error as DatabaseLibraryError
from django.db import connection

from config.celery import app as celery_app


@dataclass(frozen=True, kw_only=True)
class ServiceHealth:
    name: str
    ok: bool
    detail: str


def check_database() -> ServiceHealth:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    # django.db.Error, not DatabaseError: a connection closed under us raises InterfaceError,
    # which is not a DatabaseError.
    except DatabaseLibraryError as error:
        return ServiceHealth(name="database", ok=False, detail=str(error).strip() or "unreachable")
    return ServiceHealth(name="database", ok=True, detail=connection.vendor)


def check_broker(*, timeout_s: int = 2) -> ServiceHealth:
    url = settings.CELERY_BROKER_URL
    transport = url.split("://", 1)[0]
    try:
        with celery_app.connection_for_write(url) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
    except Exception as error:  # kombu raises transport-specific errors; all mean "unreachable"
        return ServiceHealth(name="broker", ok=False, detail=f"{transport}: {error}")
    return ServiceHealth(name="broker", ok=True, detail=transport)
