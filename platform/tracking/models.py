"""Runs and everything they produce.

A run is one method + backbone + task (an exact task version) + config + seed. Runs of the
same method, backbone and config (every hyperparameter but the seed) form a *system*, the
unit a leaderboard ranks; `config_hash` makes that grouping an indexed equality.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models

from catalog.models import (
    Backbone,
    Method,
    SuiteTask,
    SuiteVersion,
    SuiteVersionStatus,
    Task,
    TaskMetric,
)
from tracking.status import RunStatus


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private"


class ProvenanceTier(models.TextChoices):
    SELF_REPORTED = "self_reported", "Self-reported scores"
    RESCORED = "rescored", "Re-scored by Podium from predictions"
    EXECUTED = "executed", "Executed by Podium"


class ReviewStatus(models.TextChoices):
    NOT_REQUIRED = "not_required", "No approval needed"
    PENDING = "pending", "Awaiting staff approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


# Runs that public leaderboards may show, as far as review goes.
REVIEW_CLEARED = (ReviewStatus.NOT_REQUIRED, ReviewStatus.APPROVED)


def task_requires_approval(*, task_id: int) -> bool:
    """Whether a published version of a suite that requires approval contains this task."""
    return SuiteTask.objects.filter(
        task_id=task_id,
        suite_version__status=SuiteVersionStatus.PUBLISHED,
        suite_version__suite__requires_approval=True,
    ).exists()


class Tag(models.Model):
    name = models.SlugField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Run(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs"
    )
    method = models.ForeignKey(Method, on_delete=models.PROTECT, related_name="runs")
    backbone = models.ForeignKey(Backbone, on_delete=models.PROTECT, related_name="runs")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="runs")
    # The suite request this run was expanded from, if any.
    suite_version = models.ForeignKey(
        SuiteVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    config = models.JSONField(default=dict, blank=True, help_text="Hyperparameters, seed excluded.")
    config_hash = models.CharField(max_length=64, db_index=True, editable=False)
    seed = models.BigIntegerField()
    # The split the scores come from. Runs scored elsewhere than the task's official
    # evaluation split are separate systems on leaderboards, never averaged with the rest.
    eval_split = models.CharField(max_length=64, blank=True)
    on_official_split = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    status_reason = models.TextField(blank=True)
    visibility = models.CharField(
        max_length=8, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    provenance_tier = models.CharField(max_length=16, choices=ProvenanceTier.choices)
    # The job spec as sent (or the submission as received), code version, package versions
    # and hardware: everything needed to say where a number came from.
    spec = models.JSONField(default=dict, blank=True)
    provenance = models.JSONField(default=dict, blank=True)
    # Wall time, peak accelerator and host memory, throughput, trainable parameters.
    system = models.JSONField(default=dict, blank=True)
    # Scores beyond the task's metrics, e.g. DyLoRA's score at each evaluated rank.
    extra_scores = models.JSONField(default=dict, blank=True)
    code_version = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="runs")
    # A withdrawn run leaves every leaderboard but is kept, with its audit trail.
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # Set on creation from the suites its task belongs to; see Run.save.
    review_status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.NOT_REQUIRED
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["task", "status", "visibility"], name="run_leaderboard_idx"),
            models.Index(fields=["method", "backbone", "config_hash"], name="run_system_idx"),
            models.Index(fields=["owner", "-created_at"], name="run_owner_recent_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RunStatus.values), name="run_status_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(status__in=["succeeded", "failed", "cancelled"])
                | models.Q(finished_at__isnull=False),
                name="run_final_has_finished_at",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.uuid.hex[:8]} ({self.method.key} on {self.task})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Decided here, at insertion, so every way of creating a run (external, predictions,
        # executed, tracked) waits for approval where a suite of its task requires it.
        if (
            self._state.adding
            and self.review_status == ReviewStatus.NOT_REQUIRED
            and task_requires_approval(task_id=self.task_id)
        ):
            self.review_status = ReviewStatus.PENDING
        super().save(*args, **kwargs)

    @property
    def is_withdrawn(self) -> bool:
        return self.withdrawn_at is not None


class RunTransition(models.Model):
    """One status change, kept so a run's history is always accounted for."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, choices=RunStatus.choices)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "at", "id"]

    def __str__(self) -> str:
        return f"{self.run_id}: {self.from_status or '-'} -> {self.to_status}"


