"""The fine-tuning runner: one entry point for every encoder method.

`run_finetuning` resolves the backbone, encodes the task, applies the method (which
parameters train, which optimizer), trains with length-grouped dynamic-padding batches,
reports loss / learning rate / throughput as it goes, and predicts the eval split.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from leaderboard.data import row_id
from leaderboard.predictions import ParsedPrediction, score_predictions
from runners import distributed
from runners.backbones import load_tokenizer, resolve_backbone
from runners.context import JobContext, MethodOutput
from runners.reporting import Reporter
from runners.training import adapters
from runners.training.encoding import (
    Encoded,
    TaskFormat,
    collate,
    encode_rows,
    length_grouped_batches,
    task_format,
)
from runners.training.mezo import mezo_parameters, mezo_step
from runners.training.modeling import (
    accelerated,
    assemble_predictions,
    batch_loss,
    build_model,
    decode_batch,
    evaluating,
    forward_logits,
    pick_device,
)
from runners.training.optim import OptimizerSetup, build_galore, build_optimizer


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    learning_rate: float
    batch_size: int
    eval_batch_size: int
    epochs: float
    max_steps: int
    warmup_ratio: float
    weight_decay: float
    max_length: int
    max_train_examples: int
    log_every: int
    max_grad_norm: float
    optimizer: str = "adamw"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrainSettings:
        return cls(
            learning_rate=float(config["learning_rate"]),
            batch_size=int(config["batch_size"]),
            eval_batch_size=int(config["eval_batch_size"]),
            epochs=float(config["epochs"]),
            max_steps=int(config["max_steps"]),
            warmup_ratio=float(config.get("warmup_ratio", 0.0)),
            weight_decay=float(config["weight_decay"]),
            max_length=int(config["max_length"]),
            max_train_examples=int(config["max_train_examples"]),
            log_every=int(config["log_every"]),
            max_grad_norm=float(config.get("max_grad_norm", 0.0)),
            optimizer=str(config.get("optimizer", "adamw")),
        )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


@dataclass
class Prepared:
    """A model after its method was applied, with the method's training hooks."""

    model: Any
    # Called before each optimizer step with the step index (DyLoRA samples its rank).
    before_step: Callable[[int], None] | None = None
    # Ranks to evaluate at (DyLoRA); empty: evaluate once.
    eval_ranks: Sequence[int] = ()
    controller: adapters.DyLoRAController | None = None
    merge_for_eval: bool = False


def prepare_method(
    method: str, model: Any, *, fmt: TaskFormat, config: Mapping[str, Any], rng: random.Random
) -> Prepared:
    if method in ("full", "galore"):
        return Prepared(model=model)
    if method == "mezo":
        return Prepared(model=mezo_parameters(model, fmt=fmt, config=config))
    if method == "bitfit":
        return Prepared(model=adapters.apply_bitfit(model))
    if method == "lora":
        return Prepared(
            model=adapters.apply_lora(model, fmt=fmt, config=config), merge_for_eval=True
        )
    if method == "ia3":
        return Prepared(
            model=adapters.apply_ia3(model, fmt=fmt, config=config), merge_for_eval=True
        )
    if method == "prompt_tuning":
        return Prepared(model=adapters.apply_prompt_tuning(model, fmt=fmt, config=config))
    if method == "dylora":
        max_rank, min_rank = int(config["r"]), int(config["min_rank"])
        if not 1 <= min_rank <= max_rank:
            raise ValueError(f"dylora: min_rank {min_rank} must be in 1..r ({max_rank})")
        peft_model = adapters.apply_lora(model, fmt=fmt, config=config)
        controller = adapters.DyLoRAController.attach(
            peft_model, max_rank=max_rank, alpha=float(config["alpha"])
        )
        ranks = sorted({r for r in config["eval_ranks"] if min_rank <= r <= max_rank} | {max_rank})

        def sample_rank(step: int) -> None:
            controller.set_rank(rng.randint(min_rank, max_rank))

        return Prepared(
            model=peft_model,
            before_step=sample_rank,
            eval_ranks=ranks,
            controller=controller,
        )
    raise ValueError(f"unknown fine-tuning method {method!r}")


