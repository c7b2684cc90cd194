"""Each fine-tuning method does what it claims, on a tiny random BERT built here.

The parameter-level tests would fail if a method were replaced by a no-op: BitFit must
move biases and nothing else in the body, LoRA must train adapters that the merged model
uses, DyLoRA must sample ranks and truncate the bottleneck, GaLore's updates must be low
rank, MeZO must descend without gradients.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

# The hub is never reachable from tests: models are built locally, data read from files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from leaderboard.catalog import get_task
from leaderboard.data import load_task
from runners.backbones import ResolvedBackbone, load_tokenizer
from runners.execute import execute
from runners.registry import get_method
from runners.reporting import CollectingReporter
from runners.spec import BackboneRef, JobResult, JobSpec, TaskRef
from runners.testing import build_tiny_encoder
from runners.training.encoding import (
    Encoded,
    TaskFormat,
    collate,
    encode_rows,
    task_format,
)
from runners.training.loop import Prepared, TrainSettings, prepare_method, train_gradient
from runners.training.mezo import mezo_step
from runners.training.modeling import build_model, forward_logits
from runners.training.optim import (
    OptimizerSetup,
    build_galore,
    build_optimizer,
    galore_projected,
)

FAST = {"max_train_examples": 32, "max_steps": 4, "log_every": 1, "eval_batch_size": 128}


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    # A vocabulary trained on a few tasks' rows: small embeddings keep every step cheap.
    texts = []
    for split in ("glue/sst2/train", "superglue/copa/train", "lepiszcze/klej-cdsc-e/train"):
        texts += (data_dir / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:500]
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"), texts=texts)


def run_job(
    *,
    method: str,
    task: str,
    backbone: Path,
    data_dir: Path,
    workdir: Path,
    config: Mapping[str, Any] | None = None,
    seed: int = 1,
    eval_split: str = "",
    reporter: CollectingReporter | None = None,
) -> JobResult:
    benchmark, key = task.split("/")
    spec = JobSpec(
        job_id=1,
        attempt=1,
        run_uuid="test",
        method=method,
        config=dict(FAST | dict(config or {})),
        seed=seed,
        backbone=BackboneRef(key="tiny", source="local", local_path=str(backbone)),
        task=TaskRef(
            benchmark=benchmark, key=key, version=get_task(benchmark=benchmark, key=key).version
        ),
        eval_split=eval_split,
    )
    return execute(
        spec, reporter=reporter or CollectingReporter(), workdir=workdir, data_dir=data_dir
    )


class Tiny:
    """A tiny SST-2 model with a method applied, trained by the real loop."""

    def __init__(
        self, backbone: Path, data_dir: Path, method: str, overrides: Mapping[str, Any]
    ) -> None:
        task = get_task(benchmark="glue", key="sst2")
        resolved = ResolvedBackbone(
            ref=BackboneRef(key="tiny", source="local", local_path=str(backbone)),
            path=str(backbone),
        )
        self.tokenizer = load_tokenizer(resolved)
        rows = load_task(task, "train", data_dir=data_dir)[:32]
        self.fmt: TaskFormat = task_format(task, rows)
        self.items: list[Encoded] = encode_rows(
            task=task,
            fmt=self.fmt,
            rows=rows,
            tokenizer=self.tokenizer,
            max_length=64,
            training=True,
        )
        torch.manual_seed(0)
        self.base = build_model(
            backbone=resolved, task=task, fmt=self.fmt, device=torch.device("cpu")
        )
        # Parameter objects of the original model survive peft wrapping: keep them.
        self.initial = {
            name: (parameter, parameter.detach().clone())
            for name, parameter in self.base.named_parameters()
        }
        key = {"full": "full_finetuning"}.get(method, method)
        self.config = get_method(key).defaults() | FAST | dict(overrides)
        self.method = method
        self.reporter = CollectingReporter()
        self.prepared: Prepared = prepare_method(
            method, self.base, fmt=self.fmt, config=self.config, rng=random.Random(0)
        )
        self.model = self.prepared.model
        self.setup: OptimizerSetup = (
            build_galore(
                self.model,
                learning_rate=float(self.config["learning_rate"]),
                weight_decay=0.0,
                settings=self.config,
            )
            if method == "galore"
            else build_optimizer(
                self.model,
                name=str(self.config.get("optimizer", "adamw")),
                learning_rate=float(self.config["learning_rate"]),
                weight_decay=0.0,
            )
        )

    def train(self, steps: int) -> None:
        settings = TrainSettings.from_config(
            self.config | {"max_steps": steps, "weight_decay": 0.0, "warmup_ratio": 0.0}
        )
        train_gradient(
            prepared=self.prepared,
            setup=self.setup,
            items=self.items,
            fmt=self.fmt,
            settings=settings,
            reporter=self.reporter,
            rng=random.Random(0),
            device=torch.device("cpu"),
            pad_token_id=self.tokenizer.pad_token_id,
        )

    def changed(self) -> dict[str, bool]:
        return {
            name: not torch.equal(parameter.detach(), before)
            for name, (parameter, before) in self.initial.items()
        }

    def logits(self, model: Any) -> Any:
        batch = collate(
            self.items[:8],
            fmt=self.fmt,
            pad_token_id=self.tokenizer.pad_token_id,
            device=torch.device("cpu"),
        )
        model.eval()
        with torch.no_grad():
            return forward_logits(model, batch)


def test_full_finetuning_trains_every_weight(tiny_encoder: Path, data_dir: Path) -> None:
    tiny = Tiny(tiny_encoder, data_dir, "full", {"learning_rate": 1e-3})
    tiny.train(3)
    changed = tiny.changed()
    # Every weight that took part in the forward pass moved (unused vocabulary rows
    # excepted, the embedding matrix as a whole moved).
    assert sum(changed.values()) >= len(changed) - 2


def test_full_finetuning_loss_falls_and_seed_reproduces(
    tiny_encoder: Path, data_dir: Path, tmp_path: Path
) -> None:
    config = {
        "learning_rate": 3e-3,
        "max_steps": 25,
        "max_train_examples": 32,
        "log_every": 5,
        "eval_batch_size": 256,
    }
    first_reporter = CollectingReporter()
    first = run_job(
        method="full_finetuning",
        task="glue/sst2",
        backbone=tiny_encoder,
        data_dir=data_dir,
        workdir=tmp_path,
        config=config,
        reporter=first_reporter,
    )
    second = run_job(
        method="full_finetuning",
        task="glue/sst2",
        backbone=tiny_encoder,
        data_dir=data_dir,
        workdir=tmp_path,
        config=config,
    )
    assert first.outcome == "succeeded", first.error
    losses = [value for _, value in first_reporter.curve("loss")]
    assert len(losses) == 5
    assert losses[-1] < losses[0] * 0.92  # starts memorising its 32 examples
    assert {"learning_rate", "examples_per_second", "tokens_per_second"} <= {
        key for key, *_ in first_reporter.points
    }
    assert first.scores == second.scores
    assert first.inline_artifacts[0].sha256 == second.inline_artifacts[0].sha256
    assert first.system["seed"] == 1.0
    assert first.system["trainable_parameters"] == first.system["total_parameters"]


def test_bitfit_moves_only_biases_and_the_head(tiny_encoder: Path, data_dir: Path) -> None:
    tiny = Tiny(tiny_encoder, data_dir, "bitfit", {"learning_rate": 1e-2})
    trainable = {n for n, p in tiny.model.named_parameters() if p.requires_grad}
    assert trainable
    assert all(n.endswith(".bias") or n.startswith("classifier.") for n in trainable)
    tiny.train(3)
    changed = tiny.changed()
    body_weights = [n for n in changed if not n.endswith(".bias") and n.startswith("bert.")]
    assert not any(changed[n] for n in body_weights)
    assert any(changed[n] for n in changed if n.startswith("bert.") and n.endswith(".bias"))
    assert changed["classifier.weight"]


def test_lora_trains_adapters_that_the_merged_model_uses(
    tiny_encoder: Path, data_dir: Path
) -> None:
    tiny = Tiny(tiny_encoder, data_dir, "lora", {"learning_rate": 1e-2, "r": 4})
    tiny.train(4)
    # The pretrained body is frozen: its parameter objects did not move.
    assert not any(changed for name, changed in tiny.changed().items() if name.startswith("bert."))
    lora_b = [p for n, p in tiny.model.named_parameters() if "lora_B" in n]
    assert lora_b
    assert all(float(p.detach().abs().sum()) > 0 for p in lora_b)  # B starts at zero
    adapted = tiny.logits(tiny.model)
    with tiny.model.disable_adapter():
        plain = tiny.logits(tiny.model)
    assert not torch.allclose(adapted, plain, atol=1e-5)
    merged = tiny.model.merge_and_unload()
    assert torch.allclose(tiny.logits(merged), adapted, atol=1e-5)


def test_ia3_learns_its_scaling_vectors(tiny_encoder: Path, data_dir: Path) -> None:
    tiny = Tiny(tiny_encoder, data_dir, "ia3", {"learning_rate": 5e-2})
    vectors = {n: p for n, p in tiny.model.named_parameters() if "ia3_l" in n}
    assert vectors
    assert all(torch.equal(p, torch.ones_like(p)) for p in vectors.values())
    tiny.train(3)
    assert any(not torch.equal(p, torch.ones_like(p)) for p in vectors.values())
    assert not any(changed for name, changed in tiny.changed().items() if name.startswith("bert."))


def test_prompt_tuning_trains_the_soft_prompt_only(tiny_encoder: Path, data_dir: Path) -> None:
    tiny = Tiny(tiny_encoder, data_dir, "prompt_tuning", {"num_virtual_tokens": 4})
    prompt = tiny.model.prompt_encoder["default"].embedding.weight
    before = prompt.detach().clone()
    tiny.train(3)
    assert not torch.equal(prompt.detach(), before)
    assert not any(changed for name, changed in tiny.changed().items() if name.startswith("bert."))


def test_dylora_samples_ranks_and_truncates_the_bottleneck(
    tiny_encoder: Path, data_dir: Path
) -> None:
    tiny = Tiny(
        tiny_encoder,
        data_dir,
        "dylora",
        {"learning_rate": 1e-2, "r": 4, "alpha": 8.0, "dropout": 0.0},
    )
    tiny.train(12)
    ranks = {value for _, value in tiny.reporter.curve("lora_rank")}
    assert len(ranks) >= 3
    assert ranks <= {1.0, 2.0, 3.0, 4.0}
    controller = tiny.prepared.controller
    assert controller is not None
    controller.set_rank(2)
    at_rank_2 = tiny.logits(tiny.model)
    controller.set_rank(4)
    at_rank_4 = tiny.logits(tiny.model)
    assert not torch.allclose(at_rank_2, at_rank_4, atol=1e-6)
    # Rank 2 equals a plain LoRA whose A and B are cut to their first 2 dimensions.
    saved = {}
    for layer in controller.layers:
        a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
        saved[layer] = (a.detach().clone(), b.detach().clone())
        with torch.no_grad():
            a[2:].zero_()
            b[:, 2:].zero_()
        layer.scaling["default"] = 8.0 / 2
    truncated = tiny.logits(tiny.model)
    assert torch.allclose(truncated, at_rank_2, atol=1e-5)
    for layer, (a, b) in saved.items():
        with torch.no_grad():
            layer.lora_A["default"].weight.copy_(a)
            layer.lora_B["default"].weight.copy_(b)


def test_dylora_reports_a_score_per_rank(
    tiny_encoder: Path, data_dir: Path, tmp_path: Path
) -> None:
    result = run_job(
        method="dylora",
        task="glue/sst2",
        backbone=tiny_encoder,
        data_dir=data_dir,
        workdir=tmp_path,
        config={"r": 4, "eval_ranks": [1, 2]},
    )
    assert result.outcome == "succeeded", result.error
    assert {"rank_1/accuracy", "rank_2/accuracy", "rank_4/accuracy"} <= set(result.extra_scores)
    assert result.extra_scores["rank_4/accuracy"] == result.scores["accuracy"]
    assert (
        result.extra_scores["rank_1/trainable_parameters"]
        < result.extra_scores["rank_4/trainable_parameters"]
    )


def test_galore_updates_are_low_rank(tiny_encoder: Path, data_dir: Path) -> None:
    galore = Tiny(tiny_encoder, data_dir, "galore", {"rank": 2, "learning_rate": 1e-3})
    galore.train(1)
    adamw = Tiny(tiny_encoder, data_dir, "full", {"learning_rate": 1e-3})
    adamw.train(1)
    projected = galore_projected(galore.model)
    assert "bert.encoder.layer.0.attention.self.query.weight" in projected
    for name in projected[:4]:
        parameter, before = galore.initial[name]
        delta = parameter.detach() - before
        assert float(delta.abs().sum()) > 0
        # Relative tolerance: float32 rounding of W + dW adds noise far below the update.
        assert int(torch.linalg.matrix_rank(delta, rtol=1e-2)) <= 2
        full_parameter, full_before = adamw.initial[name]
        full_delta = full_parameter.detach() - full_before
        assert int(torch.linalg.matrix_rank(full_delta, rtol=1e-2)) > 2


def test_galore_training_reduces_the_loss(tiny_encoder: Path, data_dir: Path) -> None:
    tiny = Tiny(tiny_encoder, data_dir, "galore", {"rank": 8, "learning_rate": 3e-3})
    tiny.train(30)
    losses = [value for _, value in tiny.reporter.curve("loss")]
    assert sum(losses[-5:]) / 5 < 0.95 * sum(losses[:5]) / 5


@pytest.mark.parametrize("optimizer", ["sophia", "soap"])
def test_pytorch_optimizer_choices_train(
    tiny_encoder: Path, data_dir: Path, optimizer: str
) -> None:
    tiny = Tiny(tiny_encoder, data_dir, "full", {"optimizer": optimizer, "learning_rate": 1e-3})
    tiny.train(2)
    assert type(tiny.setup.optimizer).__module__.startswith("pytorch_optimizer")
    assert sum(tiny.changed().values()) > len(tiny.initial) // 2
    if optimizer == "sophia":
        # The Hutchinson Hessian estimate was taken (double backward on step 0).
        moments = [
            s["hessian_moment"]
            for s in tiny.setup.optimizer.state.values()
            if "hessian_moment" in s
        ]
        assert moments
        assert any(float(m.abs().sum()) > 0 for m in moments)


def test_mezo_step_descends_without_gradients() -> None:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(64, 8, generator=generator)
    targets = inputs @ torch.randn(8, 1, generator=generator)
    model = torch.nn.Linear(8, 1)
    parameters = list(model.parameters())

    def loss() -> Any:
        return torch.nn.functional.mse_loss(model(inputs), targets)

    start = float(loss().detach())
    for step in range(300):
        mezo_step(parameters, loss, seed=step, eps=1e-3, learning_rate=0.02)
    assert float(loss().detach()) < 0.2 * start
    assert all(p.grad is None for p in parameters)


def test_mezo_restores_parameters_exactly_apart_from_the_update() -> None:
    model = torch.nn.Linear(4, 1)
    before = [p.detach().clone() for p in model.parameters()]
    mezo_step(
        list(model.parameters()), lambda: model.weight.sum(), seed=3, eps=1e-2, learning_rate=0.0
    )
    assert all(
        torch.allclose(p, b, atol=1e-6) for p, b in zip(model.parameters(), before, strict=True)
    )


def test_mezo_job_reports_loss_and_projected_gradient(
    tiny_encoder: Path, data_dir: Path, tmp_path: Path
) -> None:
    reporter = CollectingReporter()
    result = run_job(
        method="mezo",
        task="glue/sst2",
        backbone=tiny_encoder,
        data_dir=data_dir,
        workdir=tmp_path,
        config={"max_steps": 6, "learning_rate": 1e-3},
        reporter=reporter,
    )
    assert result.outcome == "succeeded", result.error
    assert len(reporter.curve("loss")) == 6
    assert any(value != 0 for _, value in reporter.curve("projected_grad"))
    assert "accuracy" in result.scores
    # Every executed classification run carries its per-class figures for the task page.
    assert result.extra_scores["per_class/negative/support"] + result.extra_scores[
        "per_class/positive/support"
    ] == float(872)


def test_mezo_lora_perturbs_only_the_adapters_and_the_head(
    tiny_encoder: Path, data_dir: Path, tmp_path: Path
) -> None:
    full = run_job(
        method="mezo",
        task="glue/sst2",
        backbone=tiny_encoder,
        data_dir=data_dir,
        workdir=tmp_path / "full",
        config={"max_steps": 2},
    )
    lora = run_job(
        method="mezo",
        task="glue/sst2",
        backbone=tiny_encoder,
        data_dir=data_dir,
        workdir=tmp_path / "lora",
        config={"max_steps": 2, "parameters": "lora", "r": 2},
    )
    assert lora.outcome == "succeeded", lora.error
    assert full.system["trainable_parameters"] == full.system["total_parameters"]
    assert 0 < lora.system["trainable_parameters"] < 0.2 * full.system["trainable_parameters"]


@pytest.mark.parametrize(
    ("task", "eval_split"),
    [
        ("glue/mrpc", ""),
        ("glue/stsb", ""),
        ("superglue/copa", ""),
        ("superglue/multirc", "train"),
        ("superglue/record", ""),
        ("lepiszcze/punctuation-restoration", ""),
        ("lepiszcze/klej-cdsc-e", "validation"),
    ],
)
def test_every_task_type_trains_and_scores(
    tiny_encoder: Path, data_dir: Path, tmp_path: Path, task: str, eval_split: str
) -> None:
    result = run_job(
        method="full_finetuning",
        task=task,
        backbone=tiny_encoder,
        data_dir=data_dir,
        workdir=tmp_path,
        config={"max_steps": 2, "max_train_examples": 8},
        eval_split=eval_split,
    )
    assert result.outcome == "succeeded", result.error + result.log_tail
    benchmark, key = task.split("/")
    assert set(result.scores) == {m.key for m in get_task(benchmark=benchmark, key=key).metrics}


@pytest.mark.parametrize("method", ["bitfit", "lora", "ia3", "prompt_tuning", "galore"])
def test_methods_run_end_to_end(
    tiny_encoder: Path, data_dir: Path, tmp_path: Path, method: str
) -> None:
    result = run_job(
        method=method,
        task="glue/sst2",
        backbone=tiny_encoder,
        data_dir=data_dir,
        workdir=tmp_path,
    )
    assert result.outcome == "succeeded", result.error
    assert 0 < result.system["trainable_parameters"] <= result.system["total_parameters"]


def test_token_classification_with_lora(tiny_encoder: Path, data_dir: Path, tmp_path: Path) -> None:
    result = run_job(
        method="lora",
        task="lepiszcze/punctuation-restoration",
        backbone=tiny_encoder,
        data_dir=data_dir,
        workdir=tmp_path,
        config={"max_train_examples": 8},
    )
    assert result.outcome == "succeeded", result.error


def test_cancellation_stops_at_a_step(tiny_encoder: Path, data_dir: Path, tmp_path: Path) -> None:
    reporter = CollectingReporter(cancel_after_steps=2)
    result = run_job(
        method="full_finetuning",
        task="glue/sst2",
        backbone=tiny_encoder,
        data_dir=data_dir,
        workdir=tmp_path,
        config={"max_steps": 50},
        reporter=reporter,
    )
    assert result.outcome == "cancelled"
    assert reporter.last_progress[0] == 2
