"""Reference baselines that need no model: they anchor every leaderboard's bottom line."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from typing import Any

from leaderboard.catalog import TaskDefinition
from runners.context import JobContext, MethodOutput
from runners.registry import register_method
from runners.reporting import check_cancelled

CLASSIFICATION = {"single_sentence_classification", "pair_classification", "diagnostic"}


def _label(task: TaskDefinition, row: dict[str, Any]) -> Any:
    return row[task.label_field]


@register_method(
    key="majority",
    name="Majority class",
    description=(
        "Predicts the most frequent training label (the training mean for regression). "
        "The floor every trained method must clear."
    ),
    schema={"type": "object", "properties": {}, "additionalProperties": False},
    task_types=CLASSIFICATION | {"regression"},
)
def majority(context: JobContext) -> MethodOutput:
    task = context.task
    train = context.rows(context.train_split)
    check_cancelled(context.reporter)
    if task.task_type == "regression":
        value: Any = statistics.fmean(float(_label(task, row)) for row in train)
    else:
        counts = Counter(_label(task, row) for row in train)
        # Ties go to the label listed first in the catalog, so the result is deterministic.
        order = {label: i for i, label in enumerate(task.labels)}
        value = min(
            counts, key=lambda label: (-counts[label], order.get(label, len(order)), str(label))
        )
    eval_rows = context.rows(context.eval_split)
    context.reporter.progress(step=1, total_steps=1)
    context.reporter.log_metrics({"train_examples": float(len(train))}, step=1)
    return MethodOutput(predictions=[value] * len(eval_rows), trainable_parameters=0)


@register_method(
    key="random",
    name="Random guess",
    description="Predicts a label drawn from the training distribution, seeded.",
    schema={"type": "object", "properties": {}, "additionalProperties": False},
    task_types=CLASSIFICATION,
)
def random_guess(context: JobContext) -> MethodOutput:
    task = context.task
    train_labels = [_label(task, row) for row in context.rows(context.train_split)]
    rng = random.Random(context.seed)
    eval_rows = context.rows(context.eval_split)
    predictions = []
    for i, _ in enumerate(eval_rows):
        if i % 1000 == 0:
            check_cancelled(context.reporter)
            context.reporter.progress(step=i, total_steps=len(eval_rows))
        predictions.append(rng.choice(train_labels))
    return MethodOutput(predictions=predictions, trainable_parameters=0)
