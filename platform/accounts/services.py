"""Write side of accounts: sign-up, password reset, profile edits.

Every refusal is an AccountInputError naming the fields it is about, so the API and the
HTML forms show each message next to its input.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from django.contrib.auth import password_validation
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode

from accounts.models import Invitation, Profile, SignupMode
from accounts.selectors import signup_policy

DISPLAY_NAME_MAX = 100
INVALID_RESET_LINK = "This password-reset link is invalid or has expired; ask for a new one."


class AccountInputError(ValueError):
    """Input that cannot be accepted; `errors` maps each field to its messages."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors = {field: list(messages) for field, messages in errors.items()}
        super().__init__("; ".join(f"{f}: {' '.join(m)}" for f, m in self.errors.items()))


def _clean_display_name(value: str) -> str:
    name = value.strip()
    if len(name) > DISPLAY_NAME_MAX:
        raise AccountInputError({"display_name": [f"At most {DISPLAY_NAME_MAX} characters."]})
    # Control characters (newlines, bidi overrides) have no place in a name shown to others.
    if any(unicodedata.category(ch) in {"Cc", "Cf"} for ch in name):
        raise AccountInputError({"display_name": ["Control characters are not allowed."]})
    return name


def _check_username(username: str) -> None:
    validator = UnicodeUsernameValidator()
    try:
        validator(username)
    except ValidationError as error:
        raise AccountInputError({"username": list(error.messages)}) from None
    if not username or len(username) > 150:
        raise AccountInputError({"username": ["Give 1 to 150 characters."]})
    if User.objects.filter(username__iexact=username).exists():
        raise AccountInputError({"username": ["This username is taken."]})


def _check_email(email: str) -> None:
    try:
        validate_email(email)
    except ValidationError as error:
        raise AccountInputError({"email": list(error.messages)}) from None
    # Password resets go by address, so an address belongs to one account.
    if User.objects.filter(email__iexact=email).exists():
        raise AccountInputError({"email": ["An account with this address exists already."]})


def _claim_invitation(*, code: str, email: str) -> Invitation:
    """The unused, unexpired invitation with this code, locked until the sign-up commits."""
    invitation = Invitation.objects.select_for_update().filter(code=code.strip()).first()
    if invitation is None or invitation.is_used:
        raise AccountInputError({"invitation": ["This invitation code is unknown or used."]})
    if invitation.expires_at is not None and invitation.expires_at <= timezone.now():
        raise AccountInputError({"invitation": ["This invitation code has expired."]})
    if invitation.email and invitation.email.lower() != email.lower():
        raise AccountInputError({"invitation": ["This invitation is for another e-mail address."]})
    return invitation


@transaction.atomic
def account_create(
    *,
    username: str,
    email: str,
    password: str,
    display_name: str = "",
    invitation_code: str = "",
) -> User:
    """Sign a user up under the site's sign-up policy; the account, its profile and the
    used invitation commit together or not at all."""
    mode = signup_policy().mode
    if mode == SignupMode.CLOSED:
        raise AccountInputError({"non_field_errors": ["Sign-up is closed on this site."]})
    invitation = None
    if mode == SignupMode.INVITATION:
        if not invitation_code.strip():
            raise AccountInputError({"invitation": ["Sign-up is by invitation: give your code."]})
        invitation = _claim_invitation(code=invitation_code, email=email)
    _check_username(username)
    _check_email(email)
    name = _clean_display_name(display_name)
    try:
        password_validation.validate_password(password, user=User(username=username, email=email))
    except ValidationError as error:
        raise AccountInputError({"password": list(error.messages)}) from None
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, email=email, password=password)
    except IntegrityError:
        # A concurrent sign-up took the name between the check and the insert.
        raise AccountInputError({"username": ["This username is taken."]}) from None
    Profile.objects.create(user=user, display_name=name)
    if invitation is not None:
        invitation.used_by = user
        invitation.used_at = timezone.now()
        invitation.save(update_fields=["used_by", "used_at"])
    return user


def password_reset_send(*, email: str, domain: str, use_https: bool) -> None:
    """E-mail a reset link to the active account with this address, if there is one.

    Says nothing either way, so callers cannot learn which addresses have accounts.
    """
    form = PasswordResetForm(data={"email": email})
    if form.is_valid():
        form.save(domain_override=domain, use_https=use_https)


def password_reset_complete(*, uidb64: str, token: str, new_password: str) -> User:
    """Set a new password from a reset link's uid and token (each usable once)."""
    try:
        user_id = force_str(urlsafe_base64_decode(uidb64))
        user = User.objects.filter(pk=int(user_id), is_active=True).first()
    except (ValueError, OverflowError, UnicodeDecodeError):
        user = None
    # One message for an unknown user and a bad token: neither reveals an account.
    if user is None or not default_token_generator.check_token(user, token):
        raise AccountInputError({"token": [INVALID_RESET_LINK]})
    try:
        password_validation.validate_password(new_password, user=user)
    except ValidationError as error:
        raise AccountInputError({"new_password": list(error.messages)}) from None
    # Changing the password changes the token's hash input, so the link stops working.
    user.set_password(new_password)
    user.save(update_fields=["password"])
    return user


def profile_update(*, user: User, display_name: str) -> Profile:
    name = _clean_display_name(display_name)
    profile, _ = Profile.objects.get_or_create(user=user)
    if profile.display_name != name:
        profile.display_name = name
        profile.save(update_fields=["display_name"])
    return profile
