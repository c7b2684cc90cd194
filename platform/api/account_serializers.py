"""Request and response shapes of /api/v1/accounts/: they parse; accounts.services decides."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework import serializers

from accounts.selectors import display_name
from accounts.services import DISPLAY_NAME_MAX


class AccountSerializer(serializers.ModelSerializer[User]):
    display_name = serializers.SerializerMethodField(
        help_text="Shown where your runs show their owner; your username where empty."
    )

    class Meta:
        model = User
        fields = ["username", "email", "display_name", "is_staff", "date_joined"]
        read_only_fields = fields

    def get_display_name(self, obj: User) -> str:
        return display_name(user=obj)


class SignupInputSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=4096)
    display_name = serializers.CharField(max_length=DISPLAY_NAME_MAX, allow_blank=True, default="")
    invitation = serializers.CharField(
        max_length=64,
        allow_blank=True,
        default="",
        help_text="The single-use code, where sign-up is by invitation.",
    )
    token_name = serializers.CharField(
        max_length=100,
        allow_blank=True,
        default="",
        help_text="If given, an API token of this name is created and its key returned once.",
    )


class SignupResultSerializer(AccountSerializer):
    token = serializers.SerializerMethodField(
        help_text="The new API token's key (only when token_name was given); shown once."
    )

    class Meta(AccountSerializer.Meta):
        fields = [*AccountSerializer.Meta.fields, "token"]
        read_only_fields = fields

    def get_token(self, obj: User) -> str | None:
        key = self.context.get("token")
        return str(key) if key else None


class AccountUpdateSerializer(serializers.Serializer[Any]):
    display_name = serializers.CharField(max_length=DISPLAY_NAME_MAX, allow_blank=True)


class PasswordResetInputSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField()


class PasswordResetConfirmInputSerializer(serializers.Serializer[Any]):
    uid = serializers.CharField(max_length=64, help_text="From the e-mailed link.")
    token = serializers.CharField(max_length=128, help_text="From the e-mailed link.")
    new_password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=4096)


class MessageSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()
