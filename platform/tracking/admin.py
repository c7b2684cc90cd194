"""Run moderation: flags, visibility, approval and withdrawal (each recorded in the run's
audit trail), and a read-only view of what runs produced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest

from tracking.models import Artifact, AuditEvent, Flag, Job, Run, RunTransition, Score
from tracking.services import (
    RunConflict,
    RunInputError,
    RunPermissionDenied,
    run_review,
    run_update,
    run_withdraw,
)


class ScoreInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Score
    fields = readonly_fields = ("metric", "value", "spread")
    extra = 0
    can_delete = False


class TransitionInline(admin.TabularInline):  # type: ignore[type-arg]
    model = RunTransition
    fields = readonly_fields = ("at", "from_status", "to_status", "reason")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditEventInline(admin.TabularInline):  # type: ignore[type-arg]
    model = AuditEvent
    fields = readonly_fields = ("at", "actor_username", "action", "changes", "reason")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class FlagInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Flag
    fields = ["kind", "reason", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]
    extra = 0


RUN_READONLY_FIELDS = (
    "uuid",
    "owner",
    "method",
    "backbone",
    "task",
    "suite_version",
    "config",
    "config_hash",
    "seed",
    "status",
    "status_reason",
    "provenance_tier",
    "spec",
    "provenance",
    "code_version",
    "review_status",
    "withdrawn_at",
    "created_at",
    "started_at",
    "finished_at",
)


def _staff(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # the admin only lets staff users in
    return request.user


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "uuid",
        "method",
        "backbone",
        "task",
        "seed",
        "status",
        "visibility",
        "review_status",
        "withdrawn_at",
        "owner",
    ]
    list_filter = [
        "status",
        "visibility",
        "review_status",
        ("withdrawn_at", admin.EmptyFieldListFilter),
        "provenance_tier",
        "method",
        "backbone",
        "task__benchmark",
    ]
    search_fields = ["uuid", "description", "owner__username"]
    list_select_related = ["method", "backbone", "task", "task__benchmark", "owner"]
    readonly_fields = RUN_READONLY_FIELDS
    fields = (*RUN_READONLY_FIELDS, "visibility", "description", "tags")
    inlines = [ScoreInline, FlagInline, TransitionInline, AuditEventInline]
    actions = ["approve", "reject", "withdraw"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A withdrawn run is kept as it is.
        if obj is not None and obj.withdrawn_at is not None:
            return self.fields
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Run, form: Any, change: bool) -> None:
        # Through the service, so the edit is recorded in the run's audit trail.
        data = form.cleaned_data
        try:
            run_update(
                run_id=obj.pk,
                actor=_staff(request),
                description=data.get("description"),
                visibility=data.get("visibility"),
                tags=[tag.name for tag in data["tags"]] if "tags" in data else None,
            )
        except (RunConflict, RunInputError, RunPermissionDenied) as error:
            self.message_user(request, str(error), level=messages.ERROR)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # The tags were set by run_update in save_model; only the inlines are saved here.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for instance in formset.save(commit=False):
            if isinstance(instance, Flag) and instance.created_by_id is None:
                instance.created_by_id = request.user.pk
            instance.save()
        formset.save_m2m()
        for obj in formset.deleted_objects:
            obj.delete()

    def _each(
        self, request: HttpRequest, queryset: QuerySet[Run], act: Callable[[Run], object], done: str
    ) -> None:
        for run in queryset:
            try:
                act(run)
            except (RunConflict, RunPermissionDenied) as error:
                self.message_user(request, f"{run}: {error}", level=messages.ERROR)
            else:
                self.message_user(request, f"{run}: {done}.")

    @admin.action(description="Approve the selected runs for public leaderboards")
    def approve(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        staff = _staff(request)
        self._each(
            request,
            queryset,
            lambda run: run_review(run_id=run.pk, actor=staff, approve=True),
            "approved",
        )

    @admin.action(description="Reject the selected runs from public leaderboards")
    def reject(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        staff = _staff(request)
        self._each(
            request,
            queryset,
            lambda run: run_review(run_id=run.pk, actor=staff, approve=False),
            "rejected",
        )

    @admin.action(description="Withdraw the selected runs from every leaderboard")
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        staff = _staff(request)
        self._each(
            request,
            queryset,
            lambda run: run_withdraw(run_id=run.pk, actor=staff, reason="withdrawn by staff"),
            "withdrawn",
        )


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["at", "actor_username", "action", "run"]
    list_filter = ["action"]
    search_fields = ["actor_username", "run__uuid", "reason"]
    readonly_fields = ["run", "actor", "actor_username", "action", "changes", "reason", "at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["run", "queue", "worker", "attempts", "max_attempts", "heartbeat_at"]
    readonly_fields = ["run", "worker", "attempts", "heartbeat_at", "progress", "log_tail"]


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "run", "kind", "size_bytes", "sha256"]
    readonly_fields = ["run", "kind", "name", "uri", "size_bytes", "sha256", "created_at"]
