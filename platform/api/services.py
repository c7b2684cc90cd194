"""Write side of the API: tokens and idempotent run submission."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from api.models import ApiToken, IdempotentRequest
from tracking.models import Run

KEY_PREFIX = "pdm_"
DISPLAY_PREFIX_LENGTH = 12
# last_used_at is advisory: writing it at most once a minute keeps reads from becoming writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_hash(*, key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class CreatedToken:
    token: ApiToken
    key: str  # the only time the raw key exists outside the client


def token_create(*, user: User, name: str) -> CreatedToken:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=key[:DISPLAY_PREFIX_LENGTH], key_hash=token_hash(key=key)
    )
    return CreatedToken(token=token, key=key)


def token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke a token; revoking it again keeps the first revocation time."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_authenticate(*, key: str) -> ApiToken | None:
    """The active token with this key, or None; looked up by hash on every request, so a
    revocation takes effect at once."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(key=key), revoked_at__isnull=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def request_fingerprint(*, endpoint: str, data: Any) -> str:
    """A hash of a request body that ignores key order and whitespace."""
    canonical = json.dumps(
        {"endpoint": endpoint, "data": data}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class IdempotencyConflict(Exception):
    """An Idempotency-Key reused with a different request body."""


@dataclass(frozen=True, kw_only=True)
class RunSubmission:
    run: Run
    replayed: bool  # True when the key had been used: this is the first request's run


@transaction.atomic
def run_submit(
    *,
    owner: User,
    idempotency_key: str,
    request_hash: str,
    create: Callable[[], Run],
) -> RunSubmission:
    """Create a run with `create`, once per idempotency key (no key: always create).

    Only a request that created a run is remembered, so a retry after a refused request is
    validated afresh. The run and its key commit together or not at all.
    """
    if not idempotency_key:
        return RunSubmission(run=create(), replayed=False)
    # Locking the owner serialises concurrent retries of one key: the second one waits and
    # then finds the first one's run.
    User.objects.select_for_update().filter(pk=owner.pk).first()
    previous = (
        IdempotentRequest.objects.select_related("run")
        .filter(user=owner, key=idempotency_key)
        .first()
    )
    if previous is not None:
        if previous.request_hash != request_hash:
            raise IdempotencyConflict(
                f"Idempotency-Key {idempotency_key!r} was used with a different request body."
            )
        return RunSubmission(run=previous.run, replayed=True)
    run = create()
    IdempotentRequest.objects.create(
        user=owner, key=idempotency_key, request_hash=request_hash, run=run
    )
    return RunSubmission(run=run, replayed=False)
