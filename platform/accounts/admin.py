"""Sign-up policy (one row), invitations and display names, edited by staff."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from accounts.models import Invitation, Profile, SignupPolicy
from accounts.selectors import signup_policy


@admin.register(SignupPolicy)
class SignupPolicyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """A singleton: the list opens the one row's form, and the row is never deleted."""

    fields = ["mode", "updated_at"]
    readonly_fields = ["updated_at"]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        policy = signup_policy()
        return HttpResponseRedirect(reverse("admin:accounts_signuppolicy_change", args=[policy.pk]))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["code", "email", "note", "created_by", "created_at", "expires_at", "used_by"]
    list_filter = [("used_at", admin.EmptyFieldListFilter)]
    search_fields = ["code", "email", "note", "used_by__username"]
    readonly_fields = ["created_by", "created_at", "used_by", "used_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The code is generated on creation and shown to copy; it never changes afterwards.
        fields = list(self.readonly_fields)
        return [*fields, "code"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: Invitation, form: Any, change: bool) -> None:
        if not change:
            obj.created_by_id = request.user.pk
        super().save_model(request, obj, form, change)


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["user", "display_name"]
    search_fields = ["user__username", "display_name"]
    autocomplete_fields = ["user"]
