"""Every 4xx from the API carries {"errors": {field: [messages]}}."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tests.api.conftest import Catalog, record_run

pytestmark = pytest.mark.django_db


def assert_error(response: object, status: int, field: str = "non_field_errors") -> str:
    assert response.status_code == status, response.content  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert list(body["errors"]) == [field], body
    (message,) = body["errors"][field]
    assert message
    return str(message)


def test_each_kind_of_refusal_names_what_it_is_about(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    bob: User,
    small_catalog: Catalog,
) -> None:
    run = record_run(small_catalog, alice)
    assert "credentials" in assert_error(api.post("/api/v1/runs/", {}, format="json"), 401)
    assert "private" in assert_error(
        api.get("/api/v1/runs/00000000-0000-0000-0000-000000000000/"), 404
    )
    assert "owner" in assert_error(client_for(bob).post(f"/api/v1/runs/{run.uuid}/cancel/"), 403)
    assert "final" in assert_error(client_for(alice).post(f"/api/v1/runs/{run.uuid}/cancel/"), 409)
    assert "not allowed" in assert_error(client_for(alice).delete("/api/v1/runs/"), 405)
    malformed = client_for(alice).post(
        "/api/v1/runs/", "{not json", content_type="application/json"
    )
    assert "JSON parse error" in assert_error(malformed, 400)
    bad_token = APIClient()
    bad_token.credentials(HTTP_AUTHORIZATION="Token nope")
    assert "Invalid or revoked token" in assert_error(bad_token.get("/api/v1/runs/"), 401)
