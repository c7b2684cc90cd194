"""Write side of the API: tokens, and idempotent run submission within quotas."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from api.models import ApiToken, IdempotentRequest
from tracking.models import Run
from tracking.services import submission_quota_check

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
class Submission:
    runs: list[Run]
    replayed: bool  # True when the key had been used: these are the first request's runs


@transaction.atomic
def runs_submit(
    *,
    owner: User,
    endpoint: str,
    idempotency_key: str,
    request_hash: str,
    create: Callable[[], Sequence[Run]],
    quota_task_ids: Sequence[int] | None = None,
) -> Submission:
    """Create runs with `create`, once per idempotency key (no key: always create), within
    the submission quotas of the suites their tasks belong to.

    `quota_task_ids` (one entry per run to create) lets the quotas refuse a request before
    `create` does any work; without it they are checked on the runs `create` made. A replay
    returns the first request's runs and is never refused by a quota. Only a request that
    created runs is remembered, so a retry after a refused request is validated afresh.
    The runs and their key commit together or not at all.
    """
    # Locking the owner serialises their submissions: concurrent retries of one key (the
    # second waits, then finds the first one's runs) and quota checks (two requests cannot
    # both take the last slot).
    User.objects.select_for_update().filter(pk=owner.pk).first()
    if idempotency_key:
        previous = IdempotentRequest.objects.filter(user=owner, key=idempotency_key).first()
        if previous is not None:
            if previous.request_hash != request_hash:
                raise IdempotencyConflict(
                    f"Idempotency-Key {idempotency_key!r} was used with a different request "
                    f"body (on /{previous.endpoint}/); use a new key for a new submission."
                )
            return Submission(runs=list(previous.runs.order_by("id")), replayed=True)
    if quota_task_ids is not None:
        submission_quota_check(owner=owner, task_ids=quota_task_ids)
    runs = list(create())
    if quota_task_ids is None:
        submission_quota_check(
            owner=owner,
            task_ids=[run.task_id for run in runs],
            exclude_run_ids=[run.pk for run in runs],
        )
    if idempotency_key:
        record = IdempotentRequest.objects.create(
            user=owner, key=idempotency_key, endpoint=endpoint, request_hash=request_hash
        )
        record.runs.set(runs)
    return Submission(runs=runs, replayed=False)


@dataclass(frozen=True, kw_only=True)
class RunSubmission:
    run: Run
    replayed: bool  # True when the key had been used: this is the first request's run


def run_submit(
    *,
    owner: User,
    idempotency_key: str,
    request_hash: str,
    create: Callable[[], Run],
    endpoint: str = "runs",
    quota_task_ids: Sequence[int] | None = None,
) -> RunSubmission:
    """runs_submit for a request that creates one run."""
    submission = runs_submit(
        owner=owner,
        endpoint=endpoint,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        create=lambda: [create()],
        quota_task_ids=quota_task_ids,
    )
    return RunSubmission(run=submission.runs[0], replayed=submission.replayed)
