"""API credentials and idempotent submissions.

A token's key is shown once, at creation; only its SHA-256 is stored, so a leaked database
never yields a usable key. A revoked token keeps its row, so a user can see what was revoked
and when.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from tracking.models import Run


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The key's first characters, enough to tell tokens apart, too few to guess the rest.
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="apitoken_user_recent_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotentRequest(models.Model):
    """A POST made with an Idempotency-Key, and the runs it created (one for a recorded run,
    one per task and seed for a job request)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotent_requests"
    )
    key = models.CharField(max_length=255)
    # Which endpoint the key was used on ("runs", "jobs"); part of request_hash as well.
    endpoint = models.CharField(max_length=32, default="runs")
    # SHA-256 of the canonical request body: a reused key with another body is a conflict.
    request_hash = models.CharField(max_length=64)
    runs = models.ManyToManyField(Run, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotentrequest_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
