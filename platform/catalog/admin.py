"""Curation of the catalog: suites and their versions, methods, backbones, baselines.

Benchmarks and tasks come from the declarative files (`manage.py load_catalog`), so the
admin shows them read-only; suites are curated here and frozen by publishing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from catalog.models import (
    Backbone,
    Baseline,
    Benchmark,
    GoldSplit,
    ImmutableSuiteVersion,
    Method,
    Suite,
    SuiteTask,
    SuiteVersion,
    Task,
    TaskMetric,
)
from catalog.services import suite_version_create_next, suite_version_publish


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Benchmark)
class BenchmarkAdmin(ReadOnlyAdmin):
    list_display = ["key", "name", "version"]


class TaskMetricInline(admin.TabularInline):  # type: ignore[type-arg]
    model = TaskMetric
    fields = readonly_fields = ("key", "name", "higher_is_better", "group")
    extra = 0
    can_delete = False


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ["key", "benchmark", "version", "task_type", "license", "public", "is_current"]
    list_filter = ["benchmark", "task_type", "public", "is_current"]
    search_fields = ["key", "name"]
    inlines = [TaskMetricInline]


class SuiteTaskInline(admin.TabularInline):  # type: ignore[type-arg]
    model = SuiteTask
    fields = ["task", "weight", "group", "position"]
    autocomplete_fields = ["task"]
    extra = 0

    def _editable(self, obj: SuiteVersion | None) -> bool:
        return obj is None or not obj.is_published

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


@admin.register(SuiteVersion)
class SuiteVersionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["suite", "number", "status", "published_at"]
    list_filter = ["status", "suite"]
    inlines = [SuiteTaskInline]
    actions = ["publish", "create_next_version"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is not None and obj.is_published:
            return ["suite", "number", "status", "aggregation", "notes", "published_at"]
        return ["status", "published_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (obj is None or not obj.is_published) and super().has_delete_permission(request, obj)

    @admin.action(description="Publish (freeze) the selected drafts")
    def publish(self, request: HttpRequest, queryset: QuerySet[SuiteVersion]) -> None:
        for version in queryset:
            try:
                suite_version_publish(suite_version=version)
            except (ImmutableSuiteVersion, ValueError) as error:
                self.message_user(request, str(error), level=messages.ERROR)
            else:
                self.message_user(request, f"Published {version}.")

    @admin.action(description="Start a new draft version from the selected ones' suites")
    def create_next_version(self, request: HttpRequest, queryset: QuerySet[SuiteVersion]) -> None:
        for suite_id in set(queryset.values_list("suite_id", flat=True)):
            try:
                draft = suite_version_create_next(suite=Suite.objects.get(pk=suite_id))
            except ValueError as error:
                self.message_user(request, str(error), level=messages.ERROR)
            else:
                self.message_user(request, f"Created draft {draft}.")


@admin.register(Suite)
class SuiteAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "key",
        "name",
        "requires_approval",
        "daily_submission_limit",
        "total_submission_limit",
    ]
    list_filter = ["requires_approval"]
    search_fields = ["key", "name"]
    fieldsets = [
        (None, {"fields": ["key", "name", "description"]}),
        (
            "Submission rules",
            {
                "fields": [
                    "requires_approval",
                    "daily_submission_limit",
                    "total_submission_limit",
                    "count_failed_submissions",
                ]
            },
        ),
    ]


@admin.register(Method)
class MethodAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["key", "name", "executable"]
    list_filter = ["executable"]
    search_fields = ["key", "name"]


@admin.register(Backbone)
class BackboneAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["key", "name", "source", "parameter_count", "license"]
    list_filter = ["source"]
    search_fields = ["key", "name", "hub_id"]


@admin.register(Baseline)
class BaselineAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "metric", "value"]
    autocomplete_fields = ["metric"]

    def save_model(self, request: HttpRequest, obj: Baseline, form: Any, change: bool) -> None:
        if not change:
            obj.created_by_id = request.user.pk
        super().save_model(request, obj, form, change)


@admin.register(TaskMetric)
class TaskMetricAdmin(ReadOnlyAdmin):
    search_fields = ["key", "task__key"]
    list_display = ["task", "key", "higher_is_better", "group"]


class GoldSplitUploadForm(forms.ModelForm):  # type: ignore[type-arg]
    file = forms.FileField(help_text="JSONL in the hub's field format, one example per line.")
    user: Any = None  # set per request by GoldSplitAdmin.get_form

    class Meta:
        model = GoldSplit
        fields = ["task", "split"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        task, split, upload = cleaned.get("task"), cleaned.get("split"), cleaned.get("file")
        if task is not None and split and upload is not None:
            # Imported here: tracking depends on catalog, not the other way round at import.
            from tracking.rescoring import gold_split_upload
            from tracking.services import RunInputError

            try:
                self.instance = gold_split_upload(
                    task=task, split=split, content=upload.read(), uploaded_by=self.user
                )
            except RunInputError as error:
                raise forms.ValidationError(str(error)) from None
        return cleaned


@admin.register(GoldSplit)
class GoldSplitAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Private gold labels: uploaded here, used for scoring, never shown or served."""

    form = GoldSplitUploadForm
    list_display = ["task", "split", "rows", "sha256", "uploaded_by", "uploaded_at"]
    readonly_fields = ["rows", "sha256", "uploaded_by", "uploaded_at"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.user = request.user  # type: ignore[attr-defined]
        return form

    def save_model(self, request: HttpRequest, obj: GoldSplit, form: Any, change: bool) -> None:
        # gold_split_upload already stored the file and the row during validation.
        return None
