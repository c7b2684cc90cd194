"""Which parameters a method trains: full, BitFit, peft adapters (LoRA, IA3, prompt
tuning) and DyLoRA, a LoRA trained over a range of ranks at once.

DyLoRA (Valipour et al., 2023) is not in peft. It is built on peft's LoRA here: a hook on
every `lora_B` masks the LoRA bottleneck to its first b dimensions and the layer's scaling
becomes alpha / b, so one set of weights serves every rank b <= r. Training samples b per
step; evaluation sets b to each requested rank in turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from runners.training.encoding import TaskFormat


def count_trainable(model: Any) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def head_parameter_names(model: Any) -> set[str]:
    """Parameters outside the pretrained body (the newly initialised task head)."""
    prefix = f"{model.base_model_prefix}."
    return {name for name, _ in model.named_parameters() if not name.startswith(prefix)}


def apply_bitfit(model: Any) -> Any:
    """BitFit (Ben Zaken et al., 2022): train only bias terms, plus the new task head."""
    head = head_parameter_names(model)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in head or name.endswith(".bias"))
    return model


def _peft_task_type(fmt: TaskFormat) -> Any:
    from peft import TaskType

    return TaskType.TOKEN_CLS if fmt.kind == "tokens" else TaskType.SEQ_CLS


def _targets(value: Sequence[str] | None) -> list[str] | None:
    return list(value) if value else None  # None: peft's default for the architecture


def apply_lora(model: Any, *, fmt: TaskFormat, config: Mapping[str, Any]) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        task_type=_peft_task_type(fmt),
        r=int(config["r"]),
        lora_alpha=config["alpha"],
        lora_dropout=float(config["dropout"]),
        target_modules=_targets(config.get("target_modules")),
    )
    return get_peft_model(model, lora)


def apply_ia3(model: Any, *, fmt: TaskFormat, config: Mapping[str, Any]) -> Any:
    from peft import IA3Config, get_peft_model

    targets = _targets(config.get("target_modules"))
    feedforward = _targets(config.get("feedforward_modules"))
    ia3 = IA3Config(
        task_type=_peft_task_type(fmt),
        target_modules=targets,
        feedforward_modules=feedforward if targets else None,
    )
    return get_peft_model(model, ia3)


def apply_prompt_tuning(model: Any, *, fmt: TaskFormat, config: Mapping[str, Any]) -> Any:
    from peft import PromptTuningConfig, PromptTuningInit, get_peft_model

    prompt = PromptTuningConfig(
        task_type=_peft_task_type(fmt),
        num_virtual_tokens=int(config["num_virtual_tokens"]),
        prompt_tuning_init=PromptTuningInit.RANDOM,
    )
    return get_peft_model(model, prompt)


@dataclass
class DyLoRAController:
    """Selects the active LoRA rank b of every adapted layer of a peft LoRA model."""

    layers: list[Any]
    adapter: str
    max_rank: int
    alpha: float
    mask: torch.Tensor
    rank: int

    @classmethod
    def attach(cls, model: Any, *, max_rank: int, alpha: float) -> DyLoRAController:
        from peft.tuners.lora import LoraLayer

        layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
        if not layers:
            raise ValueError("DyLoRA: the model has no LoRA layers")
        adapter = "default"
        device = next(model.parameters()).device
        controller = cls(
            layers=layers,
            adapter=adapter,
            max_rank=max_rank,
            alpha=alpha,
            mask=torch.ones(max_rank, device=device),
            rank=max_rank,
        )
        for layer in layers:
            layer.lora_B[adapter].register_forward_pre_hook(controller._mask_input)
        return controller

    def _mask_input(self, module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        # The input of lora_B is the r-dimensional bottleneck A(x); zero dimensions >= b.
        return (args[0] * self.mask.to(args[0].dtype), *args[1:])

    def set_rank(self, rank: int) -> None:
        if not 1 <= rank <= self.max_rank:
            raise ValueError(f"DyLoRA rank {rank} is outside 1..{self.max_rank}")
        self.rank = rank
        self.mask.zero_()
        self.mask[:rank] = 1.0
        for layer in self.layers:
            layer.scaling[self.adapter] = self.alpha / rank

    def trainable_at_rank(self, model: Any, rank: int) -> int:
        """Parameters a rank-`rank` adapter stores: truncated A and B, plus the head."""
        total = 0
        for name, parameter in model.named_parameters():
            if not parameter.requires_grad:
                continue
            if ".lora_A." in name:
                total += rank * parameter.shape[1]
            elif ".lora_B." in name:
                total += parameter.shape[0] * rank
            else:
                total += parameter.numel()
        return total
