"""Request throttling. Rates come from settings.PODIUM_THROTTLE_RATES at request time (not
DRF's import-time copy), so a deployment's environment, and a test, decide them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

if TYPE_CHECKING:
    # DRF imports this module while defining APIView (DEFAULT_THROTTLE_CLASSES).
    from rest_framework.request import Request
    from rest_framework.views import APIView


def _rate(scope: str) -> str | None:
    rates: dict[str, str | None] = settings.PODIUM_THROTTLE_RATES
    return rates.get(scope)


class AnonThrottle(AnonRateThrottle):
    """Every request without a user, by client address."""

    def get_rate(self) -> str | None:
        return _rate(self.scope or "")


class UserThrottle(UserRateThrottle):
    """Every request of a signed-in user or token, by user."""

    def get_rate(self) -> str | None:
        return _rate(self.scope or "")


class SubmissionThrottle(SimpleRateThrottle):
    """The stricter scope of requests that create runs; reads of the same view are free."""

    scope = "submissions"

    def get_rate(self) -> str | None:
        return _rate(self.scope or "")

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        ident = request.user.pk if request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AccountsThrottle(SimpleRateThrottle):
    """Sign-up and password-reset requests, by client address."""

    scope = "accounts"

    def get_rate(self) -> str | None:
        return _rate(self.scope or "")

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
