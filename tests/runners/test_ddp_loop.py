"""The data-parallel training loop: two gloo processes train one model as one process would.

Each rank trains on its own shard of every batch; DistributedDataParallel must average the
gradients so that both ranks take the same steps. Without that synchronisation the ranks'
weights would drift apart (they see different examples), and with the wrong weighting
they would not match a single process trained on the whole batches.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from torch.multiprocessing.spawn import spawn

from leaderboard.catalog import get_task
from leaderboard.data import load_task
from runners.backbones import ResolvedBackbone, load_tokenizer
from runners.distributed import ProcessGroup, process_group, shard
from runners.reporting import CollectingReporter
from runners.spec import BackboneRef
from runners.testing import build_tiny_encoder
from runners.training.encoding import encode_rows, task_format
from runners.training.loop import TrainSettings, prepare_method, train_gradient
from runners.training.modeling import build_model
from runners.training.optim import build_optimizer

WORLD_SIZE = 2
STEPS = 5
# 5 per batch: the ranks get 3 and 2 examples, so the shares must be weighted right.
SETTINGS = TrainSettings(
    learning_rate=1e-3,
    batch_size=5,
    eval_batch_size=64,
    epochs=1.0,
    max_steps=STEPS,
    warmup_ratio=0.0,
    weight_decay=0.01,
    max_length=64,
    max_train_examples=0,
    log_every=1,
    max_grad_norm=1.0,
)


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    texts = (data_dir / "glue/sst2/train.jsonl").read_text(encoding="utf-8").splitlines()[:300]
    directory = build_tiny_encoder(tmp_path_factory.mktemp("tiny-ddp"), texts=texts)
    # Without dropout the function is the same in every process: training must match.
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config_path.write_text(json.dumps(config))
    return directory


def train_tiny(backbone: Path, data_dir: Path) -> dict[str, Any]:
    """Full fine-tuning of the tiny model on SST-2 rows with the real loop."""
    torch.set_num_threads(1)
    task = get_task(benchmark="glue", key="sst2")
    resolved = ResolvedBackbone(
        ref=BackboneRef(key="tiny", source="local", local_path=str(backbone)), path=str(backbone)
    )
    tokenizer = load_tokenizer(resolved)
    rows = load_task(task, "train", data_dir=data_dir)[:40]
    fmt = task_format(task, rows)
    items = encode_rows(
        task=task, fmt=fmt, rows=rows, tokenizer=tokenizer, max_length=64, training=True
    )
    torch.manual_seed(0)
    model = build_model(backbone=resolved, task=task, fmt=fmt, device=torch.device("cpu"))
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    prepared = prepare_method("full", model, fmt=fmt, config={}, rng=random.Random(0))
    setup = build_optimizer(model, name="adamw", learning_rate=1e-3, weight_decay=0.01)
    reporter = CollectingReporter()
    figures = train_gradient(
        prepared=prepared,
        setup=setup,
        items=items,
        fmt=fmt,
        settings=SETTINGS,
        reporter=reporter,
        rng=random.Random(0),
        device=torch.device("cpu"),
        pad_token_id=tokenizer.pad_token_id,
    )
    return {
        "initial": initial,
        "final": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "figures": figures,
        "loss": reporter.curve("loss"),
    }


def train_rank(rank: int, init_file: str, backbone: str, data_dir: str, out: str) -> None:
    """One spawned rank: join the gloo group, train, save what it ended with."""
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE
    )
    try:
        group = process_group()
        assert group is not None
        assert group.rank == rank
        torch.save(train_tiny(Path(backbone), Path(data_dir)), Path(out) / f"rank-{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def test_ddp_ranks_stay_identical_and_match_one_process(
    backbone: Path, data_dir: Path, tmp_path: Path
) -> None:
    spawn(
        train_rank,
        args=(str(tmp_path / "rendezvous"), str(backbone), str(data_dir), str(tmp_path)),
        nprocs=WORLD_SIZE,
        join=True,
    )
    ranks = [torch.load(tmp_path / f"rank-{r}.pt") for r in range(WORLD_SIZE)]
    alone = train_tiny(backbone, data_dir)

    # Synchronised gradients: both ranks hold exactly the same weights after every step...
    for name, value in ranks[0]["final"].items():
        assert torch.equal(value, ranks[1]["final"][name]), name
    # ...which moved from where they started...
    moved = [n for n, v in ranks[0]["final"].items() if not torch.equal(v, ranks[0]["initial"][n])]
    assert "classifier.weight" in moved
    assert any(n.startswith("bert.encoder.") for n in moved)
    # ...to where one process gets on the whole batches.
    for name, value in alone["final"].items():
        assert torch.allclose(value, ranks[0]["final"][name], atol=1e-5), name
    # The logged loss is the whole batch's, as one process logs it.
    distributed_loss = [value for _, value in ranks[0]["loss"]]
    assert distributed_loss == pytest.approx([value for _, value in alone["loss"]], abs=1e-5)

    # Each rank trained on its own share: 3 + 2 of every 5 examples.
    figures = ranks[0]["figures"]
    assert figures["world_size"] == WORLD_SIZE
    assert figures["train_examples_rank_0"] == 3 * STEPS
    assert figures["train_examples_rank_1"] == 2 * STEPS
    assert "train_examples_rank_0" not in alone["figures"]


def test_a_batch_is_dealt_round_robin_and_a_rank_dealt_nothing_contributes_nothing() -> None:
    first, second = (ProcessGroup(rank=r, world_size=2, backend="gloo") for r in (0, 1))
    items, share = shard(["a", "b", "c"], first)
    assert items == ["a", "c"]
    assert share == pytest.approx(2 / 3)
    items, share = shard(["a", "b", "c"], second)
    assert items == ["b"]
    assert share == pytest.approx(1 / 3)
    # A one-example batch: rank 1 still joins the all-reduce, with a zero share.
    assert shard(["a"], second) == (["a"], 0.0)


def test_no_process_group_outside_torchrun() -> None:
    assert process_group() is None
