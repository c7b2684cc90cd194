"""Run moderation: flags, visibility, and a read-only view of what runs produced."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tracking.models import Artifact, Flag, Job, Run, RunTransition, Score


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
    "created_at",
    "started_at",
    "finished_at",
)


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["uuid", "method", "backbone", "task", "seed", "status", "visibility", "owner"]
    list_filter = [
        "status",
        "visibility",
        "provenance_tier",
        "method",
        "backbone",
        "task__benchmark",
    ]
    search_fields = ["uuid", "description", "owner__username"]
    list_select_related = ["method", "backbone", "task", "task__benchmark", "owner"]
    readonly_fields = RUN_READONLY_FIELDS
    fields = (*RUN_READONLY_FIELDS, "visibility", "description", "tags")
    inlines = [ScoreInline, FlagInline, TransitionInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for instance in formset.save(commit=False):
            if isinstance(instance, Flag) and instance.created_by_id is None:
                instance.created_by_id = request.user.pk
            instance.save()
        formset.save_m2m()
        for obj in formset.deleted_objects:
            obj.delete()


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["run", "queue", "worker", "attempts", "max_attempts", "heartbeat_at"]
    readonly_fields = ["run", "worker", "attempts", "heartbeat_at", "progress", "log_tail"]


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "run", "kind", "size_bytes", "sha256"]
    readonly_fields = ["run", "kind", "name", "uri", "size_bytes", "sha256", "created_at"]
