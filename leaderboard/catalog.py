"""Benchmark catalog: GLUE, SuperGLUE and LEPISZCZE tasks, read from declarative YAML.

The YAML files in ``leaderboard/benchmarks/`` are the single source of truth; this module
only parses and validates them into frozen dataclasses. A metric's direction is never
written in YAML: it comes from the metric registry so the two cannot disagree.

Conventions the rest of the package relies on:
* ``label_encoding == "index"``: gold rows hold the position of the label in ``labels``
  (GLUE/SuperGLUE hub format); ``"name"``: rows hold the label string itself (KLEJ and
  the other LEPISZCZE sets); ``"none"``: no class labels (regression, spans, tags).
* Binary-F1 tasks list the positive class second (``labels[1]``).
* ``score_group``: tasks sharing it count as one task in the suite score (MNLI m/mm).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from leaderboard.metrics import MetricError, get_metric

__all__ = [
    "BENCHMARK_KEYS",
    "LABEL_ENCODINGS",
    "LOCAL_FORMATS",
    "TASK_TYPES",
    "BenchmarkDefinition",
    "CatalogError",
    "DatasetSource",
    "MetricSpec",
    "TaskDefinition",
    "get_benchmark",
    "get_task",
    "load_catalog",
]

TASK_TYPES: tuple[str, ...] = (
    "single_sentence_classification",
    "pair_classification",
    "regression",
    "multiple_choice",
    "multirc",
    "record",
    "sequence_labelling",
    "diagnostic",
)
LABEL_ENCODINGS: tuple[str, ...] = ("index", "name", "none")
LOCAL_FORMATS: tuple[str, ...] = ("jsonl", "poleval_punctuation")
BENCHMARK_KEYS: tuple[str, ...] = ("glue", "superglue", "lepiszcze")
SUITE_SCORE_METHODS: tuple[str, ...] = ("grouped_mean", "primary_mean")

_DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "benchmarks"


class CatalogError(ValueError):
    """A benchmark file is missing, malformed or inconsistent; the message names file and field."""


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    key: str
    name: str
    higher_is_better: bool
    group: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class DatasetSource:
    hub_id: str
    config: str | None
    revision: str | None
    local_path: str
    # Why ``revision`` is None (or where the pin comes from); shown next to results.
    revision_note: str = ""
    # Hub column -> catalog field renames, applied to hub rows so they match local files.
    hub_renames: tuple[tuple[str, str], ...] = ()
    # How local files are laid out: "jsonl" (hub field format) or "poleval_punctuation"
    # (PolEval text_in/text_out rows, converted to tokens/tags on load).
    local_format: str = "jsonl"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hub_renames"] = [list(pair) for pair in self.hub_renames]
        return data


@dataclass(frozen=True, kw_only=True)
class TaskDefinition:
    benchmark: str
    key: str
    name: str
    description: str
    version: int
    task_type: str
    dataset: DatasetSource
    splits: tuple[str, ...]
    input_fields: tuple[str, ...]
    label_field: str
    labels: tuple[str, ...]
    metrics: tuple[MetricSpec, ...]
    primary_metric: str
    license: str
    public: bool
    in_suite_score: bool
    url: str
    # Additions beyond the platform interface:
    eval_split: str  # the labelled split results are compared on (dev/validation)
    label_encoding: str  # one of LABEL_ENCODINGS
    id_field: str  # row id used to match predictions; "" means the row's position
    score_group: str  # tasks sharing it form one suite-score task (MNLI m/mm)
    submission_file: str  # official GLUE/SuperGLUE submission file name, "" if none

    @property
    def qualified_key(self) -> str:
        return f"{self.benchmark}/{self.key}"

    def metric(self, key: str) -> MetricSpec:
        for spec in self.metrics:
            if spec.key == key:
                return spec
        raise KeyError(f"{self.qualified_key} has no metric {key!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "task_type": self.task_type,
            "dataset": self.dataset.to_dict(),
            "splits": list(self.splits),
            "input_fields": list(self.input_fields),
            "label_field": self.label_field,
            "labels": list(self.labels),
            "metrics": [m.to_dict() for m in self.metrics],
            "primary_metric": self.primary_metric,
            "license": self.license,
            "public": self.public,
            "in_suite_score": self.in_suite_score,
            "url": self.url,
            "eval_split": self.eval_split,
            "label_encoding": self.label_encoding,
            "id_field": self.id_field,
            "score_group": self.score_group,
            "submission_file": self.submission_file,
        }


@dataclass(frozen=True, kw_only=True)
class BenchmarkDefinition:
    key: str
    name: str
    description: str
    url: str
    version: int
    tasks: tuple[TaskDefinition, ...]
    suite_score: str  # one of SUITE_SCORE_METHODS

    def task(self, key: str) -> TaskDefinition:
        for task in self.tasks:
            if task.key == key:
                return task
        raise KeyError(f"benchmark {self.key!r} has no task {key!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "url": self.url,
            "version": self.version,
            "suite_score": self.suite_score,
            "tasks": [t.to_dict() for t in self.tasks],
        }


class _Fields:
    """Typed access to one YAML mapping; every error names the file and the field path."""

    def __init__(self, data: Any, *, file: Path, where: str) -> None:
        if not isinstance(data, Mapping):
            raise CatalogError(f"{file}: {where or 'top level'} must be a mapping")
        self.data: Mapping[str, Any] = data
        self.file = file
        self.where = where

    def path(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, problem: str) -> CatalogError:
        return CatalogError(f"{self.file}: field {self.path(name)!r}: {problem}")

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> Any:
        if name not in self.data:
            raise self.fail(name, "is required")
        return self.data[name]

    def string(self, name: str, *, default: str | None = None, allow_empty: bool = False) -> str:
        if name not in self.data and default is not None:
            return default
        value = self.raw(name)
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise self.fail(name, f"must be a non-empty string, got {value!r}")
        return value

    def optional_string(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, f"must be a non-empty string or null, got {value!r}")
        return value

    def integer(self, name: str) -> int:
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(name, f"must be a positive integer, got {value!r}")
        return value

    def boolean(self, name: str, *, default: bool | None = None) -> bool:
        if name not in self.data and default is not None:
            return default
        value = self.raw(name)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, got {value!r}")
        return value

    def strings(
        self, name: str, *, allow_empty: bool = False, default: Sequence[str] | None = None
    ) -> tuple[str, ...]:
        if name not in self.data and default is not None:
            return tuple(default)
        value = self.raw(name)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(name, f"must be a list of non-empty strings, got {value!r}")
        if not value and not allow_empty:
            raise self.fail(name, "must not be empty")
        if len(set(value)) != len(value):
            raise self.fail(name, "contains duplicates")
        return tuple(value)

    def child(self, name: str) -> _Fields:
        return _Fields(self.raw(name), file=self.file, where=self.path(name))

    def children(self, name: str) -> list[_Fields]:
        value = self.raw(name)
        if not isinstance(value, list) or not value:
            raise self.fail(name, "must be a non-empty list")
        return [
            _Fields(item, file=self.file, where=f"{self.path(name)}[{i}]")
            for i, item in enumerate(value)
        ]


def _parse_metric(fields: _Fields) -> MetricSpec:
    key = fields.string("key")
    try:
        registered = get_metric(key)
    except MetricError as exc:
        raise fields.fail("key", str(exc)) from None
    if fields.has("higher_is_better"):
        raise fields.fail(
            "higher_is_better", "must not be set: direction comes from the metric registry"
        )
    return MetricSpec(
        key=key,
        name=fields.string("name", default=registered.name),
        higher_is_better=registered.higher_is_better,
        group=fields.string("group", default="", allow_empty=True),
    )


def _parse_dataset(fields: _Fields) -> DatasetSource:
    revision = fields.optional_string("revision")
    note = fields.string("revision_note", default="", allow_empty=True)
    if revision is None and not note:
        raise fields.fail("revision_note", "must say why the revision is not pinned")
    renames_raw = fields.data.get("hub_renames", {})
    if not isinstance(renames_raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in renames_raw.items()
    ):
        raise fields.fail("hub_renames", "must be a mapping of hub column to field name")
    local_path = fields.string("local_path")
    if Path(local_path).is_absolute() or ".." in Path(local_path).parts:
        raise fields.fail("local_path", "must be relative to PODIUM_DATA_DIR without '..'")
    local_format = fields.string("local_format", default="jsonl")
    if local_format not in LOCAL_FORMATS:
        raise fields.fail("local_format", f"must be one of {', '.join(LOCAL_FORMATS)}")
    return DatasetSource(
        hub_id=fields.string("hub_id"),
        config=fields.optional_string("config"),
        revision=revision,
        local_path=local_path,
        revision_note=note,
        hub_renames=tuple(sorted(renames_raw.items())),
        local_format=local_format,
    )


def _parse_task(fields: _Fields, *, benchmark: str) -> TaskDefinition:
    key = fields.string("key")
    task_type = fields.string("task_type")
    if task_type not in TASK_TYPES:
        raise fields.fail("task_type", f"{task_type!r} is not one of {', '.join(TASK_TYPES)}")
    metrics = tuple(_parse_metric(m) for m in fields.children("metrics"))
    metric_keys = [m.key for m in metrics]
    if len(set(metric_keys)) != len(metric_keys):
        raise fields.fail("metrics", "lists a metric twice")
    primary = fields.string("primary_metric")
    if primary not in metric_keys:
        raise fields.fail(
            "primary_metric", f"{primary!r} is not among the task's metrics {metric_keys}"
        )
    splits = fields.strings("splits")
    eval_split = fields.string("eval_split")
    if eval_split not in splits:
        raise fields.fail("eval_split", f"{eval_split!r} is not one of the splits {list(splits)}")
    labels = fields.strings("labels", allow_empty=True)
    encoding = fields.string("label_encoding")
    if encoding not in LABEL_ENCODINGS:
        raise fields.fail("label_encoding", f"must be one of {', '.join(LABEL_ENCODINGS)}")
    if encoding == "none" and labels:
        raise fields.fail("labels", "must be empty when label_encoding is 'none'")
    if encoding != "none" and len(labels) < 2:
        raise fields.fail("labels", "a classification task needs at least two labels")
    if {"f1", "f1a"} & set(metric_keys) and len(labels) != 2:
        raise fields.fail("labels", "binary F1 needs exactly two labels (positive class second)")
    return TaskDefinition(
        benchmark=benchmark,
        key=key,
        name=fields.string("name"),
        description=fields.string("description"),
        version=fields.integer("version"),
        task_type=task_type,
        dataset=_parse_dataset(fields.child("dataset")),
        splits=splits,
        input_fields=fields.strings("input_fields"),
        label_field=fields.string("label_field"),
        labels=labels,
        metrics=metrics,
        primary_metric=primary,
        license=fields.string("license"),
        public=fields.boolean("public", default=True),
        in_suite_score=fields.boolean("in_suite_score", default=True),
        url=fields.string("url"),
        eval_split=eval_split,
        label_encoding=encoding,
        id_field=fields.string("id_field", default="", allow_empty=True),
        score_group=fields.string("score_group", default=key),
        submission_file=fields.string("submission_file", default="", allow_empty=True),
    )


def _parse_benchmark(file: Path) -> BenchmarkDefinition:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{file}: cannot read benchmark file: {exc}") from None
    fields = _Fields(data, file=file, where="")
    key = fields.string("key")
    if key not in BENCHMARK_KEYS:
        raise fields.fail("key", f"{key!r} is not one of {', '.join(BENCHMARK_KEYS)}")
    method = fields.string("suite_score")
    if method not in SUITE_SCORE_METHODS:
        raise fields.fail("suite_score", f"must be one of {', '.join(SUITE_SCORE_METHODS)}")
    tasks = tuple(_parse_task(t, benchmark=key) for t in fields.children("tasks"))
    seen: set[str] = set()
    for i, task in enumerate(tasks):
        if task.key in seen:
            raise CatalogError(f"{file}: field 'tasks[{i}].key': duplicate task key {task.key!r}")
        seen.add(task.key)
    _check_score_groups(file, tasks)
    return BenchmarkDefinition(
        key=key,
        name=fields.string("name"),
        description=fields.string("description"),
        url=fields.string("url"),
        version=fields.integer("version"),
        tasks=tasks,
        suite_score=method,
    )


def _check_score_groups(file: Path, tasks: Sequence[TaskDefinition]) -> None:
    # Tasks merged into one suite-score task must be scored alike, else averaging is meaningless.
    by_group: dict[str, TaskDefinition] = {}
    for i, task in enumerate(tasks):
        first = by_group.setdefault(task.score_group, task)
        if first is task:
            continue
        if [m.key for m in first.metrics] != [m.key for m in task.metrics] or (
            first.in_suite_score != task.in_suite_score
        ):
            raise CatalogError(
                f"{file}: field 'tasks[{i}].score_group': {task.key!r} shares group "
                f"{task.score_group!r} with {first.key!r} but has different metrics "
                "or suite membership"
            )


def load_catalog(directory: Path | None = None) -> tuple[BenchmarkDefinition, ...]:
    """Parse and validate every ``*.yaml`` benchmark file (default: the packaged ones)."""
    if directory is None:
        return _packaged_catalog()
    return _load_directory(directory)


def _load_directory(directory: Path) -> tuple[BenchmarkDefinition, ...]:
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise CatalogError(f"{directory}: no benchmark *.yaml files found")
    benchmarks = tuple(_parse_benchmark(f) for f in files)
    keys = [b.key for b in benchmarks]
    for file, key in zip(files, keys, strict=True):
        if keys.count(key) > 1:
            raise CatalogError(
                f"{file}: field 'key': benchmark {key!r} is defined in more than one file"
            )
    return tuple(sorted(benchmarks, key=lambda b: BENCHMARK_KEYS.index(b.key)))


@functools.cache
def _packaged_catalog() -> tuple[BenchmarkDefinition, ...]:
    # Cached: the packaged files cannot change while the process runs.
    return _load_directory(_DEFAULT_DIRECTORY)


def get_benchmark(*, key: str) -> BenchmarkDefinition:
    for benchmark in _packaged_catalog():
        if benchmark.key == key:
            return benchmark
    raise KeyError(
        f"unknown benchmark {key!r}; known: {', '.join(b.key for b in _packaged_catalog())}"
    )


def get_task(*, benchmark: str, key: str) -> TaskDefinition:
    return get_benchmark(key=benchmark).task(key)
