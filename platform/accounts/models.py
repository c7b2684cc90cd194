"""Accounts beyond Django's user: who may sign up, invitations, and display names."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import models


class SignupMode(models.TextChoices):
    OPEN = "open", "Open: anyone may sign up"
    INVITATION = "invitation", "By invitation: a single-use code is needed"
    CLOSED = "closed", "Closed: only staff create accounts"


SIGNUP_POLICY_PK = 1


class SignupPolicy(models.Model):
    """The site's one sign-up setting, edited in the admin (a singleton: row 1)."""

    mode = models.CharField(max_length=16, choices=SignupMode.choices, default=SignupMode.OPEN)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sign-up policy"
        verbose_name_plural = "sign-up policy"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(pk=SIGNUP_POLICY_PK), name="signuppolicy_singleton"
            ),
        ]

    def __str__(self) -> str:
        return f"Sign-up: {self.get_mode_display()}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pk = SIGNUP_POLICY_PK
        super().save(*args, **kwargs)


def new_invitation_code() -> str:
    return secrets.token_urlsafe(18)


class Invitation(models.Model):
    """A single-use sign-up code, created by staff in the admin."""

    code = models.CharField(max_length=64, unique=True, default=new_invitation_code)
    email = models.EmailField(blank=True, help_text="If set, only this address may use the code.")
    note = models.CharField(max_length=200, blank=True, help_text="Who it is for; staff only.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires.")
    used_by = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invitation",
    )
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"invitation {self.code[:6]}… ({self.email or 'any address'})"

    @property
    def is_used(self) -> bool:
        return self.used_at is not None


class Profile(models.Model):
    """What Podium shows of a user: a display name where runs show their owner."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    display_name = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.display_name or str(self.user)
