"""Metric registry: every metric the catalog's benchmarks use, exactly as they define it.

All metrics return plain floats on their natural scale (0-1 for accuracy/F1/EM/parity,
-1..1 for correlations and MCC). Suite scores convert to the 0-100 leaderboard scale
(see ``leaderboard.suite_score``); nothing here multiplies by 100.

Callers dispatch on the key through ``compute_metric(key, gold=..., predictions=...,
groups=...)``. ``groups`` carries the extra id a few metrics need (MultiRC question ids
for exact match, AX-g minimal-pair ids) and is ignored by the others.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "Metric",
    "MetricError",
    "MetricFunction",
    "compute_metric",
    "get_metric",
    "metric_keys",
    "register_metric",
    "seqeval_entities",
    "squad_normalize",
]


class MetricError(ValueError):
    """Inputs a metric cannot be computed on (empty, mismatched lengths, bad types)."""


# ``fn(*, gold, predictions) -> float``, plus ``groups=`` when ``needs_groups`` is set.
MetricFunction = Callable[..., float]


@dataclass(frozen=True, kw_only=True)
class Metric:
    key: str
    name: str
    higher_is_better: bool
    needs_groups: bool
    fn: MetricFunction

    def __call__(
        self,
        *,
        gold: Sequence[Any],
        predictions: Sequence[Any],
        groups: Sequence[Hashable] | None = None,
    ) -> float:
        return compute_metric(self.key, gold=gold, predictions=predictions, groups=groups)


_REGISTRY: dict[str, Metric] = {}


def register_metric(
    key: str, *, higher_is_better: bool, name: str, needs_groups: bool = False
) -> Callable[[MetricFunction], MetricFunction]:
    """Decorator adding ``fn`` to the registry under ``key``; duplicate keys are a bug."""

    def decorator(fn: MetricFunction) -> MetricFunction:
        if key in _REGISTRY:
            raise ValueError(f"metric {key!r} is already registered")
        _REGISTRY[key] = Metric(
            key=key, name=name, higher_is_better=higher_is_better, needs_groups=needs_groups, fn=fn
        )
        return fn

    return decorator


def get_metric(key: str) -> Metric:
    try:
        return _REGISTRY[key]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise MetricError(f"unknown metric {key!r}; known metrics: {known}") from None


def metric_keys() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def compute_metric(
    key: str,
    *,
    gold: Sequence[Any],
    predictions: Sequence[Any],
    groups: Sequence[Hashable] | None = None,
) -> float:
    """Validate the common preconditions once, then run the registered function."""
    metric = get_metric(key)
    _check_lengths(key, gold, predictions)
    if metric.needs_groups:
        if groups is None:
            raise MetricError(f"{key}: needs groups (one id per item)")
        if len(groups) != len(gold):
            raise MetricError(
                f"{key}: {len(groups)} group ids for {len(gold)} items; lengths must match"
            )
    if metric.needs_groups:
        return float(metric.fn(gold=gold, predictions=predictions, groups=groups))
    return float(metric.fn(gold=gold, predictions=predictions))


def _check_lengths(key: str, gold: Sequence[Any], predictions: Sequence[Any]) -> None:
    if len(gold) == 0:
        raise MetricError(f"{key}: no items to score (empty input)")
    if len(gold) != len(predictions):
        raise MetricError(
            f"{key}: {len(predictions)} predictions for {len(gold)} gold items; lengths must match"
        )


def _encode(gold: Sequence[Any], predictions: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """Map arbitrary hashable labels to dense ints over the union of both sequences."""
    index: dict[Any, int] = {}
    for value in [*gold, *predictions]:
        if value not in index:
            index[value] = len(index)
    g = np.fromiter((index[v] for v in gold), dtype=np.int64, count=len(gold))
    p = np.fromiter((index[v] for v in predictions), dtype=np.int64, count=len(predictions))
    return g, p, len(index)


def _confusion(gold: Sequence[Any], predictions: Sequence[Any]) -> np.ndarray:
    g, p, k = _encode(gold, predictions)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (g, p), 1)
    return matrix


def _f1(tp: float, n_pred: float, n_true: float) -> float:
    # F1 = 2tp / (|pred| + |true|); 0 when both are empty (sklearn's zero_division=0).
    denominator = n_pred + n_true
    return 0.0 if denominator == 0 else 2.0 * tp / denominator


def _as_floats(key: str, values: Sequence[Any]) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricError(f"{key}: values must be numbers ({exc})") from None
    if array.ndim != 1:
        raise MetricError(f"{key}: expected a flat sequence of numbers")
    if not np.all(np.isfinite(array)):
        raise MetricError(f"{key}: values must be finite numbers")
    return array


@register_metric("accuracy", higher_is_better=True, name="Accuracy")
def accuracy(*, gold: Sequence[Any], predictions: Sequence[Any]) -> float:
    return sum(1 for g, p in zip(gold, predictions, strict=True) if g == p) / len(gold)


@register_metric("mcc", higher_is_better=True, name="Matthews corr.")
def matthews_corrcoef(*, gold: Sequence[Any], predictions: Sequence[Any]) -> float:
    # Multi-class generalisation (Gorodkin's R_K); equals the binary MCC for two classes
    # and is GLUE's R3 for the three-class diagnostic set.
    c = _confusion(gold, predictions).astype(np.float64)
    t = c.sum(axis=1)
    p = c.sum(axis=0)
    s = c.sum()
    correct = np.trace(c)
    cov_ytyp = correct * s - float(t @ p)
    cov_ypyp = s * s - float(p @ p)
    cov_ytyt = s * s - float(t @ t)
    if cov_ypyp * cov_ytyt == 0:
        return 0.0  # a constant gold or prediction carries no correlation
    return float(cov_ytyp / math.sqrt(cov_ytyt * cov_ypyp))


@register_metric("f1", higher_is_better=True, name="F1")
def binary_f1(*, gold: Sequence[Any], predictions: Sequence[Any]) -> float:
    # The positive class is 1 (GLUE/SuperGLUE/KLEJ convention); callers encode labels as
    # indices, so labels[1] in the catalog is the positive class.
    tp = sum(1 for g, p in zip(gold, predictions, strict=True) if g == 1 and p == 1)
    n_pred = sum(1 for p in predictions if p == 1)
    n_true = sum(1 for g in gold if g == 1)
    return _f1(tp, n_pred, n_true)


@register_metric("macro_f1", higher_is_better=True, name="Macro-F1")
def macro_f1(*, gold: Sequence[Any], predictions: Sequence[Any]) -> float:
    # Unweighted mean over the labels seen in gold or predictions (sklearn's default set,
    # which is what SuperGLUE CB and LEPISZCZE report).
    c = _confusion(gold, predictions)
    tp = np.diag(c)
    n_pred = c.sum(axis=0)
    n_true = c.sum(axis=1)
    return float(np.mean([_f1(a, b, d) for a, b, d in zip(tp, n_pred, n_true, strict=True)]))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    xm = x - x.mean()
    ym = y - y.mean()
    denominator = math.sqrt(float(xm @ xm) * float(ym @ ym))
    if denominator == 0.0:
        return 0.0  # constant input: undefined correlation scored as no correlation, not NaN
    return max(-1.0, min(1.0, float(xm @ ym) / denominator))


@register_metric("pearson", higher_is_better=True, name="Pearson corr.")
def pearson(*, gold: Sequence[Any], predictions: Sequence[Any]) -> float:
    return _pearson(_as_floats("pearson", gold), _as_floats("pearson", predictions))


@register_metric("spearman", higher_is_better=True, name="Spearman corr.")
def spearman(*, gold: Sequence[Any], predictions: Sequence[Any]) -> float:
    g = rankdata(_as_floats("spearman", gold))
    p = rankdata(_as_floats("spearman", predictions))
    return _pearson(np.asarray(g, dtype=np.float64), np.asarray(p, dtype=np.float64))


@register_metric("f1a", higher_is_better=True, name="F1a")
def multirc_f1a(*, gold: Sequence[Any], predictions: Sequence[Any]) -> float:
    # SuperGLUE MultiRC F1a: binary F1 over all answer options pooled together.
    return binary_f1(gold=gold, predictions=predictions)


@register_metric("multirc_em", higher_is_better=True, name="EM", needs_groups=True)
def multirc_exact_match(
    *, gold: Sequence[Any], predictions: Sequence[Any], groups: Sequence[Hashable]
) -> float:
    # A question counts only if every one of its answer options is labelled correctly.
    all_right: dict[Hashable, bool] = {}
    for g, p, q in zip(gold, predictions, groups, strict=True):
        all_right[q] = all_right.get(q, True) and g == p
    return sum(all_right.values()) / len(all_right)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def squad_normalize(text: str) -> str:
    """SQuAD v1.1 answer normalisation (used unchanged by the official ReCoRD scorer)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _token_f1(prediction: str, gold: str) -> float:
    pred_tokens = squad_normalize(prediction).split()
    gold_tokens = squad_normalize(gold).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _answers(key: str, gold_item: Any) -> list[str]:
    answers = [gold_item] if isinstance(gold_item, str) else list(gold_item)
    if not answers or not all(isinstance(a, str) for a in answers):
        raise MetricError(f"{key}: each gold item must be a non-empty list of answer strings")
    return answers


