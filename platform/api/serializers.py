"""Request and response shapes of the API. Serializers only adapt: they parse and check
input types and render models; services and selectors do the work."""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.models import ApiToken
from api.selectors import (
    RUN_ORDERINGS,
    Viewer,
    job_details_visible,
    suite_published_latest,
    task_by_path,
)
from catalog.models import (
    Backbone,
    Benchmark,
    Method,
    Suite,
    SuiteTask,
    SuiteVersion,
    Task,
    TaskMetric,
)
from catalog.selectors import benchmark_tasks, suite_version_items
from dashboard.selectors import SuiteBoard, leaderboard_rules
from leaderboard.predictions import PREDICTION_FORMATS
from leaderboard.ranking import MISSING_POLICIES
from tracking.models import Job, Run, RunTransition, Score, Tag, Visibility
from tracking.selectors import JobQueue
from tracking.status import RunStatus

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


# --- Tokens ------------------------------------------------------------------------------


class TokenSerializer(serializers.ModelSerializer[ApiToken]):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class TokenCreatedSerializer(TokenSerializer):
    key = serializers.SerializerMethodField(help_text="The token's key, shown only this once.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "key"]
        read_only_fields = fields

    def get_key(self, obj: ApiToken) -> str:
        return str(self.context["key"])


class TokenCreateInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)


# --- Catalog -----------------------------------------------------------------------------


class MetricSerializer(serializers.ModelSerializer[TaskMetric]):
    class Meta:
        model = TaskMetric
        fields = ["key", "name", "higher_is_better", "group"]


class TaskSerializer(serializers.ModelSerializer[Task]):
    benchmark = serializers.CharField(source="benchmark.key", read_only=True)
    metrics = MetricSerializer(many=True, read_only=True)

    class Meta:
        model = Task
        fields = [
            "benchmark",
            "key",
            "version",
            "name",
            "description",
            "task_type",
            "splits",
            "labels",
            "primary_metric",
            "metrics",
            "in_suite_score",
            "public",
            "license",
            "url",
            "dataset_hub_id",
            "dataset_config",
            "dataset_revision",
        ]


class BenchmarkSerializer(serializers.ModelSerializer[Benchmark]):
    task_count = serializers.IntegerField(read_only=True, help_text="Current tasks.")

    class Meta:
        model = Benchmark
        fields = ["key", "name", "description", "url", "version", "task_count"]


class BenchmarkDetailSerializer(BenchmarkSerializer):
    tasks = serializers.SerializerMethodField()

    class Meta(BenchmarkSerializer.Meta):
        fields = [*BenchmarkSerializer.Meta.fields, "tasks"]

    @extend_schema_field(TaskSerializer(many=True))
    def get_tasks(self, obj: Benchmark) -> Any:
        return TaskSerializer(benchmark_tasks(benchmark=obj), many=True).data


class SuiteVersionSummarySerializer(serializers.ModelSerializer[SuiteVersion]):
    task_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = SuiteVersion
        fields = ["number", "published_at", "task_count"]


class SuiteSerializer(serializers.ModelSerializer[Suite]):
    published_versions = serializers.SerializerMethodField(help_text="Newest first.")

    class Meta:
        model = Suite
        fields = ["key", "name", "description", "published_versions"]

    @extend_schema_field(SuiteVersionSummarySerializer(many=True))
    def get_published_versions(self, obj: Suite) -> Any:
        # suite_list() prefetches them with a task count; a GROUP BY query drops
        # Meta.ordering, so the order is set here.
        versions = sorted(getattr(obj, "published_versions", []), key=lambda v: -v.number)
        return SuiteVersionSummarySerializer(versions, many=True).data


class SuiteTaskSerializer(serializers.ModelSerializer[SuiteTask]):
    benchmark = serializers.CharField(source="task.benchmark.key", read_only=True)
    task = serializers.CharField(source="task.key", read_only=True)
    task_version = serializers.IntegerField(source="task.version", read_only=True)
    name = serializers.CharField(source="task.name", read_only=True)
    primary_metric = serializers.CharField(source="task.primary_metric", read_only=True)
    metrics = MetricSerializer(source="task.metrics", many=True, read_only=True)

    class Meta:
        model = SuiteTask
        fields = [
            "benchmark",
            "task",
            "task_version",
            "name",
            "primary_metric",
            "metrics",
            "weight",
            "group",
            "position",
        ]