def _total_steps(settings: TrainSettings, batches_per_epoch: int) -> int:
    if settings.max_steps > 0:
        return settings.max_steps
    return max(1, math.ceil(settings.epochs * batches_per_epoch))


def _batch_stream(items: Sequence[Encoded], *, batch_size: int, rng: random.Random) -> Any:
    while True:
        yield from length_grouped_batches(items, batch_size=batch_size, rng=rng)


@dataclass
class _Meter:
    """Loss and throughput since the last report.

    `add` takes the loss of the whole (global) batch and this rank's examples and
    tokens; in a process group the counts are summed over the ranks when reported.
    """

    reporter: Reporter
    total_steps: int
    log_every: int
    group: distributed.ProcessGroup | None = None
    losses: list[float] = field(default_factory=list)
    examples: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)
    window_started: float = field(default_factory=time.perf_counter)
    all_examples: int = 0
    all_tokens: int = 0
    first_loss: float | None = None
    last_loss: float | None = None

    def add(self, *, step: int, loss: float, examples: int, tokens: int, lr: float) -> None:
        self.losses.append(loss)
        self.examples += examples
        self.tokens += tokens
        self.all_examples += examples
        self.all_tokens += tokens
        if step % self.log_every == 0 or step == self.total_steps:
            elapsed = max(time.perf_counter() - self.window_started, 1e-9)
            mean_loss = sum(self.losses) / len(self.losses)
            if self.first_loss is None:
                self.first_loss = mean_loss
            self.last_loss = mean_loss
            seen, seen_tokens = float(self.examples), float(self.tokens)
            if self.group is not None:
                seen, seen_tokens = distributed.sum_across([seen, seen_tokens], self.group)
            eps = seen / elapsed
            self.reporter.log_metrics(
                {
                    "loss": mean_loss,
                    "learning_rate": lr,
                    "examples_per_second": eps,
                    "tokens_per_second": seen_tokens / elapsed,
                },
                step=step,
            )
            self.reporter.progress(step=step, total_steps=self.total_steps, examples_per_second=eps)
            self.losses, self.examples, self.tokens = [], 0, 0
            self.window_started = time.perf_counter()

    def summary(self) -> dict[str, float]:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        all_examples, all_tokens = float(self.all_examples), float(self.all_tokens)
        per_rank: dict[str, float] = {}
        if self.group is not None:
            all_examples, all_tokens = distributed.sum_across(
                [all_examples, all_tokens], self.group
            )
            # What each rank trained on: evidence that the work was really shared.
            counts = distributed.gather_across(float(self.all_examples), self.group)
            per_rank = {f"train_examples_rank_{r}": n for r, n in enumerate(counts)}
            per_rank["world_size"] = float(self.group.world_size)
        figures = {
            "train_time_s": elapsed,
            "train_examples_per_second": all_examples / elapsed,
            "train_tokens_per_second": all_tokens / elapsed,
            **per_rank,
        }
        if self.first_loss is not None and self.last_loss is not None:
            figures["train_loss_first"] = self.first_loss
            figures["train_loss_last"] = self.last_loss
        return figures


