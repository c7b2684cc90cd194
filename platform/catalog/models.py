"""What runs are made of: benchmarks and their tasks, curated suites, methods, backbones.

Tasks are versioned rows: a changed definition is a new (benchmark, key, version) row, and
runs point at the exact version they were scored on, so a new task or metric version never
silently changes an existing run's scores. A published suite version is immutable.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Benchmark(models.Model):
    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    url = models.URLField(blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class TaskType(models.TextChoices):
    SINGLE_SENTENCE = "single_sentence_classification", "Single-sentence classification"
    PAIR = "pair_classification", "Sentence-pair classification"
    REGRESSION = "regression", "Regression"
    MULTIPLE_CHOICE = "multiple_choice", "Multiple choice"
    MULTIRC = "multirc", "Multi-sentence reading comprehension"
    RECORD = "record", "Cloze-style reading comprehension"
    SEQUENCE_LABELLING = "sequence_labelling", "Sequence labelling"
    DIAGNOSTIC = "diagnostic", "Diagnostic"


class Task(models.Model):
    benchmark = models.ForeignKey(Benchmark, on_delete=models.PROTECT, related_name="tasks")
    key = models.SlugField(max_length=64)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    task_type = models.CharField(max_length=40, choices=TaskType.choices)
    dataset_hub_id = models.CharField(max_length=200, blank=True)
    dataset_config = models.CharField(max_length=100, blank=True)
    # Empty where no revision is known; never an invented hash.
    dataset_revision = models.CharField(max_length=64, blank=True)
    local_path = models.CharField(max_length=200, blank=True)
    splits = models.JSONField(default=list)
    input_fields = models.JSONField(default=list)
    label_field = models.CharField(max_length=100, blank=True)
    labels = models.JSONField(default=list, blank=True)
    primary_metric = models.CharField(max_length=64)
    license = models.CharField(max_length=200, blank=True)
    public = models.BooleanField(default=True, help_text="False where the data is not public.")
    in_suite_score = models.BooleanField(
        default=True, help_text="Counted in its benchmark's official score (AX is not)."
    )
    url = models.URLField(blank=True)
    # The full declarative definition this row was loaded from, for provenance and for
    # detecting an edited definition that forgot to bump its version.
    definition = models.JSONField(default=dict)
    is_current = models.BooleanField(
        default=True, help_text="The newest version in the catalog files."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["benchmark__key", "key", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["benchmark", "key", "version"], name="task_unique_version"
            ),
            models.UniqueConstraint(
                fields=["benchmark", "key"],
                condition=models.Q(is_current=True),
                name="task_one_current_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.benchmark.key}/{self.key} v{self.version}"


class TaskMetric(models.Model):
    """A metric a task reports; its direction is declared by the metric registry."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="metrics")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=100)
    higher_is_better = models.BooleanField()
    # Metrics sharing a group are averaged into one task score (MRPC's F1 and accuracy).
    group = models.CharField(max_length=64, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["task", "position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "key"], name="taskmetric_unique_key"),
        ]

    def __str__(self) -> str:
        arrow = "↑" if self.higher_is_better else "↓"
        return f"{self.task} {self.key} {arrow}"


class Suite(models.Model):
    """An admin-curated set of tasks, published in immutable versions.

    The submission rules are the suite's, not a version's: they apply to runs on any task
    of any of its published versions and may change at any time.
    """

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    requires_approval = models.BooleanField(
        default=False,
        help_text="New public runs on this suite's tasks show on public leaderboards only "
        "once staff approve them.",
    )
    daily_submission_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Runs a user may submit on this suite's tasks per UTC day; empty: no limit.",
    )
    total_submission_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Runs a user may submit on this suite's tasks in all; empty: no limit.",
    )
    count_failed_submissions = models.BooleanField(
        default=True, help_text="Failed runs count against the limits."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class SuiteVersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class ImmutableSuiteVersion(ValidationError):
    """Raised on any attempt to change a published suite version."""


class SuiteVersionQuerySet(models.QuerySet["SuiteVersion"]):
    def published(self) -> SuiteVersionQuerySet:
        return self.filter(status=SuiteVersionStatus.PUBLISHED)


class SuiteVersion(models.Model):
    suite = models.ForeignKey(Suite, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=SuiteVersionStatus.choices, default=SuiteVersionStatus.DRAFT
    )
    # Aggregation defaults for the leaderboard: rule, missing-score policy, official score.
    aggregation = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    objects = SuiteVersionQuerySet.as_manager()

    class Meta:
        ordering = ["suite", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["suite", "number"], name="suiteversion_unique_number"),
            models.CheckConstraint(
                condition=models.Q(status="draft") | models.Q(published_at__isnull=False),
                name="suiteversion_published_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.suite.key} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Immutability is checked against the stored row, not this (possibly edited) instance.
        if self.pk is not None:
            stored = SuiteVersion.objects.filter(pk=self.pk).values_list("status", flat=True)
            if stored.first() == SuiteVersionStatus.PUBLISHED:
                raise ImmutableSuiteVersion(
                    f"{self} is published and immutable; create a new version to change it."
                )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.pk is not None and self.is_published:
            raise ImmutableSuiteVersion(f"{self} is published and cannot be deleted.")
        return super().delete(*args, **kwargs)

    @property
    def is_published(self) -> bool:
        return self.status == SuiteVersionStatus.PUBLISHED


class SuiteTask(models.Model):
    suite_version = models.ForeignKey(SuiteVersion, on_delete=models.CASCADE, related_name="items")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="suite_items")
    weight = models.FloatField(default=1.0)
    group = models.CharField(
        max_length=64, blank=True, help_text="Task group, for two-level ranking."
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["suite_version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["suite_version", "task"], name="suitetask_unique_task"),
            models.CheckConstraint(
                condition=models.Q(weight__gte=0), name="suitetask_weight_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.suite_version}: {self.task}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._check_mutable()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        self._check_mutable()
        return super().delete(*args, **kwargs)

    def _check_mutable(self) -> None:
        status = (
            SuiteVersion.objects.filter(pk=self.suite_version_id)
            .values_list("status", flat=True)
            .first()
        )
        if status == SuiteVersionStatus.PUBLISHED:
            raise ImmutableSuiteVersion(
                f"{self.suite_version} is published; its tasks and weights cannot change."
            )


class Method(models.Model):
    """A training or adaptation method (full fine-tuning, LoRA, MeZO, ...)."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    paper_url = models.URLField(blank=True)
    description = models.TextField(blank=True)
    hyperparameter_schema = models.JSONField(
        default=dict, blank=True, help_text="JSON schema of the method's hyperparameters."
    )
    executable = models.BooleanField(
        default=False,
        help_text="Podium can execute it; otherwise it only records external results.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class BackboneSource(models.TextChoices):
    HUB = "hub", "Hugging Face hub (id + revision)"
    LOCAL = "local", "Local directory"
    PACKAGE = "package", "Installed Python package that ships the weights"


class Backbone(models.Model):
    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=16, choices=BackboneSource.choices)
    hub_id = models.CharField(max_length=200, blank=True)
    revision = models.CharField(max_length=64, blank=True)
    local_path = models.CharField(max_length=500, blank=True)
    package = models.CharField(max_length=200, blank=True)
    parameter_count = models.BigIntegerField(null=True, blank=True)
    license = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    (models.Q(source="hub") & ~models.Q(hub_id=""))
                    | (models.Q(source="local") & ~models.Q(local_path=""))
                    | (models.Q(source="package") & ~models.Q(package=""))
                ),
                name="backbone_source_has_location",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Baseline(models.Model):
    """A reference score shown on leaderboards (human performance, majority class, ...)."""

    metric = models.ForeignKey(TaskMetric, on_delete=models.CASCADE, related_name="baselines")
    name = models.CharField(max_length=200)
    value = models.FloatField()
    source_url = models.URLField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["metric", "name"]
        constraints = [
            models.UniqueConstraint(fields=["metric", "name"], name="baseline_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.metric}: {self.value}"


class GoldSplit(models.Model):
    """Gold labels of a split uploaded by staff and kept private.

    The file lives under PODIUM_PRIVATE_DIR in the same layout as PODIUM_DATA_DIR
    (<local_path>/<split>.jsonl), outside MEDIA_ROOT, so it is used for scoring on the
    server and never served by the API, the dashboard or an export.
    """

    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="gold_splits")
    split = models.CharField(max_length=64)
    rows = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    uploaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task", "split"]
        constraints = [
            models.UniqueConstraint(fields=["task", "split"], name="goldsplit_unique_split"),
        ]

    def __str__(self) -> str:
        return f"private gold: {self.task} {self.split} ({self.rows} rows)"
