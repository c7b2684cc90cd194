"""Parse, validate and re-score a system's predictions for one task split.

Accepted files (``fmt="auto"`` picks by content):
* ``jsonl``: one ``{"idx": ..., "prediction": ...}`` per line (Podium's own format);
* ``superglue``: SuperGLUE submission JSONL, ``{"idx": ..., "label": ...}`` per line;
* ``glue_tsv``: GLUE submission TSV with an ``index<TAB>prediction`` header.

Ids are the task's ``id_field`` (dict ids such as MultiRC's joined with "-", e.g.
"0-0-1"), or the 0-based row position for tasks without one. Class predictions may be a
label index or a label name (case-insensitive, so SuperGLUE's "true"/"false" work).
Every problem raises ``PredictionError`` naming the first offending line. Scores are on
the metrics' 0-1 scale.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leaderboard.catalog import TaskDefinition
from leaderboard.data import has_gold_labels, load_split, row_id
from leaderboard.metrics import compute_metric

__all__ = [
    "PREDICTION_FORMATS",
    "ParsedPrediction",
    "PredictionError",
    "RescoreResult",
    "parse_predictions",
    "per_class_scores",
    "rescore_file",
    "score_predictions",
]

PREDICTION_FORMATS: tuple[str, ...] = ("auto", "jsonl", "superglue", "glue_tsv")


class PredictionError(ValueError):
    """A predictions file that cannot be scored; the message names the line and the problem."""


@dataclass(frozen=True, kw_only=True)
class ParsedPrediction:
    line: int  # 1-based line in the file
    id: str  # canonical id (see module docstring)
    value: Any  # raw prediction as read


@dataclass(frozen=True, kw_only=True)
class RescoreResult:
    task: str
    split: str
    num_predictions: int
    data_sha256: str
    metrics: tuple[tuple[str, float], ...]  # (metric key, 0-1 value) in catalog order

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "split": self.split,
            "num_predictions": self.num_predictions,
            "data_sha256": self.data_sha256,
            "metrics": dict(self.metrics),
        }


def _canonical_id(value: Any) -> str:
    if isinstance(value, dict):
        return "-".join(str(v) for v in value.values())
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"id must be an integer, string or object, got {value!r}")
    return str(value)


def parse_predictions(*, text: str, fmt: str = "auto") -> list[ParsedPrediction]:
    """Read (line, id, value) triples; structure only, no task knowledge yet."""
    if fmt not in PREDICTION_FORMATS:
        raise PredictionError(f"unknown format {fmt!r}; one of {', '.join(PREDICTION_FORMATS)}")
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise PredictionError("line 1: the file is empty")
    if fmt == "auto":
        fmt = "glue_tsv" if not first.lstrip().startswith("{") else "jsonl"
    if fmt == "glue_tsv":
        return _parse_tsv(lines)
    return _parse_jsonl(lines, value_key="label" if fmt == "superglue" else None)


def _parse_tsv(lines: list[str]) -> list[ParsedPrediction]:
    header_at = next(i for i, line in enumerate(lines) if line.strip())
    header = lines[header_at].rstrip("\r").split("\t")
    if [h.strip().lower() for h in header] != ["index", "prediction"]:
        raise PredictionError(
            f"line {header_at + 1}: expected the GLUE header 'index<TAB>prediction', got {header!r}"
        )
    parsed = []
    for number, line in enumerate(lines[header_at + 1 :], start=header_at + 2):
        if not line.strip():
            continue
        cells = line.rstrip("\r").split("\t")
        if len(cells) != 2:
            raise PredictionError(
                f"line {number}: expected 2 tab-separated columns, got {len(cells)}"
            )
        parsed.append(ParsedPrediction(line=number, id=cells[0].strip(), value=cells[1].strip()))
    return parsed


def _parse_jsonl(lines: list[str], *, value_key: str | None) -> list[ParsedPrediction]:
    parsed = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PredictionError(f"line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise PredictionError(f"line {number}: expected a JSON object")
        # Without an explicit format, accept either key: Podium's or SuperGLUE's.
        key = value_key or ("prediction" if "prediction" in record else "label")
        if "idx" not in record:
            raise PredictionError(f"line {number}: missing 'idx'")
        if key not in record:
            raise PredictionError(f"line {number}: missing {key!r}")
        try:
            identifier = _canonical_id(record["idx"])
        except TypeError as exc:
            raise PredictionError(f"line {number}: {exc}") from None
        parsed.append(ParsedPrediction(line=number, id=identifier, value=record[key]))
    return parsed


def _convert(task: TaskDefinition, value: Any, gold_row: Mapping[str, Any]) -> Any:
    """Prediction -> the same representation as the gold value; ValueError says why not."""
    if task.label_encoding in ("index", "name"):
        return _class_index(task, value)
    if task.task_type == "regression":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {value!r}")
        return number
    if task.task_type == "sequence_labelling":
        tokens = gold_row[task.input_fields[0]]
        if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
            raise ValueError("expected a list of tag strings")
        if len(value) != len(tokens):
            raise ValueError(f"{len(value)} tags for {len(tokens)} tokens")
        return value
    if task.task_type == "record":
        if not isinstance(value, str):
            raise ValueError(f"expected an answer string, got {value!r}")
        return value
    raise ValueError(f"no prediction format defined for task type {task.task_type!r}")


def _class_index(task: TaskDefinition, value: Any) -> int:
    labels = task.labels
    if isinstance(value, bool):
        value = str(value)  # SuperGLUE JSON true/false -> "True"/"False"
    if isinstance(value, str):
        text = value.strip()
        if text in labels:
            return labels.index(text)
        folded = [label.lower() for label in labels]
        if text.lower() in folded:
            return folded.index(text.lower())
        if text.lstrip("-").isdigit():
            value = int(text)
        else:
            raise ValueError(f"{value!r} is not a label of this task ({', '.join(labels)})")
    if isinstance(value, int) and 0 <= value < len(labels):
        return value
    raise ValueError(
        f"{value!r} is neither a label name nor an index 0..{len(labels) - 1} ({', '.join(labels)})"
    )


def _gold_value(task: TaskDefinition, row: Mapping[str, Any]) -> Any:
    value = row[task.label_field]
    if task.label_encoding == "name":
        return task.labels.index(value)
    return value


def _groups(metric_key: str, rows: Sequence[Mapping[str, Any]]) -> list[Hashable] | None:
    if metric_key == "multirc_em":
        # One question = one (paragraph, question) pair across its answer options.
        return [(row["idx"]["paragraph"], row["idx"]["question"]) for row in rows]
    if metric_key == "gender_parity":
        # AX-g lists each minimal pair as consecutive rows 2k, 2k+1.
        return [
            (row["idx"] if isinstance(row.get("idx"), int) else position) // 2
            for position, row in enumerate(rows)
        ]
    return None


def score_predictions(
    *,
    task: TaskDefinition,
    rows: Sequence[Mapping[str, Any]],
    predictions: Sequence[ParsedPrediction],
    split: str = "",
) -> dict[str, float]:
    """Check predictions against gold rows (ids, count, labels) and compute every metric."""
    gold, ordered = _aligned(task=task, rows=rows, predictions=predictions, split=split)
    return {
        spec.key: compute_metric(
            spec.key, gold=gold, predictions=ordered, groups=_groups(spec.key, rows)
        )
        for spec in task.metrics
    }


CLASSIFICATION_TYPES = frozenset({"single_sentence_classification", "pair_classification"})


def per_class_scores(
    *,
    task: TaskDefinition,
    rows: Sequence[Mapping[str, Any]],
    predictions: Sequence[ParsedPrediction],
    split: str = "",
) -> dict[str, float]:
    """Precision, recall, F1 and support of every class of a classification task, keyed
    `per_class/<label>/<figure>`; empty for other task types. Checked as score_predictions."""
    if task.task_type not in CLASSIFICATION_TYPES or not task.labels:
        return {}
    gold, ordered = _aligned(task=task, rows=rows, predictions=predictions, split=split)
    figures: dict[str, float] = {}
    for index, label in enumerate(task.labels):
        true_positive = sum(1 for g, p in zip(gold, ordered, strict=True) if g == p == index)
        predicted = sum(1 for p in ordered if p == index)
        support = sum(1 for g in gold if g == index)
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / support if support else 0.0
        total = precision + recall
        figures[f"per_class/{label}/precision"] = precision
        figures[f"per_class/{label}/recall"] = recall
        figures[f"per_class/{label}/f1"] = 2 * precision * recall / total if total else 0.0
        figures[f"per_class/{label}/support"] = float(support)
    return figures


def _aligned(
    *,
    task: TaskDefinition,
    rows: Sequence[Mapping[str, Any]],
    predictions: Sequence[ParsedPrediction],
    split: str,
) -> tuple[list[Any], list[Any]]:
    """Gold values and predictions in row order, after checking ids, count and labels."""
    where = f"{task.qualified_key}" + (f" split {split!r}" if split else "")
    unlabelled = sum(1 for row in rows if not has_gold_labels(task, row))
    if unlabelled:
        raise PredictionError(
            f"{where}: {unlabelled} of {len(rows)} rows have no gold label (label -1 or empty: "
            "the benchmark keeps these test labels private), so predictions cannot be scored "
            "here; score a labelled split such as "
            f"{task.eval_split!r} or submit to the official server"
        )
    ids = {row_id(task, row, position): position for position, row in enumerate(rows)}
    # SuperGLUE's ReCoRD submissions name the query id alone.
    aliases: dict[str, str] = {}
    if task.task_type == "record":
        aliases = {str(row["idx"]["query"]): row_id(task, row, i) for i, row in enumerate(rows)}

    values: dict[int, Any] = {}
    first_line: dict[int, int] = {}
    for prediction in predictions:
        identifier = (
            prediction.id if prediction.id in ids else aliases.get(prediction.id, prediction.id)
        )
        if identifier not in ids:
            raise PredictionError(f"line {prediction.line}: id {prediction.id!r} is not in {where}")
        position = ids[identifier]
        if position in first_line:
            raise PredictionError(
                f"line {prediction.line}: id {prediction.id!r} was already predicted on line "
                f"{first_line[position]}"
            )
        try:
            values[position] = _convert(task, prediction.value, rows[position])
        except ValueError as exc:
            raise PredictionError(f"line {prediction.line}: id {prediction.id!r}: {exc}") from None
        first_line[position] = prediction.line
    if len(values) != len(rows):
        missing = [row_id(task, row, i) for i, row in enumerate(rows) if i not in values]
        raise PredictionError(
            f"{where}: expected {len(rows)} predictions, got {len(values)}; "
            f"missing ids: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
        )

    gold = [_gold_value(task, row) for row in rows]
    ordered = [values[i] for i in range(len(rows))]
    return gold, ordered


def rescore_file(
    *,
    task: TaskDefinition,
    split: str,
    path: Path,
    fmt: str = "auto",
    data_dir: Path | None = None,
) -> RescoreResult:
    """Parse a predictions file and score it against the split's gold rows."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictionError(f"{path}: cannot read predictions ({exc})") from None
    loaded = load_split(task, split, data_dir=data_dir)
    parsed = parse_predictions(text=text, fmt=fmt)
    metrics = score_predictions(task=task, rows=loaded.rows, predictions=parsed, split=split)
    return RescoreResult(
        task=task.qualified_key,
        split=split,
        num_predictions=len(parsed),
        data_sha256=loaded.sha256,
        metrics=tuple(metrics.items()),
    )
