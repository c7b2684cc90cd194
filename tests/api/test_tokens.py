"""API tokens: created once with their key shown once, stored hashed, listed, revoked at once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from api.models import ApiToken

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/tokens/"


def create_token(api: APIClient, user: User, name: str = "laptop") -> dict[str, Any]:
    api.force_login(user)
    response = api.post(TOKENS, {"name": name}, format="json")
    api.logout()
    assert response.status_code == 201, response.content
    body: dict[str, Any] = response.json()
    return body


def test_a_session_user_creates_a_token_and_the_key_is_shown_once(
    api: APIClient, alice: User
) -> None:
    created = create_token(api, alice)
    key = str(created["key"])
    assert key.startswith("pdm_")
    assert len(key) > 40
    assert created["prefix"] == key[:12]
    assert created["name"] == "laptop"
    assert created["revoked_at"] is None

    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    listed = api.get(TOKENS)
    assert listed.status_code == 200
    (token,) = listed.json()["results"]
    assert token["id"] == created["id"]
    assert token["prefix"] == key[:12]
    assert "key" not in token
    assert token["last_used_at"] is not None


def test_the_key_is_stored_hashed_and_appears_nowhere_in_the_database(
    api: APIClient, alice: User
) -> None:
    key = str(create_token(api, alice)["key"])
    token = ApiToken.objects.get()
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    secret_part = key[12:]  # the displayed prefix is meant to be stored
    for model in apps.get_models():
        for row in model._default_manager.values():
            assert secret_part not in repr(row), f"the key is stored in {model.__name__}"


def test_a_token_authenticates_writes(client_for: Callable[[User], APIClient], alice: User) -> None:
    response = client_for(alice).post(TOKENS, {"name": "ci"}, format="json")
    assert response.status_code == 201
    assert ApiToken.objects.filter(user=alice).count() == 2


def test_a_revoked_token_is_rejected_at_once(api: APIClient, alice: User) -> None:
    created = create_token(api, alice)
    api.credentials(HTTP_AUTHORIZATION=f"Token {created['key']}")
    assert api.get(TOKENS).status_code == 200

    assert api.delete(f"{TOKENS}{created['id']}/").status_code == 204
    response = api.get(TOKENS)
    assert response.status_code == 401
    assert response.json() == {
        "detail": "Invalid or revoked token.",
        "errors": {"non_field_errors": ["Invalid or revoked token."]},
    }
    assert ApiToken.objects.get().revoked_at is not None


def test_revoked_tokens_stay_listed_with_their_revocation_time(api: APIClient, alice: User) -> None:
    first = create_token(api, alice, "old")
    create_token(api, alice, "new")
    api.force_login(alice)
    assert api.delete(f"{TOKENS}{first['id']}/").status_code == 204
    revoked_at = ApiToken.objects.get(pk=first["id"]).revoked_at
    assert api.delete(f"{TOKENS}{first['id']}/").status_code == 204  # idempotent
    assert ApiToken.objects.get(pk=first["id"]).revoked_at == revoked_at
    listed = {t["name"]: t for t in api.get(TOKENS).json()["results"]}
    assert listed["old"]["revoked_at"] is not None
    assert listed["new"]["revoked_at"] is None


def test_another_users_token_cannot_be_seen_or_revoked(
    api: APIClient, alice: User, bob: User
) -> None:
    created = create_token(api, alice)
    api.force_login(bob)
    assert api.get(TOKENS).json()["results"] == []
    assert api.delete(f"{TOKENS}{created['id']}/").status_code == 404
    assert ApiToken.objects.get().revoked_at is None


def test_anonymous_requests_are_refused_with_401(api: APIClient) -> None:
    response = api.post(TOKENS, {"name": "x"}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert api.get(TOKENS).status_code == 401
    assert api.delete(f"{TOKENS}1/").status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Token pdm_not-a-real-key", "Token", "Token two parts", "token \xe9t\xe9"],
)
def test_bad_token_headers_are_refused_with_401(api: APIClient, header: str) -> None:
    api.credentials(HTTP_AUTHORIZATION=header)
    assert api.get("/api/v1/benchmarks/").status_code == 401


def test_an_inactive_users_token_is_refused(api: APIClient, alice: User) -> None:
    key = create_token(api, alice)["key"]
    User.objects.filter(pk=alice.pk).update(is_active=False)
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get(TOKENS).status_code == 401


def test_a_token_needs_a_name(api: APIClient, alice: User) -> None:
    api.force_login(alice)
    response = api.post(TOKENS, {}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["name"]
    assert not ApiToken.objects.exists()
