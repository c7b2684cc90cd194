"""Request and response shapes of the API. Serializers only adapt: they parse and check
input types and render models; services and selectors do the work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.validators import ProhibitNullCharactersValidator
from django.db.models import Model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from accounts.selectors import display_name
from api.models import ApiToken
from api.selectors import (
    RUN_ORDERINGS,
    TaskBoard,
    Viewer,
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
from dashboard.selectors import (
    MAX_PAGE_SIZE,
    OFFICIAL,
    PAGE_SIZE,
    BoardPage,
    SuiteBoard,
    board_page,
    board_ranks,
    leaderboard_rules,
)
from leaderboard.predictions import PREDICTION_FORMATS
from leaderboard.ranking import MISSING_POLICIES
from tracking.jobs import MAX_GPUS_PER_JOB, MAX_TIME_LIMIT_S
from tracking.models import (
    AuditEvent,
    Job,
    LeaderboardSnapshot,
    Run,
    RunTransition,
    Score,
    Tag,
    Visibility,
)
from tracking.selectors import JobQueue, SeedAggregate, SystemScores, job_details_visible
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
    owner_name = serializers.SerializerMethodField(
        help_text="The owner's display name, or their username where they set none."
    )
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
            "owner_name",
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
            "withdrawn_at",
            "review_status",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_owner_name(self, obj: Run) -> str:
        return display_name(user=obj.owner)


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


class KeyField(serializers.SlugRelatedField[Any]):
    """A catalog object by its key. Text the database cannot take as a query parameter (NUL,
    lone surrogates) is refused as CharField refuses it, rather than failing the query."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            ProhibitNullCharactersValidator()(data)
            ProhibitSurrogateCharactersValidator()(data)
        return super().to_internal_value(data)