class SuiteVersionSerializer(serializers.ModelSerializer[SuiteVersion]):
    tasks = serializers.SerializerMethodField()

    class Meta:
        model = SuiteVersion
        # Only published versions are served, so their status says nothing.
        fields = ["number", "published_at", "aggregation", "notes", "tasks"]

    @extend_schema_field(SuiteTaskSerializer(many=True))
    def get_tasks(self, obj: SuiteVersion) -> Any:
        return SuiteTaskSerializer(suite_version_items(suite_version=obj), many=True).data


class SuiteDetailSerializer(SuiteSerializer):
    latest_version = serializers.SerializerMethodField(
        help_text="The latest published version; null while none is published."
    )

    class Meta(SuiteSerializer.Meta):
        fields = [*SuiteSerializer.Meta.fields, "latest_version"]

    @extend_schema_field(SuiteVersionSerializer(allow_null=True))
    def get_latest_version(self, obj: Suite) -> Any:
        version = suite_published_latest(key=obj.key)
        return SuiteVersionSerializer(version).data if version is not None else None


class MethodSerializer(serializers.ModelSerializer[Method]):
    class Meta:
        model = Method
        fields = ["key", "name", "description", "paper_url", "hyperparameter_schema", "executable"]


class BackboneSerializer(serializers.ModelSerializer[Backbone]):
    class Meta:
        model = Backbone
        fields = [
            "key",
            "name",
            "source",
            "hub_id",
            "revision",
            "package",
            "parameter_count",
            "license",
        ]


# --- Runs --------------------------------------------------------------------------------


class TaskRefSerializer(serializers.ModelSerializer[Task]):
    benchmark = serializers.CharField(source="benchmark.key", read_only=True)

    class Meta:
        model = Task
        fields = ["benchmark", "key", "version"]


class ScoreSerializer(serializers.ModelSerializer[Score]):
    metric = serializers.CharField(source="metric.key", read_only=True)
    name = serializers.CharField(source="metric.name", read_only=True)
    higher_is_better = serializers.BooleanField(source="metric.higher_is_better", read_only=True)

    class Meta:
        model = Score
        fields = ["metric", "name", "higher_is_better", "value", "spread"]


class TransitionSerializer(serializers.ModelSerializer[RunTransition]):
    # A plain string, so OpenAPI names the run-status enum once (after Run.status).
    to_status = serializers.CharField(read_only=True)

    class Meta:
        model = RunTransition
        fields = ["from_status", "to_status", "reason", "at"]