def train_gradient(
    *,
    prepared: Prepared,
    setup: OptimizerSetup,
    items: Sequence[Encoded],
    fmt: TaskFormat,
    settings: TrainSettings,
    reporter: Reporter,
    rng: random.Random,
    device: torch.device,
    pad_token_id: int,
) -> dict[str, float]:
    model = prepared.model
    batches_per_epoch = math.ceil(len(items) / settings.batch_size)
    total = _total_steps(settings, batches_per_epoch)
    warmup = int(settings.warmup_ratio * total)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(setup.optimizer, schedule)
    trainable = [p for p in model.parameters() if p.requires_grad]
    group = distributed.process_group()
    if group is not None and setup.hessian_every > 0:
        raise ValueError(
            "optimizer sophia estimates the Hessian with a double backward, which "
            "DistributedDataParallel does not support: run it with one GPU"
        )
    meter = _Meter(reporter=reporter, total_steps=total, log_every=settings.log_every, group=group)
    # Every rank draws the same global batches (same seed) and trains on its shard of each.
    stream = _batch_stream(items, batch_size=settings.batch_size, rng=rng)
    forward_model = model if group is None else distributed.data_parallel(model, group)
    forward_model.train()
    for step in range(1, total + 1):
        distributed.check_cancelled_together(reporter, group)
        if prepared.before_step is not None:
            prepared.before_step(step)
        chosen, share = next(stream), 1.0
        if group is not None:
            chosen, share = distributed.shard(chosen, group)
        batch = collate(chosen, fmt=fmt, pad_token_id=pad_token_id, device=device)
        create_graph = setup.needs_create_graph(step - 1)
        with accelerated(device, double_backward=create_graph):
            loss = batch_loss(forward_model, batch, fmt)
        objective = loss
        if group is not None:
            # DDP averages the ranks' gradients; weighting each rank's mean loss by its
            # share of the batch (times the world size) makes the average the gradient
            # of the whole batch's mean loss, as one process would compute it.
            objective = loss * (share * group.world_size)
        objective.backward(create_graph=create_graph)  # type: ignore[no-untyped-call]
        if settings.max_grad_norm > 0 and not create_graph:
            torch.nn.utils.clip_grad_norm_(trainable, settings.max_grad_norm)
        lr = float(scheduler.get_last_lr()[0])
        setup.optimizer.step()
        scheduler.step()
        setup.optimizer.zero_grad(set_to_none=True)
        if prepared.controller is not None and step % settings.log_every == 0:
            reporter.log_metrics({"lora_rank": float(prepared.controller.rank)}, step=step)
        step_loss = float(loss.detach())
        if group is not None:
            step_loss = distributed.sum_across([step_loss * share], group)[0]
        meter.add(
            step=step,
            loss=step_loss,
            examples=len(batch.items) if share else 0,
            tokens=batch.real_tokens if share else 0,
            lr=lr,
        )
    return meter.summary() | {"train_steps": float(total)}


def train_mezo(
    *,
    model: Any,
    items: Sequence[Encoded],
    fmt: TaskFormat,
    settings: TrainSettings,
    eps: float,
    reporter: Reporter,
    rng: random.Random,
    device: torch.device,
    pad_token_id: int,
) -> dict[str, float]:
    batches_per_epoch = math.ceil(len(items) / settings.batch_size)
    total = _total_steps(settings, batches_per_epoch)
    parameters = [p for p in model.parameters() if p.requires_grad]
    group = distributed.process_group()
    if group is not None:
        distributed.broadcast_parameters(model, group)
    meter = _Meter(reporter=reporter, total_steps=total, log_every=settings.log_every, group=group)
    stream = _batch_stream(items, batch_size=settings.batch_size, rng=rng)
    # Dropout off: both perturbed losses must see the same function (as in MeZO's code).
    model.eval()
    for step in range(1, total + 1):
        distributed.check_cancelled_together(reporter, group)
        chosen, share = next(stream), 1.0
        if group is not None:
            chosen, share = distributed.shard(chosen, group)
        batch = collate(chosen, fmt=fmt, pad_token_id=pad_token_id, device=device)

        def loss_fn(batch: Any = batch, share: float = share) -> torch.Tensor:
            with accelerated(device):
                loss = batch_loss(model, batch, fmt)
            if group is None:
                return loss
            # The whole batch's loss on every rank: the projected gradient, and so the
            # in-place update (same seed everywhere), is the same on all ranks.
            return distributed.sum_tensor(loss * share, group)

        lr = settings.learning_rate * (1 - (step - 1) / total)
        loss, projected = mezo_step(
            parameters,
            loss_fn,
            seed=rng.randrange(2**31),
            eps=eps,
            learning_rate=lr,
            weight_decay=settings.weight_decay,
        )
        if step % settings.log_every == 0:
            reporter.log_metrics({"projected_grad": projected}, step=step)
        meter.add(
            step=step,
            loss=loss,
            examples=len(batch.items) if share else 0,
            tokens=batch.real_tokens if share else 0,
            lr=lr,
        )
    return meter.summary() | {"train_steps": float(total)}


