"""MeZO (Malladi et al., 2023): zeroth-order SGD with forward passes only, in place.

Each step draws z ~ N(0, I) from a fresh seed, evaluates the loss at theta + eps*z and
theta - eps*z, restores theta, and moves along z by the projected gradient
(l+ - l-) / (2 eps). z is never stored: it is regenerated from its seed, so memory stays
at inference level (no gradients, no optimizer state, no activations kept).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from runners.training import adapters
from runners.training.encoding import TaskFormat

# What MeZO perturbs: every weight (the paper's main setting) or, as in its MeZO (LoRA)
# variant, low-rank adapters plus the task head. Fewer dimensions means less variance in
# each zeroth-order estimate, so the adapter variant learns in far fewer steps.
PARAMETER_SETS = ("full", "lora")


def mezo_parameters(model: Any, *, fmt: TaskFormat, config: Mapping[str, Any]) -> Any:
    """The model with only the parameters MeZO should perturb marked trainable."""
    chosen = config.get("parameters", "full")
    if chosen == "full":
        return model
    if chosen == "lora":
        return adapters.apply_lora(
            model, fmt=fmt, config={"dropout": 0.0, "target_modules": None, **config}
        )
    raise ValueError(f"mezo: parameters {chosen!r} is not one of {', '.join(PARAMETER_SETS)}")


def _perturb(parameters: Sequence[torch.nn.Parameter], *, seed: int, scale: float) -> None:
    generator = torch.Generator(device=parameters[0].device).manual_seed(seed)
    for parameter in parameters:
        z = torch.randn(
            parameter.shape,
            generator=generator,
            device=parameter.device,
            dtype=parameter.dtype,
        )
        parameter.data.add_(z, alpha=scale)


@torch.no_grad()
def mezo_step(
    parameters: Sequence[torch.nn.Parameter],
    loss_fn: Callable[[], torch.Tensor],
    *,
    seed: int,
    eps: float,
    learning_rate: float,
    weight_decay: float = 0.0,
) -> tuple[float, float]:
    """One MeZO-SGD step; returns (loss at theta + eps z, projected gradient)."""
    _perturb(parameters, seed=seed, scale=eps)
    loss_plus = float(loss_fn())
    _perturb(parameters, seed=seed, scale=-2 * eps)
    loss_minus = float(loss_fn())
    _perturb(parameters, seed=seed, scale=eps)
    projected_grad = (loss_plus - loss_minus) / (2 * eps)
    if weight_decay:
        for parameter in parameters:
            parameter.data.mul_(1 - learning_rate * weight_decay)
    _perturb(parameters, seed=seed, scale=-learning_rate * projected_grad)
    return loss_plus, projected_grad
