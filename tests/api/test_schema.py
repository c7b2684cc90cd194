"""The OpenAPI schema generates without warnings and describes the API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient


def test_the_schema_validates_without_warnings(tmp_path: Path) -> None:
    out = tmp_path / "schema.yaml"
    # fail_on_warn makes any warning a SchemaGenerationError, and so a test failure.
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(out))
    schema = yaml.safe_load(out.read_text())
    paths = schema["paths"]
    for path in (
        "/api/v1/tokens/",
        "/api/v1/tokens/{id}/",
        "/api/v1/runs/",
        "/api/v1/runs/{uuid}/cancel/",
        "/api/v1/jobs/queue/",
        "/api/v1/suites/{key}/leaderboard/",
        "/api/v1/suites/{key}/snapshots/",
        "/api/v1/snapshots/{uuid}/",
        "/api/v1/tasks/{benchmark}/{task}/leaderboard/",
        "/api/v1/runs/{uuid}/withdraw/",
        "/api/v1/runs/{uuid}/review/",
        "/api/v1/runs/{uuid}/audit/",
        "/api/v1/reviews/",
        "/api/v1/accounts/signup/",
        "/api/v1/accounts/password-reset/",
        "/api/v1/accounts/password-reset/confirm/",
        "/api/v1/accounts/me/",
    ):
        assert path in paths, sorted(paths)
    assert schema["components"]["securitySchemes"]["tokenAuth"]["name"] == "Authorization"
    post_runs = paths["/api/v1/runs/"]["post"]
    assert {"200", "201", "400", "401", "409"} <= set(post_runs["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in post_runs["parameters"])
    post_jobs = paths["/api/v1/jobs/"]["post"]
    assert {"200", "201", "400", "401", "403", "409", "429"} <= set(post_jobs["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in post_jobs["parameters"])
    assert "patch" in paths["/api/v1/runs/{uuid}/"]
    board = paths["/api/v1/suites/{key}/leaderboard/"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv", "application/x-latex"} <= set(board)
    snapshot = paths["/api/v1/snapshots/{uuid}/"]["get"]["responses"]["200"]["content"]
    assert "application/x-bibtex" in snapshot
    # Every operation says what it does.
    for path, operations in paths.items():
        for method, operation in operations.items():
            if path.startswith("/api/v1/") and method in {"get", "post", "patch", "delete"}:
                assert operation.get("summary"), f"{method.upper()} {path} has no summary"


@pytest.mark.django_db
def test_the_schema_is_served(api: APIClient) -> None:
    response = api.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/runs/" in response.content