def predict(
    *,
    model: Any,
    items: Sequence[Encoded],
    fmt: TaskFormat,
    batch_size: int,
    device: torch.device,
    pad_token_id: int,
) -> list[Any]:
    """Raw outputs aligned with `items` (batched by length, then put back in order)."""
    outputs: dict[int, Any] = {}
    position = {id(item): i for i, item in enumerate(items)}
    with evaluating(model):
        for group in length_grouped_batches(items, batch_size=batch_size, rng=None):
            batch = collate(group, fmt=fmt, pad_token_id=pad_token_id, device=device)
            with accelerated(device):
                logits = forward_logits(model, batch)
            for item, output in zip(group, decode_batch(logits, batch, fmt), strict=True):
                outputs[position[id(item)]] = output
    return [outputs[i] for i in range(len(items))]


def _score(
    context: JobContext, rows: Sequence[dict[str, Any]], predictions: Sequence[Any]
) -> dict[str, float]:
    """Scores with the catalog's own metric code (used for DyLoRA's per-rank figures)."""
    parsed = [
        ParsedPrediction(line=i + 1, id=row_id(context.task, row, i), value=p)
        for i, (row, p) in enumerate(zip(rows, predictions, strict=True))
    ]
    return score_predictions(
        task=context.task, rows=rows, predictions=parsed, split=context.eval_split
    )


