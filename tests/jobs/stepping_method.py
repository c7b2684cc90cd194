"""A method for job tests: N timed steps with a falling loss, then majority-class predictions.

Loaded into worker processes through PODIUM_METHOD_MODULES, the same plug-in path a
third-party method uses. Each step takes `step_seconds` so a test can act mid-job.
"""

from __future__ import annotations

import time
from collections import Counter

from runners.context import JobContext, MethodOutput
from runners.registry import register_method
from runners.reporting import check_cancelled


@register_method(
    key="test-stepper",
    name="Test stepper",
    schema={
        "type": "object",
        "properties": {
            "steps": {"type": "integer", "minimum": 1, "default": 5},
            "step_seconds": {"type": "number", "minimum": 0, "default": 0.0},
            "fail_at_step": {"type": "integer", "default": -1},
            "checkpoint_bytes": {"type": "integer", "minimum": 0, "default": 0},
            "optimizer_state_bytes": {"type": "integer", "minimum": 0, "default": 0},
        },
        "additionalProperties": False,
    },
    task_types={"single_sentence_classification", "pair_classification"},
)
def stepper(context: JobContext) -> MethodOutput:
    steps = int(context.config["steps"])
    for step in range(1, steps + 1):
        check_cancelled(context.reporter)
        if step == context.config["fail_at_step"]:
            raise RuntimeError(f"diverged at step {step}")
        time.sleep(float(context.config["step_seconds"]))  # stands in for a training step
        context.reporter.log_metrics({"loss": 1.0 / step, "learning_rate": 1e-3}, step=step)
        context.reporter.progress(step=step, total_steps=steps, examples_per_second=100.0)
        context.reporter.log(f"step {step}/{steps}")
    labels = Counter(row[context.task.label_field] for row in context.rows(context.train_split))
    majority = labels.most_common(1)[0][0]
    files = {}
    if context.config["checkpoint_bytes"]:
        checkpoint = context.workdir / "checkpoint.bin"
        checkpoint.write_bytes(bytes(range(256)) * (context.config["checkpoint_bytes"] // 256 + 1))
        files["checkpoint.bin"] = checkpoint
    if context.config["optimizer_state_bytes"]:
        state = context.workdir / "optimizer.bin"
        state.write_bytes(b"\x01" * context.config["optimizer_state_bytes"])
        files["optimizer.bin"] = state
    return MethodOutput(
        predictions=[majority] * len(context.rows(context.eval_split)),
        trainable_parameters=1,
        files=files,
    )
