"""/api/v1/accounts/: sign-up under the site's policy, password reset by e-mail, and
your own account with its display name."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Invitation, Profile, SignupMode
from tests.accounts.conftest import STRONG_PASSWORD
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = "/api/v1/accounts/signup/"
RESET = "/api/v1/accounts/password-reset/"
CONFIRM = "/api/v1/accounts/password-reset/confirm/"
ME = "/api/v1/accounts/me/"


def signup_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "username": "ada",
        "email": "ada@example.org",
        "password": STRONG_PASSWORD,
        "display_name": "Ada Lovelace",
    }
    body.update(overrides)
    return body


def errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 400, response.content
    found: dict[str, list[str]] = response.json()["errors"]
    return found


# --- Sign-up -------------------------------------------------------------------------------


def test_open_sign_up_creates_an_account_with_its_display_name(api: APIClient) -> None:
    response = api.post(SIGNUP, signup_body(), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["username"] == "ada"
    assert body["display_name"] == "Ada Lovelace"
    assert body["token"] is None
    assert "password" not in body
    user = User.objects.get(username="ada")
    assert user.check_password(STRONG_PASSWORD)
    assert user.password != STRONG_PASSWORD
    assert Profile.objects.get(user=user).display_name == "Ada Lovelace"
    assert api.login(username="ada", password=STRONG_PASSWORD)


def test_sign_up_can_hand_out_a_first_api_token(api: APIClient) -> None:
    response = api.post(SIGNUP, signup_body(token_name="laptop"), format="json")
    assert response.status_code == 201
    key = response.json()["token"]
    assert key.startswith("pdm_")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(ME).json()["username"] == "ada"


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"username": "ADA"}, "username", "taken"),
        ({"email": "ADA@example.org", "username": "other"}, "email", "exists already"),
        ({"username": "bad name!"}, "username", "Enter a valid username"),
        ({"password": "12345678", "username": "x1", "email": "x1@e.org"}, "password", "too common"),
        ({"password": "ada", "username": "x2", "email": "x2@e.org"}, "password", "too short"),
        ({"email": "not-an-address"}, "email", "valid email"),
        (
            {"display_name": "Eve\u202e", "username": "x3", "email": "x3@e.org"},
            "display_name",
            "Control characters",
        ),
        ({"username": ""}, "username", "may not be blank"),
    ],
)
def test_a_bad_sign_up_is_a_400_naming_the_field_and_creates_nothing(
    api: APIClient, overrides: dict[str, Any], field: str, says: str
) -> None:
    UserFactory.create(username="ada", email="ada@example.org")
    found = errors(api.post(SIGNUP, signup_body(**overrides), format="json"))
    assert list(found) == [field], found
    assert says in " ".join(found[field])
    assert User.objects.count() == 1
    assert not Profile.objects.exists()


def test_invitation_only_sign_up_uses_each_code_once(
    api: APIClient, invitation_only: Invitation
) -> None:
    missing = errors(api.post(SIGNUP, signup_body(), format="json"))
    assert "by invitation" in missing["invitation"][0]
    wrong = errors(api.post(SIGNUP, signup_body(invitation="nope"), format="json"))
    assert "unknown or used" in wrong["invitation"][0]
    assert not User.objects.filter(username="ada").exists()

    ok = api.post(SIGNUP, signup_body(invitation=invitation_only.code), format="json")
    assert ok.status_code == 201, ok.content
    invitation_only.refresh_from_db()
    assert invitation_only.used_by == User.objects.get(username="ada")
    assert invitation_only.used_at is not None

    again = api.post(
        SIGNUP,
        signup_body(username="eve", email="eve@example.org", invitation=invitation_only.code),
        format="json",
    )
    assert "unknown or used" in errors(again)["invitation"][0]


def test_an_expired_or_addressed_invitation_is_refused(
    api: APIClient, invitation_only: Invitation
) -> None:
    addressed = Invitation.objects.create(email="grace@example.org")
    response = api.post(SIGNUP, signup_body(invitation=addressed.code), format="json")
    assert "for another e-mail address" in errors(response)["invitation"][0]
    ok = api.post(
        SIGNUP,
        signup_body(username="grace", email="Grace@Example.org", invitation=addressed.code),
        format="json",
    )
    assert ok.status_code == 201
    expired = Invitation.objects.create(expires_at=timezone.now() - timedelta(minutes=1))
    response = api.post(SIGNUP, signup_body(invitation=expired.code), format="json")
    assert "expired" in errors(response)["invitation"][0]
    # A sign-up refused for another reason does not use up the code.
    weak = api.post(
        SIGNUP, signup_body(password="123", invitation=invitation_only.code), format="json"
    )
    assert "password" in errors(weak)
    invitation_only.refresh_from_db()
    assert invitation_only.used_at is None


def test_closed_sign_up_refuses_everyone(
    api: APIClient, set_signup_mode: Callable[[str], None]
) -> None:
    set_signup_mode(SignupMode.CLOSED)
    found = errors(api.post(SIGNUP, signup_body(), format="json"))
    assert found == {"non_field_errors": ["Sign-up is closed on this site."]}
    assert not User.objects.exists()


# --- Password reset ------------------------------------------------------------------------


def reset_link_parts() -> tuple[str, str]:
    (message,) = mail.outbox
    found = re.search(r"/accounts/reset/([^/]+)/([^/]+)/", str(message.body))
    assert found is not None, message.body
    return found.group(1), found.group(2)


def test_a_password_reset_never_says_whether_the_address_has_an_account(
    api: APIClient,
) -> None:
    UserFactory.create(username="ada", email="ada@example.org")
    known = api.post(RESET, {"email": "ADA@example.org"}, format="json")
    unknown = api.post(RESET, {"email": "nobody@example.org"}, format="json")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    (message,) = mail.outbox
    assert message.to == ["ada@example.org"]
    assert "http://testserver/accounts/reset/" in message.body
    assert "/api/v1/accounts/password-reset/confirm/" in message.body
    assert errors(api.post(RESET, {"email": "not an address"}, format="json"))["email"]


def test_a_reset_link_sets_a_new_password_once(api: APIClient) -> None:
    user = UserFactory.create(username="ada", email="ada@example.org")
    user.set_password("old-password-that-is-long")
    user.save()
    api.post(RESET, {"email": "ada@example.org"}, format="json")
    uid, token = reset_link_parts()

    weak = api.post(CONFIRM, {"uid": uid, "token": token, "new_password": "1234"}, format="json")
    assert "new_password" in errors(weak)
    body = {"uid": uid, "token": token, "new_password": STRONG_PASSWORD}
    done = api.post(CONFIRM, body, format="json")
    assert done.status_code == 200, done.content
    user.refresh_from_db()
    assert user.check_password(STRONG_PASSWORD)
    # The token is spent: the password it was made for has changed.
    reused = api.post(CONFIRM, {**body, "new_password": "another-long-passphrase-9"}, format="json")
    assert "invalid or has expired" in errors(reused)["token"][0]


@pytest.mark.parametrize(
    ("uid", "token"),
    [("MQ", "bad-token"), ("!!notbase64", "x"), ("OTk5OTk", "x"), ("", "x")],
)
def test_a_bad_reset_link_is_a_400_that_reveals_nothing(
    api: APIClient, uid: str, token: str
) -> None:
    UserFactory.create(username="ada", email="ada@example.org")
    response = api.post(
        CONFIRM, {"uid": uid, "token": token, "new_password": STRONG_PASSWORD}, format="json"
    )
    found = errors(response)
    assert list(found) == ["uid"] if not uid else ["token"]


# --- Your account --------------------------------------------------------------------------


def test_your_account_and_display_name(
    api: APIClient, client_for: Callable[[User], APIClient]
) -> None:
    user = UserFactory.create(username="ada", email="ada@example.org")
    assert api.get(ME).status_code == 401
    client = client_for(user)
    assert client.get(ME).json()["display_name"] == "ada"  # the username until one is set
    changed = client.patch(ME, {"display_name": "  Ada L.  "}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["display_name"] == "Ada L."
    assert client.get(ME).json() == changed.json()
    assert "display_name" in errors(client.patch(ME, {"display_name": "x" * 101}, format="json"))
    assert "display_name" in errors(client.patch(ME, {}, format="json"))
    assert api.patch(ME, {"display_name": "x"}, format="json").status_code == 401


def test_account_endpoints_have_their_own_throttle(api: APIClient, settings: Any) -> None:
    settings.PODIUM_THROTTLE_RATES = {"accounts": "2/hour"}
    codes = [api.post(RESET, {"email": "a@example.org"}, format="json").status_code for _ in "abc"]
    assert codes == [202, 202, 429]
    assert api.post(SIGNUP, signup_body(), format="json").status_code == 429
    assert not User.objects.exists()
