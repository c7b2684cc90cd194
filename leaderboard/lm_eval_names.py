"""Which lm-eval task evaluates which Podium task, and how their metric names correspond.

Defined once, standard library only: the lm-eval runner (runners/evaluation) builds its
task YAML from it, and the `podium` client maps an lm-eval results file onto Podium tasks
and metrics with it, without importing torch or lm-eval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LM_EVAL_TASKS", "LOCAL_TASK_PREFIX", "LmEvalTask", "lm_eval_task_by_name"]

# The runner evaluates a local copy of each task, named with this prefix.
LOCAL_TASK_PREFIX = "podium_"


@dataclass(frozen=True, kw_only=True)
class LmEvalTask:
    name: str  # lm-eval task name
    yaml: str  # installed YAML, relative to lm_eval/tasks
    # generate_until tasks answer in text (a filtered label index), others by log-likelihood.
    generative: bool = False
    # Extra YAML keys; polemo2's default metrics need the hub (evaluate.load).
    overrides: Mapping[str, Any] | None = None
    # lm-eval metric name (before its ",filter" suffix) -> Podium metric key.
    metrics: Mapping[str, str] = field(default_factory=dict)
    # Why lm-eval's figures cannot stand for Podium's metrics, where they cannot.
    unmapped_reason: str = ""


_EXACT_MATCH = {
    "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}]
}
_ACCURACY = {"acc": "accuracy"}
_ACCURACY_F1 = {"acc": "accuracy", "f1": "f1"}
# PolEmo2 is single-label: micro-F1 (lm-eval's default) and exact match both equal accuracy.
_POLEMO = {"f1": "accuracy", "exact_match": "accuracy"}
# PolEmo2's answer is one letter (A-D) that lm-eval's "score-first" filter takes from the
# start of the generation ("\nA - Neutralny ..."), but the installed YAML lets it run to 50
# tokens (its stop strings "." and "," rarely come). Five tokens still hold the letter, and
# cut SmolLM2-135M on CPU from 30 to 12 s per request (16 dev reviews, one batch). The key
# replaces the included one whole (lm-eval merges YAML keys shallowly), so all are given.
_POLEMO_GENERATION = {
    "generation_kwargs": {
        "until": [".", ","],
        "do_sample": False,
        "temperature": 0.0,
        "max_gen_toks": 5,
    }
}

LM_EVAL_TASKS: dict[str, LmEvalTask] = {
    "glue/cola": LmEvalTask(name="cola", yaml="glue/cola/default.yaml", metrics={"mcc": "mcc"}),
    "glue/sst2": LmEvalTask(name="sst2", yaml="glue/sst2/default.yaml", metrics=_ACCURACY),
    "glue/mrpc": LmEvalTask(name="mrpc", yaml="glue/mrpc/default.yaml", metrics=_ACCURACY_F1),
    "glue/qqp": LmEvalTask(name="qqp", yaml="glue/qqp/default.yaml", metrics=_ACCURACY_F1),
    "glue/mnli_matched": LmEvalTask(name="mnli", yaml="glue/mnli/default.yaml", metrics=_ACCURACY),
    "glue/mnli_mismatched": LmEvalTask(
        name="mnli_mismatch", yaml="glue/mnli/mismatch.yaml", metrics=_ACCURACY
    ),
    "glue/qnli": LmEvalTask(name="qnli", yaml="glue/qnli/default.yaml", metrics=_ACCURACY),
    "glue/rte": LmEvalTask(name="rte", yaml="glue/rte/default.yaml", metrics=_ACCURACY),
    "glue/wnli": LmEvalTask(name="wnli", yaml="glue/wnli/default.yaml", metrics=_ACCURACY),
    "superglue/boolq": LmEvalTask(
        name="boolq", yaml="super_glue/boolq/default.yaml", metrics=_ACCURACY
    ),
    # lm-eval's cb f1 is the mean of the three per-class F1s: macro F1.
    "superglue/cb": LmEvalTask(
        name="cb",
        yaml="super_glue/cb/default.yaml",
        metrics={"acc": "accuracy", "f1": "macro_f1"},
    ),
    "superglue/copa": LmEvalTask(
        name="copa", yaml="super_glue/copa/default.yaml", metrics=_ACCURACY
    ),
    "superglue/multirc": LmEvalTask(
        name="multirc",
        yaml="super_glue/multirc/default.yaml",
        unmapped_reason=(
            "lm-eval's multirc reports per-answer accuracy only, while Podium scores MultiRC "
            "by f1a and exact match per question"
        ),
    ),
    "superglue/record": LmEvalTask(
        name="record",
        yaml="super_glue/record/default.yaml",
        metrics={"f1": "record_f1", "em": "record_em"},
    ),
    "superglue/rte": LmEvalTask(
        name="sglue_rte", yaml="super_glue/rte/default.yaml", metrics=_ACCURACY
    ),
    "superglue/wic": LmEvalTask(name="wic", yaml="super_glue/wic/default.yaml", metrics=_ACCURACY),
    "superglue/wsc": LmEvalTask(name="wsc", yaml="super_glue/wsc/default.yaml", metrics=_ACCURACY),
    "lepiszcze/klej-polemo2-in": LmEvalTask(
        name="polemo2_in",
        yaml="polemo2/polemo2_in.yaml",
        generative=True,
        overrides={**_EXACT_MATCH, **_POLEMO_GENERATION},
        metrics=_POLEMO,
    ),
    "lepiszcze/klej-polemo2-out": LmEvalTask(
        name="polemo2_out",
        yaml="polemo2/polemo2_out.yaml",
        generative=True,
        overrides={**_EXACT_MATCH, **_POLEMO_GENERATION},
        metrics=_POLEMO,
    ),
}

_BY_NAME = {spec.name: (task, spec) for task, spec in LM_EVAL_TASKS.items()}


def lm_eval_task_by_name(name: str) -> tuple[str, LmEvalTask] | None:
    """The Podium task ("benchmark/key") and spec of an lm-eval task name, or None.

    Accepts the runner's local names too ("podium_sst2").
    """
    return _BY_NAME.get(name.removeprefix(LOCAL_TASK_PREFIX))