class AuditAction(models.TextChoices):
    EDIT = "edit", "Edited (description, tags or visibility)"
    WITHDRAW = "withdraw", "Withdrawn"
    APPROVE = "approve", "Approved for public leaderboards"
    REJECT = "reject", "Rejected from public leaderboards"


class AuditEvent(models.Model):
    """One change to a run made by a person: who, when, what, and the values before/after."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as written, so the trail still says who acted after their account is deleted.
    actor_username = models.CharField(max_length=150)
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    # {field: {"before": value, "after": value}}
    changes = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "at", "id"]

    def __str__(self) -> str:
        return f"{self.actor_username} {self.action} {self.run_id} at {self.at:%Y-%m-%d %H:%M}"


class Score(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="scores")
    metric = models.ForeignKey(TaskMetric, on_delete=models.PROTECT, related_name="scores")
    value = models.FloatField()
    # Spread reported with the value (e.g. a std over bootstrap samples), if any.
    spread = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["run", "metric__position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "metric"], name="score_unique_metric"),
        ]

    def __str__(self) -> str:
        return f"{self.metric.key}={self.value:.4f}"


class MetricPoint(models.Model):
    """One point of a curve (loss, learning rate, throughput, ...)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_points")
    key = models.CharField(max_length=100)
    step = models.BigIntegerField()
    value = models.FloatField()
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["run", "key", "step"]
        constraints = [
            models.UniqueConstraint(fields=["run", "key", "step"], name="metricpoint_unique_step"),
        ]

    def __str__(self) -> str:
        return f"{self.key}@{self.step}={self.value}"


class ArtifactKind(models.TextChoices):
    PREDICTIONS = "predictions", "Predictions"
    LOG = "log", "Log"
    CHECKPOINT = "checkpoint", "Checkpoint"
    OTHER = "other", "Other"


class Artifact(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="artifacts")
    kind = models.CharField(max_length=16, choices=ArtifactKind.choices)
    name = models.CharField(max_length=255)
    # Location in the artifact store (a path under MEDIA_ROOT, or an s3:// URI).
    uri = models.CharField(max_length=1000)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "name"]
        constraints = [
            models.UniqueConstraint(fields=["run", "name"], name="artifact_unique_name"),
            models.CheckConstraint(
                condition=models.Q(size_bytes__gte=0), name="artifact_size_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Job(models.Model):
    """The execution of a run by Podium; its state is the run's status."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="job")
    queue = models.CharField(max_length=64, default="gpu")
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    resources = models.JSONField(default=dict, blank=True, help_text="e.g. {'gpus': 1}")
    time_limit_s = models.PositiveIntegerField(default=6 * 3600)
    # A job whose heartbeat continues but whose step has not moved for this long is stopped.
    stall_limit_s = models.PositiveIntegerField(default=30 * 60)
    # Null while the job waits for a slot under its owner's concurrency limit.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress_at = models.DateTimeField(null=True, blank=True)
    progress = models.JSONField(default=dict, blank=True)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["heartbeat_at"], name="job_heartbeat_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(attempts__lte=models.F("max_attempts")),
                name="job_attempts_bounded",
            ),
        ]

    def __str__(self) -> str:
        return f"job for {self.run}"


class FlagKind(models.TextChoices):
    CONTAMINATION = "contamination", "Possible test-set contamination"
    SUSPICIOUS = "suspicious", "Suspicious result"
    NOTE = "note", "Note"


class Flag(models.Model):
    """A curator's flag on a run, shown with it on leaderboards."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="flags")
    kind = models.CharField(max_length=16, choices=FlagKind.choices)
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.reason[:60]}"


class LeaderboardSnapshot(models.Model):
    """A leaderboard frozen as it was, with a stable URL, for citing in a paper.

    `content` holds the whole table, ranking and rule settings, so the snapshot renders
    without consulting runs that may later change, be withdrawn or be re-scored.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    suite_version = models.ForeignKey(
        SuiteVersion, on_delete=models.PROTECT, related_name="snapshots"
    )
    rule = models.CharField(max_length=64)
    missing = models.CharField(max_length=32, blank=True)
    title = models.CharField(max_length=300)
    content = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class BoardStamp(models.Model):
    """A task's leaderboard revision. Every change to what a board over the task shows
    bumps it in the same transaction (tracking.services.board_stamps_bump; model saves and
    deletes through tracking.signals), so a board's cache key is a few primary-key reads,
    never a scan of the task's runs."""

    task = models.OneToOneField(
        Task, primary_key=True, on_delete=models.CASCADE, related_name="board_stamp"
    )
    revision = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.task_id}@{self.revision}"
