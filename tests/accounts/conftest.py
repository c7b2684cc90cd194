"""Fixtures for account tests: API clients and the site's sign-up policy."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from accounts.models import Invitation, SignupMode
from accounts.selectors import signup_policy
from api.services import token_create
from tests.factories import UserFactory

STRONG_PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    def make(user: User) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user, name='t').key}")
        return client

    return make


@pytest.fixture
def set_signup_mode() -> Callable[[str], None]:
    def set_mode(mode: str) -> None:
        policy = signup_policy()
        policy.mode = mode
        policy.save()

    return set_mode


@pytest.fixture
def invitation_only(set_signup_mode: Callable[[str], None]) -> Invitation:
    """Sign-up by invitation, with one invitation created by staff."""
    set_signup_mode(SignupMode.INVITATION)
    return Invitation.objects.create(created_by=UserFactory.create(username="staffer"))
