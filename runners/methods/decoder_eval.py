"""Zero/few-shot evaluation of decoder language models through lm-eval's Python API.

The run function imports lm_eval and torch lazily (runners.evaluation.lm_eval_runner).
"""

from __future__ import annotations

from runners.context import JobContext, MethodOutput
from runners.registry import register_method

# Podium task types that lm-eval covers for at least one catalog task; the runner raises
# a clear error for tasks lm-eval lacks (STS-B, the LEPISZCZE tagging tasks, ...).
TASK_TYPES = frozenset(
    {
        "single_sentence_classification",
        "pair_classification",
        "regression",
        "multiple_choice",
        "multirc",
        "record",
    }
)


@register_method(
    key="lm_eval",
    name="lm-eval (decoder, in-context)",
    description=(
        "Scores a causal language model with EleutherAI's lm-evaluation-harness on its "
        "GLUE, SuperGLUE and Polish (KLEJ PolEmo2) tasks, reading Podium's local data files; "
        "per-example answers become the run's predictions."
    ),
    paper_url="https://github.com/EleutherAI/lm-evaluation-harness",
    schema={
        "type": "object",
        "properties": {
            "num_fewshot": {
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "description": "In-context examples per prompt (drawn from the training split).",
            },
            "batch_size": {
                "type": "integer",
                "minimum": 1,
                "default": 8,
                "description": "Requests per forward batch.",
            },
            "apply_chat_template": {
                "type": "boolean",
                "default": False,
                "description": "Wrap prompts in the model's chat template (instruct models).",
            },
            "max_length": {
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "description": "Context window in tokens; 0 = the model's own.",
            },
        },
        "additionalProperties": False,
    },
    task_types=TASK_TYPES,
)
def lm_eval_method(context: JobContext) -> MethodOutput:
    from runners.evaluation.lm_eval_runner import run_lm_eval

    return run_lm_eval(context)
