"""Password guessing is throttled per client.

Every failed login (Django's `user_login_failed`, sent by `authenticate()` wherever a
password is checked: the admin's login, the accounts pages, any API endpoint that takes a
password) counts against the client's address in the cache. After
PODIUM_LOGIN_MAX_FAILURES failures within PODIUM_LOGIN_FAILURE_WINDOW_S, the client's login
attempts are answered 429 with Retry-After for PODIUM_LOGIN_LOCKOUT_S, whatever the
password. A successful login clears the count.

The counts live in the default cache, so with several web processes the cache must be
shared (CACHE_URL=redis://...); with the per-process default each process counts alone.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.admin.sites import AdminSite
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from config.http_errors import refusal_response

_KEY_PREFIX = "podium:login-throttle"


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind PODIUM_TRUSTED_PROXY_COUNT proxies the
    address the outermost trusted proxy saw (X-Forwarded-For entries further left are
    client-supplied and could be forged)."""
    proxies = settings.PODIUM_TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            return str(forwarded[-proxies])
    return str(request.META.get("REMOTE_ADDR", "") or "unknown")


def _key(kind: str, address: str) -> str:
    # Hashed: an address (IPv6, or whatever a proxy forwarded) is not always a valid key.
    return f"{_KEY_PREFIX}:{kind}:{hashlib.sha256(address.encode()).hexdigest()[:32]}"


def login_lockout_remaining(*, address: str) -> int:
    """Seconds this client must still wait before it may try a password again (0: none)."""
    until = cache.get(_key("locked", address))
    if until is None:
        return 0
    return max(0, math.ceil(float(until) - time.time()))


def login_failure_record(*, address: str) -> int:
    """Count a failed login; lock the client out once it reaches the limit. Returns the
    failures counted in the current window."""
    failures_key = _key("failures", address)
    cache.add(failures_key, 0, timeout=settings.PODIUM_LOGIN_FAILURE_WINDOW_S)
    try:
        failures = cache.incr(failures_key)
    except ValueError:  # expired between add and incr: this failure opens a new window
        cache.set(failures_key, 1, timeout=settings.PODIUM_LOGIN_FAILURE_WINDOW_S)
        failures = 1
    if failures >= settings.PODIUM_LOGIN_MAX_FAILURES:
        lockout = settings.PODIUM_LOGIN_LOCKOUT_S
        cache.set(_key("locked", address), time.time() + lockout, timeout=lockout)
        cache.delete(failures_key)
    return int(failures)


def login_failures_reset(*, address: str) -> None:
    cache.delete(_key("failures", address))


@receiver(user_login_failed, dispatch_uid="podium-login-throttle-failed")
def _on_login_failed(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    if request is not None:  # authenticate() called outside a request: nobody to throttle
        login_failure_record(address=client_address(request))


@receiver(user_logged_in, dispatch_uid="podium-login-throttle-succeeded")
def _on_logged_in(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    if request is not None:
        login_failures_reset(address=client_address(request))


def is_login_view(view_func: Callable[..., Any]) -> bool:
    """A view that checks a password: Django's LoginView (the accounts pages), the admin's
    login, or any view class marked `login_throttled = True` (e.g. an API endpoint that
    trades a password for a token)."""
    view_class = getattr(view_func, "view_class", None) or getattr(view_func, "cls", None)
    if view_class is not None and (
        issubclass(view_class, LoginView) or getattr(view_class, "login_throttled", False)
    ):
        return True
    if getattr(view_func, "login_throttled", False):
        return True
    owner = getattr(view_func, "__self__", None)
    return isinstance(owner, AdminSite) and getattr(view_func, "__name__", "") == "login"


class LoginThrottleMiddleware:
    """Refuses a locked-out client's login attempts (POSTs to a login view) with 429."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if request.method != "POST" or not is_login_view(view_func):
            return None
        remaining = login_lockout_remaining(address=client_address(request))
        if not remaining:
            return None
        return refusal_response(
            request,
            status=429,
            title="Too many failed logins",
            message=(
                f"Too many failed logins from this address; try again in {remaining} seconds."
            ),
            retry_after_s=remaining,
        )