@register_metric("record_f1", higher_is_better=True, name="F1")
def record_f1(*, gold: Sequence[Any], predictions: Sequence[Any]) -> float:
    # Max token F1 over the gold answers of each query, averaged over queries.
    total = 0.0
    for answers, prediction in zip(gold, predictions, strict=True):
        total += max(_token_f1(str(prediction), a) for a in _answers("record_f1", answers))
    return total / len(gold)


@register_metric("record_em", higher_is_better=True, name="EM")
def record_exact_match(*, gold: Sequence[Any], predictions: Sequence[Any]) -> float:
    total = 0
    for answers, prediction in zip(gold, predictions, strict=True):
        normalized = squad_normalize(str(prediction))
        total += any(normalized == squad_normalize(a) for a in _answers("record_em", answers))
    return total / len(gold)


def seqeval_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Chunks (type, start, end inclusive) as seqeval's default (conlleval-style) mode finds them.

    Accepts IOB1/IOB2/IOE/IOBES prefixes like seqeval does, so scores agree with it on any
    tag sequence, not only well-formed BIO.
    """
    chunks: list[tuple[str, int, int]] = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag = chunk[0]
        type_ = chunk[1:].split("-", maxsplit=1)[-1] or "_"
        if _chunk_ends(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _chunk_starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def _chunk_ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _chunk_starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def _flatten_tags(
    key: str, gold: Sequence[Any], predictions: Sequence[Any]
) -> tuple[list[str], list[str]]:
    flat_gold: list[str] = []
    flat_pred: list[str] = []
    for i, (g, p) in enumerate(zip(gold, predictions, strict=True)):
        if isinstance(g, str) or isinstance(p, str):
            raise MetricError(f"{key}: item {i} must be a list of tags, not a string")
        if len(g) != len(p):
            raise MetricError(f"{key}: item {i} has {len(p)} predicted tags for {len(g)} gold tags")
        for tag in [*g, *p]:
            if not isinstance(tag, str) or not tag:
                raise MetricError(
                    f"{key}: item {i} has a tag that is not a non-empty string: {tag!r}"
                )
        # Sentences are joined with an "O" so no chunk spans a sentence boundary (as seqeval).
        flat_gold.extend([*g, "O"])
        flat_pred.extend([*p, "O"])
    return flat_gold, flat_pred


@register_metric("seqeval_f1", higher_is_better=True, name="Entity F1 (seqeval)")
def seqeval_f1(*, gold: Sequence[Any], predictions: Sequence[Any]) -> float:
    # Micro-averaged entity-level F1: an entity counts only with exact type and span.
    flat_gold, flat_pred = _flatten_tags("seqeval_f1", gold, predictions)
    true_entities = set(seqeval_entities(flat_gold))
    pred_entities = set(seqeval_entities(flat_pred))
    return _f1(len(true_entities & pred_entities), len(pred_entities), len(true_entities))


@register_metric("gender_parity", higher_is_better=True, name="Gender parity", needs_groups=True)
def gender_parity(
    *,
    gold: Sequence[Any],
    predictions: Sequence[Any],
    groups: Sequence[Hashable],
) -> float:
    # AX-g (Winogender): share of minimal pairs, differing only in the pronoun's gender,
    # that get the same prediction. Gold labels do not enter the score.
    by_pair: dict[Hashable, set[Any]] = {}
    for p, pair in zip(predictions, groups, strict=True):
        by_pair.setdefault(pair, set()).add(p)
    return sum(1 for values in by_pair.values() if len(values) == 1) / len(by_pair)
