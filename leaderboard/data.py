"""Load and validate a task's rows, with a content hash for provenance.

Rows come from ``<PODIUM_DATA_DIR>/<task.dataset.local_path>/<split>.jsonl`` (files in
the Hugging Face hub's field format) or, when no data directory is configured, from the
hub at the catalog's pinned revision through ``datasets`` (imported lazily so the
package never needs it). Either way the rows are checked against the catalog: input
fields present, labels in range, ids unique, tag sequences aligned with their tokens.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leaderboard.catalog import TaskDefinition

__all__ = [
    "DATA_DIR_ENV",
    "UNLABELLED",
    "DataError",
    "DataUnavailable",
    "DataValidationError",
    "LoadedSplit",
    "data_dir_from_env",
    "has_gold_labels",
    "load_split",
    "load_task",
    "local_split_path",
    "row_id",
]

DATA_DIR_ENV = "PODIUM_DATA_DIR"
# GLUE/SuperGLUE hub test splits carry label -1: the gold labels are private.
UNLABELLED = -1

_HOW_TO_PROVIDE = (
    f"set {DATA_DIR_ENV} to a directory holding <local_path>/<split>.jsonl files, "
    "or unset it and install `datasets` with access to the Hugging Face hub"
)


class DataError(Exception):
    """Base class for data problems."""


class DataUnavailable(DataError):
    """Neither a local file nor the hub could provide the split."""


class DataValidationError(DataError, ValueError):
    """Rows do not match the catalog's description of the task."""


@dataclass(frozen=True, kw_only=True)
class LoadedSplit:
    task: str  # qualified key, e.g. "glue/sst2"
    split: str
    rows: tuple[dict[str, Any], ...]
    sha256: str  # of the local file's bytes; for hub rows, of their canonical JSONL
    source: str  # file path, or "hub:<id>[/<config>]@<revision or 'unpinned'>"

    def to_dict(self) -> dict[str, Any]:
        # Rows are deliberately left out: this is provenance, not a data export.
        return {
            "task": self.task,
            "split": self.split,
            "num_rows": len(self.rows),
            "sha256": self.sha256,
            "source": self.source,
        }


def data_dir_from_env() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value) if value else None


def local_split_path(task: TaskDefinition, split: str, *, data_dir: Path) -> Path:
    return data_dir / task.dataset.local_path / f"{split}.jsonl"


def load_task(
    task: TaskDefinition, split: str, *, data_dir: Path | None = None
) -> list[dict[str, Any]]:
    """Validated rows of one split (see ``load_split`` for the hash and source)."""
    return list(load_split(task, split, data_dir=data_dir).rows)


def load_split(task: TaskDefinition, split: str, *, data_dir: Path | None = None) -> LoadedSplit:
    if split not in task.splits:
        raise DataValidationError(
            f"{task.qualified_key} has no split {split!r}; splits: {', '.join(task.splits)}"
        )
    directory = data_dir if data_dir is not None else data_dir_from_env()
    if directory is not None:
        rows, sha256, source = _read_local(task, split, directory)
    else:
        rows, sha256, source = _read_hub(task, split)
    _validate(task, rows, source=source)
    return LoadedSplit(
        task=task.qualified_key, split=split, rows=tuple(rows), sha256=sha256, source=source
    )


def _read_local(
    task: TaskDefinition, split: str, directory: Path
) -> tuple[list[dict[str, Any]], str, str]:
    path = local_split_path(task, split, data_dir=directory)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataUnavailable(
            f"{task.qualified_key} split {split!r}: no file at {path}; {_HOW_TO_PROVIDE}"
        ) from None
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataValidationError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataValidationError(f"{path}:{number}: expected a JSON object per line")
        if task.dataset.local_format == "poleval_punctuation":
            row = _poleval_to_tags(row, where=f"{path}:{number}")
        rows.append(row)
    if not rows:
        raise DataValidationError(f"{path}: file has no rows")
    return rows, hashlib.sha256(raw).hexdigest(), str(path)


def _poleval_to_tags(row: dict[str, Any], *, where: str) -> dict[str, Any]:
    """PolEval 2021 text_in/text_out -> one tag per word naming the mark that follows it."""
    try:
        words_in = str(row["text_in"]).split()
        words_out = str(row["text_out"]).split()
    except KeyError as exc:
        raise DataValidationError(f"{where}: missing field {exc.args[0]!r}") from None
    if len(words_in) != len(words_out):
        raise DataValidationError(
            f"{where}: text_in has {len(words_in)} words but text_out has {len(words_out)}"
        )
    tags: list[str] = []
    for word, punctuated in zip(words_in, words_out, strict=True):
        # text_out may also restore capitalisation; only the trailing mark is the target.
        if not punctuated.lower().startswith(word.lower()):
            raise DataValidationError(
                f"{where}: {punctuated!r} in text_out does not extend {word!r}"
            )
        mark = punctuated[len(word) :]
        tags.append(f"B-{mark}" if mark else "O")
    return {"text_id": row.get("text_id", ""), "tokens": words_in, "tags": tags}