def _key_field(model: type[Model], **kwargs: Any) -> serializers.SlugRelatedField[Any]:
    return KeyField(slug_field="key", queryset=model._default_manager.all(), **kwargs)


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
    """Filters of GET /runs/: the list filters each take comma-separated alternatives."""

    task = serializers.CharField(required=False, help_text="benchmark/key[,benchmark/key...]")
    benchmark = serializers.CharField(required=False)
    suite = serializers.CharField(
        required=False, help_text="Suite keys: runs on a task of any published version."
    )
    method = serializers.CharField(required=False)
    backbone = serializers.CharField(required=False)
    status = serializers.CharField(required=False, help_text=", ".join(RunStatus.values))
    owner = serializers.CharField(required=False, help_text="Usernames.")
    tag = serializers.CharField(required=False)
    created_after = serializers.DateTimeField(
        required=False, help_text="ISO 8601; runs created at or after it (UTC if no offset)."
    )
    created_before = serializers.DateTimeField(
        required=False, help_text="ISO 8601; runs created before it (UTC if no offset)."
    )
    search = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Words that must each appear in the method, backbone, description or a tag.",
    )
    ordering = serializers.ChoiceField(
        choices=[*RUN_ORDERINGS, *(f"-{o}" for o in RUN_ORDERINGS)],
        default="-created_at",
        required=False,
        help_text="A field to sort by; a leading '-' sorts descending.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after is not None and before is not None and after >= before:
            raise serializers.ValidationError(
                {"created_before": ["Give a time later than created_after."]}
            )
        return attrs

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
    gpus = serializers.IntegerField(
        min_value=0,
        max_value=MAX_GPUS_PER_JOB,
        default=0,
        help_text="GPUs per job; more than one runs data-parallel under torchrun on one worker.",
    )
    time_limit_s = serializers.IntegerField(
        min_value=60,
        max_value=MAX_TIME_LIMIT_S,
        required=False,
        help_text="Stop and fail the job after this many seconds (default 6 hours).",
    )

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
        "owner_name",
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
    owner_name = serializers.CharField(allow_null=True)
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


class SuiteLeaderboardQuerySerializer(LeaderboardQuerySerializer):
    page = serializers.IntegerField(
        required=False, default=1, min_value=1, help_text="Page of rows, from 1."
    )
    page_size = serializers.IntegerField(
        required=False,
        default=PAGE_SIZE,
        min_value=1,
        max_value=MAX_PAGE_SIZE,
        help_text=f"Rows a page, at most {MAX_PAGE_SIZE}. The CSV and LaTeX exports "
        "always hold every row.",
    )


class LeaderboardColumnSerializer(serializers.Serializer[Any]):
    task = serializers.CharField(help_text="benchmark/key")
    task_name = serializers.CharField()
    task_version = serializers.IntegerField()
    metric = serializers.CharField()
    metric_name = serializers.CharField()
    higher_is_better = serializers.BooleanField()
    weight = serializers.FloatField()


class LeaderboardCellSerializer(serializers.Serializer[Any]):
    mean = serializers.FloatField()
    std = serializers.FloatField(allow_null=True, help_text="Sample std over seeds.")
    count = serializers.IntegerField(help_text="Seeds.")


@extend_schema_field(LeaderboardCellSerializer(allow_null=True))
class LeaderboardCellField(serializers.Field):  # type: ignore[type-arg]
    """A cell or null. As a ListField's child a serializer loses its nullability in the
    schema; a field documented by that serializer keeps it."""

    def to_representation(self, value: Any) -> Any:
        return None if value is None else LeaderboardCellSerializer(value).data


class OfficialScoreSerializer(serializers.Serializer[Any]):
    benchmark = serializers.CharField()
    value = serializers.FloatField(allow_null=True, help_text="0-100; null unless complete.")
    complete = serializers.BooleanField()
    missing = serializers.ListField(child=serializers.CharField())


class SystemRowSerializer(serializers.Serializer[Any]):
    """What every leaderboard row says of its system, and its place under the rule."""

    system = serializers.CharField()
    method = serializers.CharField()
    method_name = serializers.CharField()
    backbone = serializers.CharField()
    backbone_name = serializers.CharField()
    config_hash = serializers.CharField()
    config = serializers.JSONField()
    rank = serializers.IntegerField(allow_null=True)
    rule_score = serializers.FloatField(allow_null=True)


class LeaderboardRowSerializer(SystemRowSerializer):
    official = OfficialScoreSerializer(allow_null=True)
    complete = serializers.BooleanField()
    cells = serializers.ListField(
        child=LeaderboardCellField(allow_null=True),
        help_text="One per column, in column order; null where the system has no score.",
    )
    provenance_tiers = serializers.ListField(child=serializers.CharField())


class LeaderboardSerializer(serializers.Serializer[Any]):
    suite = serializers.CharField()
    suite_name = serializers.CharField()
    version = serializers.IntegerField()
    rule = serializers.CharField()
    missing = serializers.CharField()
    official_score_name = serializers.CharField()
    winners = serializers.ListField(child=serializers.CharField())
    error = serializers.CharField(help_text="Why the rule could not rank this table, if so.")
    columns = LeaderboardColumnSerializer(many=True)
    count = serializers.IntegerField(help_text="Rows over all pages.")
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    next = serializers.URLField(allow_null=True, help_text="The next page; null on the last.")
    previous = serializers.URLField(
        allow_null=True, help_text="The previous page; null on the first."
    )
    rows = LeaderboardRowSerializer(
        many=True, help_text="This page's rows; ranks are over the whole board."
    )


def system_data(system: SystemScores) -> dict[str, Any]:
    """A system's fields of a leaderboard row (SystemRowSerializer)."""
    return {
        "system": system.label,
        "method": system.method.key,
        "method_name": system.method.name,
        "backbone": system.backbone.key,
        "backbone_name": system.backbone.name,
        "config_hash": system.config_hash,
        "config": system.config,
    }


def cells_data(cells: Sequence[SeedAggregate | None]) -> list[dict[str, Any] | None]:
    """A row's cells: the seed mean, spread and count of each column (None: no score)."""
    return [
        None if cell is None else {"mean": cell.mean, "std": cell.std, "count": cell.count}
        for cell in cells
    ]


def leaderboard_data(
    *,
    board: SuiteBoard,
    suite_version: SuiteVersion,
    page: BoardPage | None = None,
    links: tuple[str | None, str | None] = (None, None),
) -> dict[str, Any]:
    """A SuiteBoard in the shape of LeaderboardSerializer: one page of its rows (`page`;
    None: every row) with the (next, previous) page `links`. Under the official rule, rows
    are ranked by their official score ("1224") over the whole board; a row without one
    is unranked."""
    page = page or board_page(rows=board.rows, number=1, size=max(1, len(board.rows)))
    official_ranks = board_ranks(board=board) if board.rule == OFFICIAL else {}
    return {
        "suite": suite_version.suite.key,
        "suite_name": suite_version.suite.name,
        "version": suite_version.number,
        "rule": board.rule,
        "missing": board.missing,
        "official_score_name": board.official_score_name,
        "winners": list(board.winners),
        "error": board.error,
        "columns": [
            {
                "task": f"{column.task.benchmark.key}/{column.task.key}",
                "task_name": column.task.name,
                "task_version": column.task.version,
                "metric": column.metric_key,
                "metric_name": column.metric_name,
                "higher_is_better": column.higher_is_better,
                "weight": column.weight,
            }
            for column in board.columns
        ],
        "count": page.count,
        "page": page.number,
        "page_size": page.size,
        "next": links[0],
        "previous": links[1],
        "rows": [
            {
                **system_data(row.system),
                "rank": official_ranks.get(row.system.label)
                if board.rule == OFFICIAL
                else row.rank,
                "rule_score": row.rule_score,
                "official": row.official.to_dict() if row.official is not None else None,
                "complete": row.complete,
                "cells": cells_data(row.cells),
                "provenance_tiers": sorted(row.system.provenance_tiers),
            }
            for row in page.rows
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
        "owner_name": display_name(user=run.owner),
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
    # DRF takes declared fields off the class, so Serializer.errors stays the property.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        help_text='The same message under the field it is about, e.g. {"non_field_errors": '
        '["..."]} or {"Idempotency-Key": ["..."]}.',
    )


# --- Owner edits, withdrawal, review, audit -------------------------------------------------


class RunUpdateInputSerializer(serializers.Serializer[Any]):
    """PATCH /runs/<uuid>/: give any of the fields; the others stay as they are."""

    description = serializers.CharField(allow_blank=True, max_length=10_000, required=False)
    tags = serializers.ListField(
        child=serializers.SlugField(max_length=64),
        max_length=50,
        required=False,
        help_text="The run's whole tag list (replaces the current one).",
    )
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError(
                "Give at least one of description, tags or visibility."
            )
        return attrs


class ReasonInputSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(
        allow_blank=True, default="", max_length=2000, help_text="Kept in the audit trail."
    )


class RunReviewInputSerializer(ReasonInputSerializer):
    decision = serializers.ChoiceField(choices=["approve", "reject"])


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.CharField(source="actor_username", read_only=True)
    changes = serializers.JSONField(
        read_only=True, help_text='{field: {"before": value, "after": value}}'
    )

    class Meta:
        model = AuditEvent
        fields = ["at", "actor", "action", "changes", "reason"]
        read_only_fields = fields


# --- Task leaderboards and exports ---------------------------------------------------------


class TaskLeaderboardQuerySerializer(LeaderboardQuerySerializer):
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="A task version; the current one by default."
    )


class TaskLeaderboardRowSerializer(SystemRowSerializer):
    task_score = serializers.FloatField(
        allow_null=True,
        help_text="0-100: the benchmark's task score (paired metrics averaged); null when a "
        "metric it needs is missing.",
    )
    cells = serializers.ListField(
        child=LeaderboardCellField(allow_null=True),
        help_text="One per column (metric), in column order; null where there is no score.",
    )
    provenance_tiers = serializers.ListField(child=serializers.CharField())


class TaskLeaderboardSerializer(serializers.Serializer[Any]):
    task = serializers.CharField(help_text="benchmark/key")
    version = serializers.IntegerField()
    name = serializers.CharField()
    rule = serializers.CharField()
    missing = serializers.CharField()
    winners = serializers.ListField(child=serializers.CharField())
    error = serializers.CharField(help_text="Why the rule could not rank this table, if so.")
    columns = LeaderboardColumnSerializer(many=True)
    rows = TaskLeaderboardRowSerializer(many=True)


def task_leaderboard_data(*, board: TaskBoard) -> dict[str, Any]:
    """A TaskBoard in the shape of TaskLeaderboardSerializer."""
    task = board.task
    path = f"{task.benchmark.key}/{task.key}"
    return {
        "task": path,
        "version": task.version,
        "name": task.name,
        "rule": board.rule,
        "missing": board.missing,
        "winners": list(board.winners),
        "error": board.error,
        "columns": [
            {
                "task": path,
                "task_name": task.name,
                "task_version": task.version,
                "metric": metric.key,
                "metric_name": metric.name,
                "higher_is_better": metric.higher_is_better,
                "weight": 1.0,
            }
            for metric in board.metrics
        ],
        "rows": [
            {
                **system_data(row.system),
                "rank": row.rank,
                "rule_score": row.rule_score,
                "task_score": row.task_score,
                "cells": cells_data(row.cells),
                "provenance_tiers": sorted(row.system.provenance_tiers),
            }
            for row in board.rows
        ],
    }


# --- Snapshots -----------------------------------------------------------------------------


class SnapshotCreateInputSerializer(LeaderboardQuerySerializer):
    """The board to freeze: always the public one (a snapshot is for citing)."""

    view = None  # type: ignore[assignment]


class SnapshotSerializer(serializers.ModelSerializer[LeaderboardSnapshot]):
    suite = serializers.CharField(source="suite_version.suite.key", read_only=True)
    suite_version = serializers.IntegerField(source="suite_version.number", read_only=True)
    created_by = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(help_text="The snapshot's stable page, to cite.")
    bibtex = serializers.SerializerMethodField(help_text="A BibTeX entry citing `url`.")
    content = serializers.JSONField(
        read_only=True, help_text="The frozen table: columns, rows, ranks, rule details."
    )

    class Meta:
        model = LeaderboardSnapshot
        fields = [
            "uuid",
            "title",
            "suite",
            "suite_version",
            "rule",
            "missing",
            "created_at",
            "created_by",
            "url",
            "bibtex",
            "content",
        ]
        read_only_fields = fields

    def get_created_by(self, obj: LeaderboardSnapshot) -> str | None:
        return display_name(user=obj.created_by) if obj.created_by is not None else None

    def get_url(self, obj: LeaderboardSnapshot) -> str:
        return str(self.context["url"])

    def get_bibtex(self, obj: LeaderboardSnapshot) -> str:
        return str(self.context["bibtex"])
