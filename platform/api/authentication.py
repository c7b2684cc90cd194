"""`Authorization: Token <key>` against hashed, revocable API tokens."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from api.models import ApiToken
from api.services import token_authenticate

KEYWORD = "Token"


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None  # not ours: let session authentication try
        if len(parts) != 2:
            raise AuthenticationFailed("Invalid token header: give 'Token <key>'.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token header: the key is not ASCII.") from None
        token = token_authenticate(key=key)
        if token is None:
            raise AuthenticationFailed("Invalid or revoked token.")
        if not token.user.is_active:
            raise AuthenticationFailed("This token's user is inactive.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer an unauthenticated request 401 (with WWW-Authenticate), not 403.
        return KEYWORD
