"""`transformers.data.metrics.squad_metrics` for transformers >= 5, which removed it.

lm-eval 0.4.13's ReCoRD task (and a few others) import `compute_exact` / `compute_f1`
from there. These are the SQuAD v2 evaluation script's definitions.
"""

from __future__ import annotations

import collections
import re
import string
import sys
import types

MODULE = "transformers.data.metrics.squad_metrics"


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def get_tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def compute_exact(a_gold: str, a_pred: str) -> int:
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    gold_toks, pred_toks = get_tokens(a_gold), get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if not gold_toks or not pred_toks:
        return float(gold_toks == pred_toks)
    if num_same == 0:
        return 0.0
    precision, recall = num_same / len(pred_toks), num_same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def install() -> None:
    """Register the module unless the installed transformers still has it."""
    try:
        __import__(MODULE)
        return
    except ImportError:
        pass
    import transformers.data

    parent = sys.modules.get("transformers.data.metrics")
    if parent is None:
        parent = types.ModuleType("transformers.data.metrics")
        parent.__path__ = []  # a package, so the submodule import resolves
        sys.modules["transformers.data.metrics"] = parent
        transformers.data.metrics = parent  # type: ignore[attr-defined]
    module = types.ModuleType(MODULE)
    module.compute_exact = compute_exact  # type: ignore[attr-defined]
    module.compute_f1 = compute_f1  # type: ignore[attr-defined]
    module.normalize_answer = normalize_answer  # type: ignore[attr-defined]
    sys.modules[MODULE] = module
    parent.squad_metrics = module  # type: ignore[attr-defined]
