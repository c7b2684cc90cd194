"""Encoder models with the right head per task kind, their loss, and prediction decoding."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name

from leaderboard.catalog import TaskDefinition
from runners.backbones import ResolvedBackbone
from runners.training.encoding import IGNORE_INDEX, Batch, Encoded, TaskFormat


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on a GPU; full precision on CPU, where bf16 matmuls are slow."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def attention_kernels(
    device: torch.device, *, double_backward: bool = False
) -> contextlib.AbstractContextManager[Any]:
    """The scaled-dot-product attention kernels a forward pass on `device` may use.

    On a GPU, torch prefers cuDNN's attention on Hopper, which builds an execution graph
    per input shape (hundreds of milliseconds each), and with dynamic padding most batches
    are a new shape. The flash and memory-efficient kernels take any shape. No fused
    kernel is twice differentiable, which Sophia's Hessian estimate needs
    (`double_backward`): on an H100 it failed inside cuDNN's attention backward, so those
    steps use the math kernel. On CPU torch's own choice stands.
    """
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if double_backward:
        return sdpa_kernel([SDPBackend.MATH])
    return sdpa_kernel(
        [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    )


@contextlib.contextmanager
def accelerated(device: torch.device, *, double_backward: bool = False) -> Iterator[None]:
    """A forward pass on `device`: bf16 autocast and the attention kernels it may use."""
    with autocast(device), attention_kernels(device, double_backward=double_backward):
        yield


def build_model(
    *, backbone: ResolvedBackbone, task: TaskDefinition, fmt: TaskFormat, device: torch.device
) -> Any:
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    kwargs: dict[str, Any] = dict(backbone.pretrained_kwargs())
    if device.type == "cuda":
        kwargs["attn_implementation"] = "sdpa"
    if fmt.kind == "tokens":
        labels = list(fmt.tags)
        model = AutoModelForTokenClassification.from_pretrained(
            backbone.path,
            num_labels=fmt.num_labels,
            id2label=dict(enumerate(labels)),
            label2id={t: i for i, t in enumerate(labels)},
            **kwargs,
        )
    elif fmt.kind == "classification":
        model = AutoModelForSequenceClassification.from_pretrained(
            backbone.path,
            num_labels=fmt.num_labels,
            id2label=dict(enumerate(task.labels)),
            label2id={t: i for i, t in enumerate(task.labels)},
            **kwargs,
        )
    else:
        # Regression and choice scoring both need one scalar per sequence.
        model = AutoModelForSequenceClassification.from_pretrained(
            backbone.path, num_labels=1, **kwargs
        )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    return model.to(device)


def forward_logits(model: Any, batch: Batch) -> torch.Tensor:
    logits: torch.Tensor = model(**batch.inputs).logits
    if logits.dim() == 3:
        # Prompt tuning prepends virtual tokens; keep the positions of the real ones.
        logits = logits[:, -batch.inputs["input_ids"].shape[1] :, :]
    return logits


def loss_from_logits(logits: torch.Tensor, batch: Batch, fmt: TaskFormat) -> torch.Tensor:
    logits = logits.float()
    if fmt.kind == "classification":
        assert batch.targets is not None
        return F.cross_entropy(logits, batch.targets)
    if fmt.kind == "regression":
        assert batch.targets is not None
        return F.mse_loss(logits.squeeze(-1), batch.targets)
    if fmt.kind == "tokens":
        assert batch.targets is not None
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            batch.targets.reshape(-1),
            ignore_index=IGNORE_INDEX,
        )
    # Choices: softmax over each item's candidates; any gold candidate counts as correct.
    losses = []
    for scores, item in zip(
        torch.split(logits.squeeze(-1), list(batch.group_sizes)), batch.items, strict=True
    ):
        gold = list(item.target)
        losses.append(torch.logsumexp(scores, 0) - torch.logsumexp(scores[gold], 0))
    return torch.stack(losses).mean()


def batch_loss(model: Any, batch: Batch, fmt: TaskFormat) -> torch.Tensor:
    return loss_from_logits(forward_logits(model, batch), batch, fmt)


def decode_batch(logits: torch.Tensor, batch: Batch, fmt: TaskFormat) -> list[Any]:
    """One raw output per item: class index, float, candidate index, or per-word tag ids."""
    logits = logits.float().cpu()
    if fmt.kind == "classification":
        return [int(i) for i in logits.argmax(-1)]
    if fmt.kind == "regression":
        return [float(v) for v in logits.squeeze(-1)]
    if fmt.kind == "choice":
        groups = torch.split(logits.squeeze(-1), list(batch.group_sizes))
        return [int(s.argmax()) for s in groups]
    best = logits.argmax(-1)
    return [
        [int(best[row, p]) if p >= 0 else -1 for p in item.word_starts]
        for row, item in enumerate(batch.items)
    ]


def assemble_predictions(
    *,
    task: TaskDefinition,
    fmt: TaskFormat,
    rows: Sequence[dict[str, Any]],
    items: Sequence[Encoded],
    outputs: Sequence[Any],
) -> list[Any]:
    """Predictions aligned with `rows`, in the task's label format."""
    if fmt.kind == "tokens":
        tags: list[list[str]] = [[fmt.default_tag] * len(row[task.input_fields[0]]) for row in rows]
        for item, words in zip(items, outputs, strict=True):
            for k, tag_id in enumerate(words):
                if tag_id >= 0:
                    tags[item.row][item.word_offset + k] = fmt.tags[tag_id]
        return tags
    predictions: list[Any] = [None] * len(rows)
    for item, output in zip(items, outputs, strict=True):
        if fmt.kind == "classification":
            predictions[item.row] = task.labels[output]
        elif fmt.kind == "regression":
            predictions[item.row] = output
        else:
            predictions[item.row] = item.candidates[output]
    missing = [i for i, p in enumerate(predictions) if p is None]
    if missing:
        raise RuntimeError(f"no prediction for eval rows {missing[:5]}")
    return predictions


@contextlib.contextmanager
def evaluating(model: Any) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)