def run_finetuning(context: JobContext, *, method: str) -> MethodOutput:
    config = context.config
    settings = TrainSettings.from_config(config)
    reporter = context.reporter
    group = distributed.process_group()
    evaluates = group is None or group.is_main
    seed_everything(context.seed)
    if not torch.cuda.is_available():
        # Same seed, same CPU => same scores: forbid nondeterministic kernels.
        torch.use_deterministic_algorithms(True, warn_only=True)
    device = pick_device()
    backbone = resolve_backbone(context.spec.backbone)
    reporter.log(f"backbone {backbone.path} on {device}; seed {context.seed}")
    if group is not None:
        reporter.log(
            f"data parallel: rank {group.rank} of {group.world_size} ({group.backend}); "
            f"each trains on its share of every batch of {settings.batch_size}"
        )
    tokenizer = load_tokenizer(backbone)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0

    train_rows = context.rows(context.train_split)
    rng = random.Random(context.seed)
    if 0 < settings.max_train_examples < len(train_rows):
        train_rows = rng.sample(train_rows, settings.max_train_examples)
    # Only the evaluating rank (rank 0 of a process group) needs the eval split.
    eval_rows = context.rows(context.eval_split) if evaluates else []
    fmt = task_format(context.task, train_rows)
    train_items = encode_rows(
        task=context.task,
        fmt=fmt,
        rows=train_rows,
        tokenizer=tokenizer,
        max_length=settings.max_length,
        training=True,
    )
    eval_items = (
        encode_rows(
            task=context.task,
            fmt=fmt,
            rows=eval_rows,
            tokenizer=tokenizer,
            max_length=settings.max_length,
            training=False,
        )
        if evaluates
        else []
    )
    if not train_items:
        raise ValueError(f"{context.task.qualified_key}: no labelled training rows to learn from")
    reporter.log(f"{len(train_items)} training units, {len(eval_items)} eval units ({fmt.kind})")

    # Seeded again so the head's initialisation does not depend on data loading.
    torch.manual_seed(context.seed)
    model = build_model(backbone=backbone, task=context.task, fmt=fmt, device=device)
    prepared = prepare_method(method, model, fmt=fmt, config=config, rng=rng)
    model = prepared.model
    trainable = adapters.count_trainable(model)
    total_parameters = sum(p.numel() for p in model.parameters())
    reporter.log(f"{method}: {trainable:,} trainable of {total_parameters:,} parameters")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    if method == "mezo":
        figures = train_mezo(
            model=model,
            items=train_items,
            fmt=fmt,
            settings=settings,
            eps=float(config["eps"]),
            reporter=reporter,
            rng=rng,
            device=device,
            pad_token_id=pad_id,
        )
    else:
        if method == "galore":
            setup = build_galore(
                model,
                learning_rate=settings.learning_rate,
                weight_decay=settings.weight_decay,
                settings=config,
            )
        else:
            setup = build_optimizer(
                model,
                name=settings.optimizer,
                learning_rate=settings.learning_rate,
                weight_decay=settings.weight_decay,
            )
        figures = train_gradient(
            prepared=prepared,
            setup=setup,
            items=train_items,
            fmt=fmt,
            settings=settings,
            reporter=reporter,
            rng=rng,
            device=device,
            pad_token_id=pad_id,
        )
    if device.type == "cuda":
        figures["peak_train_accelerator_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if not evaluates:
        # The ranks hold identical weights now; rank 0 evaluates and reports.
        return MethodOutput(predictions=(), trainable_parameters=trainable, system=figures)

    extra_scores: dict[str, float] = {}
    started = time.perf_counter()
    if prepared.controller is not None:
        controller = prepared.controller
        predictions: list[Any] = []
        for rank in prepared.eval_ranks:
            controller.set_rank(rank)
            outputs = predict(
                model=model,
                items=eval_items,
                fmt=fmt,
                batch_size=settings.eval_batch_size,
                device=device,
                pad_token_id=pad_id,
            )
            predictions = assemble_predictions(
                task=context.task, fmt=fmt, rows=eval_rows, items=eval_items, outputs=outputs
            )
            for key, value in _score(context, eval_rows, predictions).items():
                extra_scores[f"rank_{rank}/{key}"] = value
            extra_scores[f"rank_{rank}/trainable_parameters"] = float(
                controller.trainable_at_rank(model, rank)
            )
        # The last evaluated rank is the top one: its predictions are the run's.
    else:
        if prepared.merge_for_eval:
            # Folding adapters into the weights: inference costs what the base model costs.
            model = model.merge_and_unload()
        outputs = predict(
            model=model,
            items=eval_items,
            fmt=fmt,
            batch_size=settings.eval_batch_size,
            device=device,
            pad_token_id=pad_id,
        )
        predictions = assemble_predictions(
            task=context.task, fmt=fmt, rows=eval_rows, items=eval_items, outputs=outputs
        )
    eval_time = max(time.perf_counter() - started, 1e-9)
    passes = max(1, len(prepared.eval_ranks))
    figures.update(
        eval_time_s=eval_time,
        eval_examples_per_second=passes * len(eval_rows) / eval_time,
        examples_per_second=figures["train_examples_per_second"],
        tokens_per_second=figures["train_tokens_per_second"],
        total_parameters=float(total_parameters),
        seed=float(context.seed),
        torch_threads=float(torch.get_num_threads()),
        cpu_count=float(os.cpu_count() or 0),
    )
    reporter.log(f"trained in {figures['train_time_s']:.1f}s, evaluated in {eval_time:.1f}s")
    return MethodOutput(
        predictions=predictions,
        trainable_parameters=trainable,
        extra_scores=extra_scores,
        system=figures,
    )
