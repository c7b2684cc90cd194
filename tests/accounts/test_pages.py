"""The browser pages: sign-up, login, logout, password reset, and the admin's sign-up
policy and invitations."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from accounts.models import Invitation, SignupMode, SignupPolicy
from tests.accounts.conftest import STRONG_PASSWORD
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def signup_form(**overrides: str) -> dict[str, str]:
    form = {
        "username": "ada",
        "email": "ada@example.org",
        "display_name": "Ada Lovelace",
        "password1": STRONG_PASSWORD,
        "password2": STRONG_PASSWORD,
    }
    form.update(overrides)
    return form


def test_the_sign_up_page_creates_the_account_and_signs_it_in(client: Client) -> None:
    page = client.get("/accounts/signup/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Create an account" in html
    assert 'name="invitation"' not in html  # open sign-up needs no code
    response = client.post("/accounts/signup/", signup_form())
    assert response.status_code == 302
    assert response["Location"] == "/"
    user = User.objects.get(username="ada")
    assert user.profile.display_name == "Ada Lovelace"
    assert client.get("/").context["user"] == user


def test_the_sign_up_page_shows_errors_next_to_their_fields(client: Client) -> None:
    UserFactory.create(username="ada")
    response = client.post("/accounts/signup/", signup_form(password2="something-else-entirely"))
    assert response.status_code == 400
    assert "The two passwords differ." in response.content.decode()
    response = client.post("/accounts/signup/", signup_form())
    assert response.status_code == 400
    assert "This username is taken." in response.content.decode()
    assert User.objects.count() == 1


def test_the_sign_up_page_follows_the_policy(
    client: Client, invitation_only: Invitation, set_signup_mode: Callable[[str], None]
) -> None:
    assert 'name="invitation"' in client.get("/accounts/signup/").content.decode()
    refused = client.post("/accounts/signup/", signup_form(invitation="wrong"))
    assert "unknown or used" in refused.content.decode()
    ok = client.post("/accounts/signup/", signup_form(invitation=invitation_only.code))
    assert ok.status_code == 302
    set_signup_mode(SignupMode.CLOSED)
    Client().post("/accounts/signup/", signup_form(username="eve", email="e@example.org"))
    assert "Sign-up is closed" in Client().get("/accounts/signup/").content.decode()
    assert not User.objects.filter(username="eve").exists()


def test_login_and_logout(client: Client) -> None:
    user = UserFactory.create(username="ada")
    user.set_password(STRONG_PASSWORD)
    user.save()
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert "Forgotten your password?" in page.content.decode()
    response = client.post("/accounts/login/", {"username": "ada", "password": STRONG_PASSWORD})
    assert response.status_code == 302
    assert client.get("/").context["user"] == user
    assert client.post("/accounts/logout/").status_code == 302
    assert not client.get("/").context["user"].is_authenticated


def test_a_page_that_needs_a_user_sends_the_browser_to_the_login_page(client: Client) -> None:
    response = client.post("/suites/glue/freeze/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_the_password_reset_pages_work_end_to_end(client: Client) -> None:
    user = UserFactory.create(username="ada", email="ada@example.org")
    assert client.get("/accounts/password-reset/").status_code == 200
    sent = client.post("/accounts/password-reset/", {"email": "ada@example.org"})
    assert sent.status_code == 302
    assert "Check your e-mail" in client.get(sent["Location"]).content.decode()
    (message,) = mail.outbox
    assert message.subject == "Reset your Podium password"
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", str(message.body))
    assert link is not None
    # Django swaps the token for a session marker and redirects to the form.
    form_page = client.get(link.group(1), follow=True)
    assert "Choose a new password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(
        set_url, {"new_password1": STRONG_PASSWORD, "new_password2": STRONG_PASSWORD}
    )
    assert done.status_code == 302
    assert "Password changed" in client.get(done["Location"]).content.decode()
    user.refresh_from_db()
    assert user.check_password(STRONG_PASSWORD)
    again = Client().get(link.group(1), follow=True)
    assert "invalid or has expired" in again.content.decode()


def test_staff_set_the_sign_up_policy_and_create_invitations_in_the_admin(
    client: Client,
) -> None:
    admin_user = UserFactory.create(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    listing = client.get("/admin/accounts/signuppolicy/")
    assert listing.status_code == 302
    assert listing["Location"] == "/admin/accounts/signuppolicy/1/change/"
    saved = client.post(listing["Location"], {"mode": SignupMode.INVITATION})
    assert saved.status_code == 302
    assert SignupPolicy.objects.get().mode == SignupMode.INVITATION
    assert SignupPolicy.objects.count() == 1

    add = client.get("/admin/accounts/invitation/add/")
    assert add.status_code == 200
    code = re.search(r'name="code"[^>]*value="([^"]+)"', add.content.decode())
    assert code is not None
    created = client.post(
        "/admin/accounts/invitation/add/",
        {
            "code": code.group(1),
            "email": "",
            "note": "for the workshop",
            "expires_at_0": "",
            "expires_at_1": "",
        },
    )
    assert created.status_code == 302, created.content.decode()[:2000]
    invitation = Invitation.objects.get()
    assert invitation.code == code.group(1)
    assert invitation.created_by == admin_user
