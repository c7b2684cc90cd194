"""Encoder fine-tuning methods: full, BitFit, LoRA, IA3, prompt tuning, DyLoRA, MeZO, GaLore.

Only names and hyperparameter schemas live here; the training code (torch, transformers,
peft, pytorch-optimizer) is imported inside each run function, so reading the registry
never loads torch.
"""

from __future__ import annotations

from typing import Any

from runners.context import JobContext, MethodOutput
from runners.registry import register_method

TASK_TYPES = frozenset(
    {
        "single_sentence_classification",
        "pair_classification",
        "diagnostic",
        "regression",
        "multiple_choice",
        "multirc",
        "record",
        "sequence_labelling",
    }
)


def _number(default: float, description: str, *, minimum: float = 0.0) -> dict[str, Any]:
    return {"type": "number", "default": default, "minimum": minimum, "description": description}


def _integer(default: int, description: str, *, minimum: int = 0) -> dict[str, Any]:
    return {"type": "integer", "default": default, "minimum": minimum, "description": description}


def _training_properties(
    *, learning_rate: float, epochs: float = 3.0, batch_size: int = 16
) -> dict[str, Any]:
    return {
        "learning_rate": _number(learning_rate, "Peak learning rate.", minimum=0.0),
        "batch_size": _integer(batch_size, "Training examples per step.", minimum=1),
        "eval_batch_size": _integer(64, "Examples per evaluation batch.", minimum=1),
        "epochs": _number(epochs, "Passes over the training rows (ignored if max_steps > 0)."),
        "max_steps": _integer(0, "Optimizer steps; 0 derives them from epochs."),
        "warmup_ratio": {**_number(0.06, "Share of steps with linear warm-up."), "maximum": 1},
        "weight_decay": _number(0.01, "Decoupled weight decay (not on biases/LayerNorm)."),
        "max_length": _integer(128, "Tokens per sequence after truncation.", minimum=8),
        "max_train_examples": _integer(0, "Seeded sample of the training rows; 0 = all."),
        "log_every": _integer(
            10, "Report loss, learning rate and throughput every N steps.", minimum=1
        ),
        "max_grad_norm": _number(1.0, "Gradient clipping norm; 0 disables."),
    }


def _gradient_properties(**kwargs: Any) -> dict[str, Any]:
    return {
        **_training_properties(**kwargs),
        "optimizer": {
            "type": "string",
            "enum": ["adamw", "sophia", "soap"],
            "default": "adamw",
            "description": "AdamW (torch), SophiaH or SOAP (pytorch-optimizer).",
        },
    }


def _mezo_properties() -> dict[str, Any]:
    properties = _training_properties(learning_rate=1e-5, epochs=5.0)
    # MeZO has no gradient to clip; its learning rate decays linearly without warm-up.
    del properties["max_grad_norm"], properties["warmup_ratio"]
    return {
        **properties,
        "weight_decay": _number(0.0, "Weight decay applied with each update."),
        "eps": _number(1e-3, "Perturbation scale.", minimum=1e-9),
        "parameters": {
            "type": "string",
            "enum": ["full", "lora"],
            "default": "full",
            "description": "Perturb every weight, or LoRA adapters plus the task head "
            "(the paper's MeZO (LoRA) variant).",
        },
        "r": _integer(8, "LoRA rank when parameters is 'lora'.", minimum=1),
        "alpha": _number(16.0, "LoRA scaling numerator when parameters is 'lora'."),
    }


def _schema(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False}


_MODULES = {
    "type": ["array", "null"],
    "items": {"type": "string"},
    "default": None,
    "description": "Module names to adapt; null = peft's default for the architecture.",
}

_LORA = {
    "r": _integer(8, "LoRA rank.", minimum=1),
    "alpha": _number(16.0, "LoRA scaling numerator (scaling = alpha / r)."),
    "dropout": {**_number(0.1, "Dropout on the LoRA input."), "maximum": 1},
    "target_modules": _MODULES,
}


def _run(context: JobContext, method: str) -> MethodOutput:
    from runners.training.loop import run_finetuning

    return run_finetuning(context, method=method)


@register_method(
    key="full_finetuning",
    name="Full fine-tuning",
    description="Every weight of the encoder and a new task head trained with backprop.",
    paper_url="https://arxiv.org/abs/1810.04805",
    schema=_schema(_gradient_properties(learning_rate=5e-5)),
    task_types=TASK_TYPES,
)
def full_finetuning(context: JobContext) -> MethodOutput:
    return _run(context, "full")


