"""Security settings and the guards around every request: production's cookies and headers,
login throttling, JSON errors under /api/, and the request-size limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "PODIUM_ENV": "production",
    "SECRET_KEY": "s" * 64 + "-a-long-random-production-secret",
    # Never reached: the requests below need no database.
    "DATABASE_URL": "postgres://podium:secret@db.invalid:5432/podium",
    "CELERY_BROKER_URL": "redis://:secret@redis.invalid:6379/0",
    "ALLOWED_HOSTS": "podium.example.org",
    "PODIUM_WORKER_KEY": "k" * 48 + "-the-workers-shared-signing-key",
}
PROBE = """
import json
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST="podium.example.org")
https = client.get("/no-such-page/", HTTP_X_FORWARDED_PROTO="https")
plain = client.get("/no-such-page/")
print(json.dumps({
    "settings": {name: getattr(settings, name) for name in (
        "DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS", "SECURE_PROXY_SSL_HEADER",
    )},
    "https": {"status": https.status_code, "headers": dict(https.headers)},
    "plain": {"status": plain.status_code, "location": plain.get("Location", "")},
}))
"""


def production_probe() -> dict[str, Any]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PODIUM_", "DATABASE_", "CELERY_", "SECURE_", "DEBUG"))
    }
    env.update(PRODUCTION_ENV)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_production_cookies_are_secure_and_responses_carry_the_security_headers() -> None:
    probe = production_probe()
    assert probe["settings"] == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
    }
    headers = probe["https"]["headers"]
    assert probe["https"]["status"] == 404
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    # Plain HTTP behind the proxy is sent to HTTPS.
    assert probe["plain"] == {
        "status": 301,
        "location": "https://podium.example.org/no-such-page/",
    }


# --- Login throttling --------------------------------------------------------------------


@pytest.fixture
def staff() -> User:
    user = UserFactory.create(username="root", is_staff=True)
    user.set_password("correct horse battery staple")
    user.save()
    return user


@pytest.fixture
def throttle(settings: Settings) -> Settings:
    settings.PODIUM_LOGIN_MAX_FAILURES = 3
    settings.PODIUM_LOGIN_FAILURE_WINDOW_S = 600
    settings.PODIUM_LOGIN_LOCKOUT_S = 600
    return settings


def login(
    client: Client, password: str, path: str = "/admin/login/", *, forwarded_for: str = ""
) -> Any:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    return client.post(path, {"username": "root", "password": password}, headers=headers)


@pytest.mark.django_db
def test_repeated_failed_logins_are_refused_429_even_with_the_right_password(
    staff: User, throttle: Settings
) -> None:
    client = Client()
    for _ in range(3):
        assert login(client, "wrong").status_code == 200  # the form again, with its error
    refused = login(client, "correct horse battery staple")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 600
    assert b"Too many failed logins" in refused.content
    assert "_auth_user_id" not in client.session
    # The accounts pages' login counts and refuses alike: it is the same client.
    assert login(client, "correct horse battery staple", "/accounts/login/").status_code == 429
    # Reading the login page is not an attempt.
    assert client.get("/admin/login/").status_code == 200


@pytest.mark.django_db
def test_the_lockout_is_per_client_and_a_success_clears_the_count(
    staff: User, throttle: Settings
) -> None:
    locked, other = Client(), Client(REMOTE_ADDR="10.0.0.2")
    for _ in range(3):
        login(locked, "wrong")
    assert login(locked, "wrong").status_code == 429
    # Another address is not locked out; its success clears its own count.
    for _ in range(2):
        login(other, "wrong")
    assert login(other, "correct horse battery staple").status_code == 302
    other.logout()
    for _ in range(2):
        assert login(other, "wrong").status_code == 200


@pytest.mark.django_db
def test_the_lockout_ends_by_itself(staff: User, throttle: Settings) -> None:
    throttle.PODIUM_LOGIN_LOCKOUT_S = 1
    client = Client()
    for _ in range(3):
        login(client, "wrong")
    assert login(client, "wrong").status_code == 429
    waited = threading.Event()
    for _ in range(100):  # poll the lockout with a deadline (5 s)
        if login(client, "wrong").status_code != 429:
            break
        waited.wait(0.05)
    else:
        pytest.fail("the lockout did not end")
    # That failure opened a new window; the right password now works.
    assert login(client, "correct horse battery staple").status_code == 302


@pytest.mark.django_db
def test_behind_a_proxy_the_forwarded_client_is_throttled_and_cannot_forge_its_way_out(
    staff: User, throttle: Settings
) -> None:
    throttle.PODIUM_TRUSTED_PROXY_COUNT = 1
    client = Client(REMOTE_ADDR="10.0.0.1")  # the proxy
    for forged in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
        login(client, "wrong", forwarded_for=f"{forged}, 203.0.113.9")
    assert login(client, "wrong", forwarded_for="9.9.9.9, 203.0.113.9").status_code == 429
    assert login(client, "wrong", forwarded_for="203.0.113.10").status_code == 200


# --- Error bodies and request size ------------------------------------------------------


@pytest.mark.django_db
def test_an_unknown_api_address_is_a_json_404() -> None:
    response = Client().get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response.json()["detail"] == "Not Found."
    assert Client().get("/no-such-page/")["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_a_page_body_over_the_limit_is_a_short_html_413(settings: Settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = Client().post(
        "/accounts/login/",
        urlencode({"username": "x" * 2000, "password": "y"}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert b"at most 1000 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)" in response.content


@pytest.mark.django_db
def test_a_file_upload_may_be_as_large_as_the_largest_artifact_but_no_larger(
    settings: Settings,
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    settings.PODIUM_MAX_ARTIFACT_BYTES = 5000
    client = Client()
    multipart = "multipart/form-data; boundary=b"
    within = client.generic("POST", "/api/v1/runs/", "x" * 4000, content_type=multipart)
    assert within.status_code != 413  # left to the endpoint (here: not signed in)
    large = "x" * (5000 + 1024 * 1024 + 1)
    beyond = client.generic("POST", "/api/v1/runs/", large, content_type=multipart)
    assert beyond.status_code == 413
    assert "(PODIUM_MAX_ARTIFACT_BYTES)" in beyond.json()["detail"]
