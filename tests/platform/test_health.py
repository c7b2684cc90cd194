"""/healthz reports whether the database and the broker are reachable."""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

pytestmark = pytest.mark.django_db


def test_healthy_when_database_and_broker_answer(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"]
    assert body["checks"]["broker"]["ok"]
    assert response["Cache-Control"].startswith("max-age=0")


def test_unavailable_when_the_broker_is_down(client: Client, settings: SettingsWrapper) -> None:
    # Port 9 (discard) on loopback: nothing listens there.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is False


def test_only_get_is_allowed(client: Client) -> None:
    assert client.post("/healthz").status_code == 405