@register_method(
    key="bitfit",
    name="BitFit",
    description="Only the bias terms (and the new task head) are trained.",
    paper_url="https://arxiv.org/abs/2106.10199",
    schema=_schema(_gradient_properties(learning_rate=1e-3)),
    task_types=TASK_TYPES,
)
def bitfit(context: JobContext) -> MethodOutput:
    return _run(context, "bitfit")


@register_method(
    key="lora",
    name="LoRA",
    description="Low-rank adapters (peft) on the attention projections, merged for inference.",
    paper_url="https://arxiv.org/abs/2106.09685",
    schema=_schema({**_gradient_properties(learning_rate=5e-4), **_LORA}),
    task_types=TASK_TYPES,
)
def lora(context: JobContext) -> MethodOutput:
    return _run(context, "lora")


@register_method(
    key="ia3",
    name="IA3",
    description="Learned rescaling vectors on keys, values and feed-forward activations (peft).",
    paper_url="https://arxiv.org/abs/2205.05638",
    schema=_schema(
        {
            **_gradient_properties(learning_rate=5e-3),
            "target_modules": _MODULES,
            "feedforward_modules": {
                **_MODULES,
                "description": "Which target_modules are feed-forward (with target_modules).",
            },
        }
    ),
    task_types=TASK_TYPES,
)
def ia3(context: JobContext) -> MethodOutput:
    return _run(context, "ia3")


@register_method(
    key="prompt_tuning",
    name="Prompt tuning",
    description="Trainable soft-prompt embeddings prepended to the input (peft); body frozen.",
    paper_url="https://arxiv.org/abs/2104.08691",
    schema=_schema(
        {
            **_gradient_properties(learning_rate=3e-2),
            "num_virtual_tokens": _integer(20, "Soft-prompt length.", minimum=1),
        }
    ),
    task_types=TASK_TYPES,
)
def prompt_tuning(context: JobContext) -> MethodOutput:
    return _run(context, "prompt_tuning")


@register_method(
    key="dylora",
    name="DyLoRA",
    description=(
        "One LoRA trained over a range of ranks (a rank sampled per step, the bottleneck "
        "truncated to it); evaluated at several ranks, scores per rank in extra_scores, "
        "predictions at the top rank."
    ),
    paper_url="https://arxiv.org/abs/2210.07558",
    schema=_schema(
        {
            **_gradient_properties(learning_rate=1e-3),
            **_LORA,
            "min_rank": _integer(1, "Smallest rank sampled during training.", minimum=1),
            "eval_ranks": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "default": [1, 2, 4, 8],
                "description": "Ranks to evaluate at (the top rank r is always added).",
            },
        }
    ),
    task_types=TASK_TYPES,
)
def dylora(context: JobContext) -> MethodOutput:
    return _run(context, "dylora")


@register_method(
    key="mezo",
    name="MeZO",
    description=(
        "Zeroth-order SGD: two forward passes per step at +/- a seeded random perturbation, "
        "parameters updated in place; memory close to inference."
    ),
    paper_url="https://arxiv.org/abs/2305.17333",
    schema=_schema(_mezo_properties()),
    task_types=TASK_TYPES,
)
def mezo(context: JobContext) -> MethodOutput:
    return _run(context, "mezo")


@register_method(
    key="galore",
    name="GaLore",
    description=(
        "Full-parameter training whose Adam state lives in a low-rank projection of each "
        "weight matrix's gradient (pytorch-optimizer's GaLore)."
    ),
    paper_url="https://arxiv.org/abs/2403.03507",
    schema=_schema(
        {
            # Low-rank updates are small: GaLore wants a larger step than full fine-tuning.
            **_training_properties(learning_rate=3e-4),
            "rank": _integer(8, "Projection rank.", minimum=1),
            "update_proj_gap": _integer(
                100, "Steps between projection (SVD) refreshes.", minimum=1
            ),
            "scale": _number(4.0, "Scale of the projected-back update."),
            "projection_type": {
                "type": "string",
                "enum": ["std", "reverse_std", "right", "left", "full"],
                "default": "std",
                "description": "Which side of the gradient is projected.",
            },
        }
    ),
    task_types=TASK_TYPES,
)
def galore(context: JobContext) -> MethodOutput:
    return _run(context, "galore")
