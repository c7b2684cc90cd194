"""/api/v1/accounts/: sign-up, password reset, and your own account."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib.auth.models import User
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import (
    AccountInputError,
    account_create,
    password_reset_complete,
    password_reset_send,
    profile_update,
)
from api import account_serializers as a
from api.services import token_create
from api.throttles import AccountsThrottle, AnonThrottle, UserThrottle
from api.views import DETAIL_401, ERRORS_400, ApiErrorsMixin, _user

T = TypeVar("T")

RESET_SENT = "If an account uses this address, a password-reset link has been sent to it."


def _account_call(call: Callable[[], T]) -> T:
    """Run an accounts service; its refusals become 400s on the fields they name."""
    try:
        return call()
    except AccountInputError as error:
        raise ValidationError(error.errors) from None


class AccountsThrottled(ApiErrorsMixin, APIView):
    throttle_classes = [AnonThrottle, UserThrottle, AccountsThrottle]


class SignupView(AccountsThrottled):
    permission_classes = [AllowAny]
    # Sign-up is reached without a session: no CSRF token to ask for.
    authentication_classes: list[type] = []

    @extend_schema(
        summary="Sign up (open, or with an invitation code, as the site's policy says)",
        request=a.SignupInputSerializer,
        responses={201: a.SignupResultSerializer, 400: ERRORS_400},
    )
    def post(self, request: Request) -> Response:
        form = a.SignupInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data

        @transaction.atomic
        def create() -> tuple[User, str]:
            user = account_create(
                username=data["username"],
                email=data["email"],
                password=data["password"],
                display_name=data["display_name"],
                invitation_code=data["invitation"],
            )
            key = token_create(user=user, name=data["token_name"]).key if data["token_name"] else ""
            return user, key

        user, key = _account_call(create)
        body = a.SignupResultSerializer(user, context={"token": key}).data
        return Response(body, status=status.HTTP_201_CREATED)


class PasswordResetView(AccountsThrottled):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(
        summary="E-mail a password-reset link; the answer never says whether the address "
        "has an account",
        request=a.PasswordResetInputSerializer,
        responses={
            202: OpenApiResponse(a.MessageSerializer, description="Accepted."),
            400: ERRORS_400,
        },
    )
    def post(self, request: Request) -> Response:
        form = a.PasswordResetInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        password_reset_send(
            email=form.validated_data["email"],
            domain=request.get_host(),
            use_https=request.is_secure(),
        )
        return Response({"detail": RESET_SENT}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(AccountsThrottled):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []

    @extend_schema(
        summary="Set a new password with the uid and token from a reset link",
        request=a.PasswordResetConfirmInputSerializer,
        responses={200: a.MessageSerializer, 400: ERRORS_400},
    )
    def post(self, request: Request) -> Response:
        form = a.PasswordResetConfirmInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        _account_call(
            lambda: password_reset_complete(
                uidb64=data["uid"], token=data["token"], new_password=data["new_password"]
            )
        )
        return Response({"detail": "Your password has been changed."})


class AccountMeView(ApiErrorsMixin, APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Your account", responses={200: a.AccountSerializer, 401: DETAIL_401})
    def get(self, request: Request) -> Response:
        return Response(a.AccountSerializer(_user(request)).data)

    @extend_schema(
        summary="Change your display name",
        request=a.AccountUpdateSerializer,
        responses={200: a.AccountSerializer, 400: ERRORS_400, 401: DETAIL_401},
    )
    def patch(self, request: Request) -> Response:
        user = _user(request)
        form = a.AccountUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        _account_call(
            lambda: profile_update(user=user, display_name=form.validated_data["display_name"])
        )
        fresh = User.objects.select_related("profile").get(pk=user.pk)
        return Response(a.AccountSerializer(fresh).data)