def _read_hub(task: TaskDefinition, split: str) -> tuple[list[dict[str, Any]], str, str]:
    source_dataset = task.dataset
    name = source_dataset.hub_id + (f"/{source_dataset.config}" if source_dataset.config else "")
    source = f"hub:{name}@{source_dataset.revision or 'unpinned'}"
    try:
        datasets = importlib.import_module("datasets")
    except ImportError:
        raise DataUnavailable(
            f"{task.qualified_key} split {split!r}: {DATA_DIR_ENV} is not set and the "
            f"`datasets` package is not installed; {_HOW_TO_PROVIDE}"
        ) from None
    try:
        dataset = datasets.load_dataset(
            source_dataset.hub_id,
            source_dataset.config,
            split=split,
            revision=source_dataset.revision,
        )
    except Exception as exc:  # network, auth, missing repo: all mean "not available here"
        raise DataUnavailable(
            f"{task.qualified_key} split {split!r}: could not load {name} from the hub "
            f"({type(exc).__name__}: {exc}); {_HOW_TO_PROVIDE}"
        ) from exc
    renames = dict(source_dataset.hub_renames)
    features = getattr(dataset, "features", None) or {}
    rows = []
    for record in dataset:
        row: dict[str, Any] = {renames.get(str(k), str(k)): v for k, v in dict(record).items()}
        rows.append(_names_from_class_labels(task, row, features, renames))
    canonical = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    return rows, hashlib.sha256(canonical.encode("utf-8")).hexdigest(), source


def _names_from_class_labels(
    task: TaskDefinition, row: dict[str, Any], features: Any, renames: dict[str, str]
) -> dict[str, Any]:
    # The hub stores some string labels as ClassLabel ints; the catalog wants the names
    # for "name"-encoded tasks and tag strings for sequence labelling.
    if task.label_encoding == "index":
        return row
    hub_field = next((k for k, v in renames.items() if v == task.label_field), task.label_field)
    feature = features.get(hub_field) if hasattr(features, "get") else None
    if feature is None:
        return row
    value = row.get(task.label_field)
    names = getattr(feature, "names", None)
    inner_names = getattr(getattr(feature, "feature", None), "names", None)
    if names and isinstance(value, int) and value >= 0:
        row[task.label_field] = names[value]
    elif inner_names and isinstance(value, list):
        row[task.label_field] = [inner_names[v] if isinstance(v, int) else v for v in value]
    return row


def has_gold_labels(task: TaskDefinition, row: Mapping[str, Any]) -> bool:
    """False for rows whose gold label is withheld (hub test splits: -1 or null)."""
    value = row.get(task.label_field)
    if value is None:
        return False
    if task.label_encoding == "index" or task.task_type == "regression":
        return not (
            isinstance(value, int | float) and not isinstance(value, bool) and value == UNLABELLED
        )
    if task.task_type == "record":
        return bool(value)
    return True


def row_id(task: TaskDefinition, row: Mapping[str, Any], position: int) -> str:
    """Canonical id used to match predictions: the id field (dicts joined by '-'), else position."""
    if not task.id_field:
        return str(position)
    value = row[task.id_field]
    if isinstance(value, dict):
        return "-".join(str(v) for v in value.values())
    return str(value)


def _validate(task: TaskDefinition, rows: list[dict[str, Any]], *, source: str) -> None:
    seen_ids: dict[str, int] = {}
    tokens_field = task.input_fields[0]
    for position, row in enumerate(rows):
        where = f"{source}: row {position + 1}"
        for field in (
            *task.input_fields,
            task.label_field,
            *([task.id_field] if task.id_field else []),
        ):
            if field not in row:
                raise DataValidationError(f"{where}: missing field {field!r}")
        identifier = row_id(task, row, position)
        if identifier in seen_ids:
            raise DataValidationError(
                f"{where}: id {identifier!r} repeats row {seen_ids[identifier] + 1}"
            )
        seen_ids[identifier] = position
        _validate_label(task, row, where=where, tokens_field=tokens_field)


def _validate_label(
    task: TaskDefinition, row: dict[str, Any], *, where: str, tokens_field: str
) -> None:
    value = row[task.label_field]
    label = task.label_field
    if task.label_encoding == "index":
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataValidationError(f"{where}: {label!r} must be a label index, got {value!r}")
        if value != UNLABELLED and not 0 <= value < len(task.labels):
            raise DataValidationError(
                f"{where}: {label!r} = {value} is out of range 0..{len(task.labels) - 1}"
            )
    elif task.label_encoding == "name":
        if value not in task.labels:
            raise DataValidationError(
                f"{where}: {label!r} = {value!r} is not one of {', '.join(task.labels)}"
            )
    elif task.task_type == "regression":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise DataValidationError(f"{where}: {label!r} must be a finite number, got {value!r}")
    elif task.task_type == "sequence_labelling":
        tokens = row[tokens_field]
        if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
            raise DataValidationError(f"{where}: {label!r} must be a list of tag strings")
        n_tokens = len(tokens) if isinstance(tokens, list) else "?"
        if n_tokens != len(value):
            raise DataValidationError(
                f"{where}: {len(value)} tags for {n_tokens} tokens in {tokens_field!r}"
            )
    elif task.task_type == "record" and (
        not isinstance(value, list) or not all(isinstance(a, str) for a in value)
    ):
        raise DataValidationError(f"{where}: {label!r} must be a list of answer strings")
