"""Read side of accounts."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, User
from django.core.exceptions import ObjectDoesNotExist

from accounts.models import SIGNUP_POLICY_PK, SignupPolicy


def signup_policy() -> SignupPolicy:
    """The site's sign-up policy; the row is created with its default the first time."""
    policy, _ = SignupPolicy.objects.get_or_create(pk=SIGNUP_POLICY_PK)
    return policy


def display_name(*, user: AbstractBaseUser | User) -> str:
    """The name Podium shows for a user: their display name, else their username.

    Select `owner__profile` (or `profile`) with the user to avoid a query per user.
    """
    try:
        name = user.profile.display_name  # type: ignore[union-attr]
    except ObjectDoesNotExist:
        name = ""
    return name or user.get_username()