class RunSerializer(serializers.ModelSerializer[Run]):
    owner = serializers.CharField(source="owner.username", read_only=True)
    method = serializers.CharField(source="method.key", read_only=True)
    backbone = serializers.CharField(source="backbone.key", read_only=True)
    task = TaskRefSerializer(read_only=True)
    tags = serializers.ManyRelatedField(
        child_relation=serializers.SlugRelatedField[Tag](read_only=True, slug_field="name"),
        read_only=True,
    )
    scores = ScoreSerializer(many=True, read_only=True)

    class Meta:
        model = Run
        fields = [
            "uuid",
            "owner",
            "method",
            "backbone",
            "task",
            "config",
            "config_hash",
            "seed",
            "status",
            "status_reason",
            "visibility",
            "provenance_tier",
            "description",
            "tags",
            "scores",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class RunDetailSerializer(RunSerializer):
    transitions = TransitionSerializer(many=True, read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [
            *RunSerializer.Meta.fields,
            "transitions",
            "provenance",
            "system",
            "extra_scores",
            "code_version",
        ]
        read_only_fields = fields


class TaskPathField(serializers.CharField):
    """A task as "benchmark/key", resolved to its current version."""

    def to_internal_value(self, data: Any) -> Task:  # type: ignore[override]
        path = super().to_internal_value(data)
        if path.count("/") != 1:
            raise serializers.ValidationError(f"Give the task as 'benchmark/key', not {path!r}.")
        task = task_by_path(path=path)
        if task is None:
            raise serializers.ValidationError(f"No task {path!r} in the catalog.")
        return task


def _key_field(model: type[Model], **kwargs: Any) -> serializers.SlugRelatedField[Any]:
    return serializers.SlugRelatedField(
        slug_field="key", queryset=model._default_manager.all(), **kwargs
    )


def _config_dict(value: Any) -> None:
    if not isinstance(value, dict):
        raise serializers.ValidationError("Give the config as a JSON object.")


class RunCreateInputSerializer(serializers.Serializer[Any]):
    method = _key_field(Method)
    backbone = _key_field(Backbone)
    task = TaskPathField(help_text='"benchmark/key"; the current task version is used.')
    config = serializers.JSONField(
        default=dict, validators=[_config_dict], help_text="Hyperparameters, seed excluded."
    )
    seed = serializers.IntegerField(min_value=BIGINT_MIN, max_value=BIGINT_MAX)
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PUBLIC)
    tags = serializers.ListField(
        child=serializers.SlugField(max_length=64), default=list, max_length=50
    )
    description = serializers.CharField(allow_blank=True, default="", max_length=10_000)
    scores = serializers.DictField(
        child=serializers.FloatField(),
        required=False,
        help_text="Self-reported scores, {metric key: value}. Or give predictions.",
    )
    predictions = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text="Predictions file content, scored by Podium against its gold labels.",
    )
    split = serializers.CharField(required=False, help_text="The split the predictions are for.")
    format = serializers.ChoiceField(choices=PREDICTION_FORMATS, default="auto")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_scores, has_predictions = "scores" in attrs, "predictions" in attrs
        if has_scores and has_predictions:
            raise serializers.ValidationError(
                {"predictions": ["Give either scores or predictions, not both."]}
            )
        if not has_scores and not has_predictions:
            raise serializers.ValidationError(
                {"scores": ["Give scores, or predictions with their split."]}
            )
        if has_predictions and "split" not in attrs:
            raise serializers.ValidationError({"split": ["Required with predictions."]})
        if has_scores and "split" in attrs:
            raise serializers.ValidationError({"split": ["Only given with predictions."]})
        return attrs


class RunListQuerySerializer(serializers.Serializer[Any]):
    """Filters of GET /runs/: each is a comma-separated list of alternatives."""

    task = serializers.CharField(required=False, help_text="benchmark/key[,benchmark/key...]")
    benchmark = serializers.CharField(required=False)
    method = serializers.CharField(required=False)
    backbone = serializers.CharField(required=False)
    status = serializers.CharField(required=False, help_text=", ".join(RunStatus.values))
    owner = serializers.CharField(required=False, help_text="Usernames.")
    tag = serializers.CharField(required=False)
    ordering = serializers.ChoiceField(
        choices=[*RUN_ORDERINGS, *(f"-{o}" for o in RUN_ORDERINGS)],
        default="-created_at",
        required=False,
    )

    @staticmethod
    def split(value: str) -> list[str]:
        return [part.strip() for part in value.split(",") if part.strip()]

    def validate_task(self, value: str) -> list[tuple[str, str]]:
        pairs = []
        for path in self.split(value):
            benchmark, slash, key = path.partition("/")
            if not slash or not benchmark or not key or "/" in key:
                raise serializers.ValidationError(f"Give tasks as 'benchmark/key', not {path!r}.")
            pairs.append((benchmark, key))
        return pairs

    def validate_status(self, value: str) -> list[str]:
        statuses = self.split(value)
        unknown = sorted(set(statuses) - set(RunStatus.values))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown status {', '.join(unknown)}; one of {', '.join(RunStatus.values)}."
            )
        return statuses


# --- Jobs --------------------------------------------------------------------------------


class SuiteKeyField(serializers.CharField):
    """A suite key, resolved to its latest published version."""

    def to_internal_value(self, data: Any) -> SuiteVersion:  # type: ignore[override]
        key = super().to_internal_value(data)
        version = suite_published_latest(key=key)
        if version is None:
            raise serializers.ValidationError(f"No published suite {key!r}.")
        return version


