"""Request and response shapes of tracked runs (runs logged from users' own scripts)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.serializers import (
    BIGINT_MAX,
    BIGINT_MIN,
    RunDetailSerializer,
    TaskPathField,
    _config_dict,
    _key_field,
)
from catalog.models import Backbone, Method
from tracking.models import Run, Visibility
from tracking.tracked import FINISH_STATUSES, MAX_POINTS_PER_BATCH, PointInput

MAX_PAGE = 10_000
DEFAULT_PAGE = 1_000
MAX_DISPLAY_POINTS = 10_000


class TrackInputSerializer(serializers.Serializer[Any]):
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


class TrackedRunSerializer(RunDetailSerializer):
    task_metrics = serializers.SerializerMethodField(
        help_text="The task's metric keys: the scores a successful finish records."
    )

    class Meta(RunDetailSerializer.Meta):
        fields = [*RunDetailSerializer.Meta.fields, "task_metrics"]
        read_only_fields = fields

    def get_task_metrics(self, obj: Run) -> list[str]:
        return [metric.key for metric in obj.task.metrics.all()]


class PointSerializer(serializers.Serializer[Any]):
    """One point, as sent and as listed (documentation of MetricPointsField's items)."""

    key = serializers.CharField(help_text="e.g. loss, train/loss, eval_accuracy")
    step = serializers.IntegerField()
    value = serializers.FloatField(help_text="Finite.")
    timestamp = serializers.FloatField(
        required=False, help_text="Unix seconds; when the server received it if not given."
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@extend_schema_field(PointSerializer(many=True))
class MetricPointsField(serializers.Field):  # type: ignore[type-arg]
    """A list of points, parsed in one loop: DRF's per-item serializers would cost more
    than storing the points."""

    def to_internal_value(self, data: Any) -> list[PointInput]:
        if not isinstance(data, list):
            raise serializers.ValidationError("Give the points as a list.")
        if len(data) > MAX_POINTS_PER_BATCH:
            raise serializers.ValidationError(
                f"At most {MAX_POINTS_PER_BATCH} points per request, not {len(data)}."
            )
        points: list[PointInput] = []
        for index, item in enumerate(data):
            problem = self._problem(item)
            if problem:
                field, message = problem
                raise serializers.ValidationError({str(index): {field: [message]}})
            timestamp = item.get("timestamp")
            points.append(
                PointInput(
                    key=item["key"],
                    step=item["step"],
                    value=float(item["value"]),
                    timestamp=None if timestamp is None else float(timestamp),
                )
            )
        return points

    @staticmethod
    def _problem(item: Any) -> tuple[str, str] | None:
        if not isinstance(item, dict):
            return "non_field_errors", 'Give each point as {"key", "step", "value"}.'
        unknown = sorted(set(item) - {"key", "step", "value", "timestamp"})
        if unknown:
            return unknown[0], "Not a field of a point (key, step, value, timestamp)."
        if not isinstance(item.get("key"), str):
            return "key", "Required, a string."
        step = item.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            return "step", "Required, an integer."
        if not _is_number(item.get("value")):
            return "value", "Required, a number."
        timestamp = item.get("timestamp")
        if timestamp is not None and not (_is_number(timestamp) and 0 <= timestamp < 253402300800):
            return "timestamp", "Unix seconds, a number between 0 and the year 9999."
        return None

    def to_representation(self, value: Any) -> Any:
        return value


class MetricsInputSerializer(serializers.Serializer[Any]):
    points = MetricPointsField(
        help_text=f"At most {MAX_POINTS_PER_BATCH}; a re-sent (key, step) is not stored twice."
    )


class MetricsAcceptedSerializer(serializers.Serializer[Any]):
    accepted = serializers.IntegerField(help_text="Points stored by this request.")
    duplicates = serializers.IntegerField(
        help_text="Points already stored with the same value (re-sent), not stored again."
    )


class PointConflictSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    step = serializers.IntegerField()
    value = serializers.FloatField(help_text="As sent.")
    stored = serializers.FloatField(help_text="As already recorded.")


class MetricsConflictSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()
    # Absent from the other 409, a run that is not running (detail only).
    conflicts = PointConflictSerializer(many=True, required=False, help_text="The first 100.")
    conflict_count = serializers.IntegerField(required=False)


def encode_cursor(position: tuple[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


class MetricsQuerySerializer(serializers.Serializer[Any]):
    key = serializers.CharField(required=False, help_text="Metric keys, comma-separated.")
    cursor = serializers.CharField(required=False, help_text="next_cursor of the previous page.")
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PAGE, default=DEFAULT_PAGE
    )
    max_points = serializers.IntegerField(
        required=False,
        min_value=4,
        max_value=MAX_DISPLAY_POINTS,
        help_text="Instead of raw pages: each curve downsampled to at most this many points "
        "for display (first, last and every bucket's extremes kept).",
    )

    def validate_key(self, value: str) -> list[str]:
        return [part.strip() for part in value.split(",") if part.strip()]

    def validate_cursor(self, value: str) -> tuple[str, int]:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            key, step = json.loads(raw)
        except (binascii.Error, ValueError, TypeError):
            raise serializers.ValidationError("Not a cursor this endpoint gave.") from None
        if not isinstance(key, str) or not isinstance(step, int) or isinstance(step, bool):
            raise serializers.ValidationError("Not a cursor this endpoint gave.")
        return key, step

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "max_points" in attrs and "cursor" in attrs:
            raise serializers.ValidationError(
                {"cursor": ["A downsampled series is one response; give no cursor with it."]}
            )
        return attrs


class PointsPageSerializer(serializers.Serializer[Any]):
    results = PointSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    next = serializers.URLField(allow_null=True)


class SeriesSerializer(serializers.Serializer[Any]):
    steps = serializers.ListField(child=serializers.IntegerField())
    values = serializers.ListField(child=serializers.FloatField())
    total = serializers.IntegerField(help_text="Points stored; more than shown if downsampled.")


class SeriesSetSerializer(serializers.Serializer[Any]):
    max_points = serializers.IntegerField()
    series = serializers.DictField(child=SeriesSerializer(), help_text="By metric key.")


class FinishInputSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=list(FINISH_STATUSES))
    scores = serializers.DictField(
        child=serializers.FloatField(),
        default=dict,
        help_text="Every metric of the task with a success; none for a run tracked for "
        "its curves only, or a failed one.",
    )
    error = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=10_000, trim_whitespace=False
    )


class RunProgressSerializer(serializers.Serializer[Any]):
    status = serializers.CharField()
    status_reason = serializers.CharField()
    executed = serializers.BooleanField(help_text="A job executed by Podium.")
    position = serializers.IntegerField(allow_null=True, help_text="1 = next; queued jobs only.")
    estimated_start = serializers.DateTimeField(allow_null=True)
    worker = serializers.CharField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    progress = serializers.JSONField(allow_null=True, help_text="step, total_steps, ...")
    attempts = serializers.IntegerField(allow_null=True)
    max_attempts = serializers.IntegerField(allow_null=True)
    log_tail = serializers.CharField(allow_null=True, help_text="The run's owner only.")