class JobRequestInputSerializer(serializers.Serializer[Any]):
    method = _key_field(Method)
    backbone = _key_field(Backbone)
    task = TaskPathField(required=False, help_text='"benchmark/key"; give task or suite.')
    suite = SuiteKeyField(
        required=False, help_text="A suite key: one run per task of its latest version."
    )
    config = serializers.JSONField(default=dict, validators=[_config_dict])
    seeds = serializers.ListField(
        child=serializers.IntegerField(min_value=BIGINT_MIN, max_value=BIGINT_MAX),
        min_length=1,
        max_length=100,
    )
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PUBLIC)
    eval_split = serializers.CharField(required=False, default="", allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("task" in attrs) == ("suite" in attrs):
            raise serializers.ValidationError({"task": ["Give exactly one of task or suite."]})
        return attrs


class JobRequestResultSerializer(serializers.Serializer[Any]):
    runs = RunSerializer(many=True, read_only=True)


class QueueEntrySerializer(serializers.Serializer[Any]):
    """A job in the queue. For another user's private run only method, task, status and
    position are given; the other fields are null."""

    DETAILS = (
        "run",
        "owner",
        "backbone",
        "seed",
        "worker",
        "heartbeat_at",
        "progress",
        "attempts",
        "max_attempts",
        "status_reason",
    )

    redacted = serializers.BooleanField()
    position = serializers.IntegerField(allow_null=True, help_text="1 = next; queued jobs only.")
    estimated_start = serializers.DateTimeField(allow_null=True)
    status = serializers.CharField()
    method = serializers.CharField()
    task = serializers.CharField(help_text="benchmark/key")
    run = serializers.UUIDField(allow_null=True)
    owner = serializers.CharField(allow_null=True)
    backbone = serializers.CharField(allow_null=True)
    seed = serializers.IntegerField(allow_null=True)
    worker = serializers.CharField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    progress = serializers.JSONField(allow_null=True)
    attempts = serializers.IntegerField(allow_null=True)
    max_attempts = serializers.IntegerField(allow_null=True)
    status_reason = serializers.CharField(allow_null=True)


class QueueSerializer(serializers.Serializer[Any]):
    active_workers = serializers.IntegerField()
    typical_duration_s = serializers.FloatField(allow_null=True)
    running = QueueEntrySerializer(many=True)
    queued = QueueEntrySerializer(many=True)
    failed = QueueEntrySerializer(many=True)


# --- Leaderboards ------------------------------------------------------------------------


class LeaderboardQuerySerializer(serializers.Serializer[Any]):
    rule = serializers.CharField(required=False, default="official")
    missing = serializers.CharField(required=False, default="", allow_blank=True)
    # "personal" adds the caller's own private runs; computed separately from the public
    # board, so a private run never moves a public rank.
    view = serializers.ChoiceField(choices=["public", "personal"], required=False, default="public")

    def validate_rule(self, value: str) -> str:
        if value not in leaderboard_rules():
            raise serializers.ValidationError(
                f"Unknown rule {value!r}; one of {', '.join(leaderboard_rules())}."
            )
        return value

    def validate_missing(self, value: str) -> str:
        if value and value not in MISSING_POLICIES:
            raise serializers.ValidationError(
                f"Unknown missing-score policy {value!r}; one of {', '.join(MISSING_POLICIES)}."
            )
        return value


class LeaderboardColumnSerializer(serializers.Serializer[Any]):
    task = serializers.CharField(help_text="benchmark/key")
    task_version = serializers.IntegerField()
    metric = serializers.CharField()
    metric_name = serializers.CharField()
    higher_is_better = serializers.BooleanField()
    weight = serializers.FloatField()


class LeaderboardCellSerializer(serializers.Serializer[Any]):
    mean = serializers.FloatField()
    std = serializers.FloatField(allow_null=True, help_text="Sample std over seeds.")
    count = serializers.IntegerField(help_text="Seeds.")


class OfficialScoreSerializer(serializers.Serializer[Any]):
    benchmark = serializers.CharField()
    value = serializers.FloatField(allow_null=True, help_text="0-100; null unless complete.")
    complete = serializers.BooleanField()
    missing = serializers.ListField(child=serializers.CharField())


class LeaderboardRowSerializer(serializers.Serializer[Any]):
    system = serializers.CharField()
    method = serializers.CharField()
    method_name = serializers.CharField()
    backbone = serializers.CharField()
    backbone_name = serializers.CharField()
    config_hash = serializers.CharField()
    config = serializers.JSONField()
    rank = serializers.IntegerField(allow_null=True)
    rule_score = serializers.FloatField(allow_null=True)
    official = OfficialScoreSerializer(allow_null=True)
    complete = serializers.BooleanField()
    cells = serializers.ListField(
        child=LeaderboardCellSerializer(allow_null=True),
        help_text="One per column, in column order; null where the system has no score.",
    )
    provenance_tiers = serializers.ListField(child=serializers.CharField())


class LeaderboardSerializer(serializers.Serializer[Any]):
    suite = serializers.CharField()
    version = serializers.IntegerField()
    rule = serializers.CharField()
    missing = serializers.CharField()
    official_score_name = serializers.CharField()
    winners = serializers.ListField(child=serializers.CharField())
    error = serializers.CharField(help_text="Why the rule could not rank this table, if so.")
    columns = LeaderboardColumnSerializer(many=True)
    rows = LeaderboardRowSerializer(many=True)


def leaderboard_data(*, board: SuiteBoard, suite_version: SuiteVersion) -> dict[str, Any]:
    """A SuiteBoard in the shape of LeaderboardSerializer."""
    return {
        "suite": suite_version.suite.key,
        "version": suite_version.number,
        "rule": board.rule,
        "missing": board.missing,
        "official_score_name": board.official_score_name,
        "winners": list(board.winners),
        "error": board.error,
        "columns": [
            {
                "task": f"{column.task.benchmark.key}/{column.task.key}",
                "task_version": column.task.version,
                "metric": column.metric_key,
                "metric_name": column.metric_name,
                "higher_is_better": column.higher_is_better,
                "weight": column.weight,
            }
            for column in board.columns
        ],
        "rows": [
            {
                "system": row.system.label,
                "method": row.system.method.key,
                "method_name": row.system.method.name,
                "backbone": row.system.backbone.key,
                "backbone_name": row.system.backbone.name,
                "config_hash": row.system.config_hash,
                "config": row.system.config,
                "rank": row.rank,
                "rule_score": row.rule_score,
                "official": row.official.to_dict() if row.official is not None else None,
                "complete": row.complete,
                "cells": [
                    None
                    if cell is None
                    else {"mean": cell.mean, "std": cell.std, "count": cell.count}
                    for cell in row.cells
                ],
                "provenance_tiers": sorted(row.system.provenance_tiers),
            }
            for row in board.rows
        ],
    }


def _queue_entry(
    *, job: Job, viewer: Viewer, position: int | None = None, estimated_start: Any = None
) -> dict[str, Any]:
    run = job.run
    entry: dict[str, Any] = {
        "redacted": True,
        "position": position,
        "estimated_start": estimated_start,
        "status": run.status,
        "method": run.method.key,
        "task": f"{run.task.benchmark.key}/{run.task.key}",
    }
    hidden = dict.fromkeys(QueueEntrySerializer.DETAILS)
    if not job_details_visible(job=job, viewer=viewer):
        return {**entry, **hidden}
    return {
        **entry,
        "redacted": False,
        "run": run.uuid,
        "owner": run.owner.username,
        "backbone": run.backbone.key,
        "seed": run.seed,
        "worker": job.worker,
        "heartbeat_at": job.heartbeat_at,
        "progress": job.progress,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "status_reason": run.status_reason,
    }


def queue_data(*, queue: JobQueue, viewer: Viewer) -> dict[str, Any]:
    """The job queue in the shape of QueueSerializer, without other users' private details."""
    return {
        "active_workers": queue.active_workers,
        "typical_duration_s": (
            queue.typical_duration.total_seconds() if queue.typical_duration else None
        ),
        "running": [_queue_entry(job=job, viewer=viewer) for job in queue.running],
        "queued": [
            _queue_entry(
                job=item.job,
                viewer=viewer,
                position=item.position,
                estimated_start=item.estimated_start,
            )
            for item in queue.queued
        ],
        "failed": [_queue_entry(job=job, viewer=viewer) for job in queue.failed],
    }


class DetailSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()
