"""Evaluate a causal LM on Podium tasks with lm-eval's Python API, on Podium's own rows.

For each Podium task lm-eval covers, a task YAML is written into the job's workdir that
`include:`s the installed lm-eval task (prompts, choices, `!function` helpers unchanged)
and points it at JSONL files of the job's train and eval rows (the hub's field format),
so lm-eval's documents are Podium's eval rows in order and per-sample outputs map back by
`doc_id`. The model is loaded here (GGUF de-quantised by transformers, bf16 + SDPA on a
GPU) and handed to lm-eval's HFLM wrapper. Which lm-eval task serves which Podium task, and
its YAML overrides, is `leaderboard.lm_eval_names`, shared with the `podium` client's import.

lm-eval's own metric values are kept as extra scores for cross-checking; the official
scores are computed by `runners.execute` from the predictions.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from leaderboard.catalog import TaskDefinition
from leaderboard.data import DataError
from leaderboard.lm_eval_names import LM_EVAL_TASKS, LOCAL_TASK_PREFIX, LmEvalTask
from runners.backbones import load_causal_lm, load_tokenizer, resolve_backbone
from runners.context import JobContext, MethodOutput
from runners.reporting import check_cancelled


class TaskNotInLmEval(ValueError):
    """lm-eval has no (native) task for this Podium task."""


def lm_eval_task(task: TaskDefinition) -> LmEvalTask:
    try:
        return LM_EVAL_TASKS[task.qualified_key]
    except KeyError:
        hint = (
            " (lm-eval 0.4.13 has no native STS-B task; its `stsb` is a unitxt task that "
            "needs the unitxt catalog)"
            if task.key == "stsb"
            else ""
        )
        raise TaskNotInLmEval(
            f"lm-eval has no task for {task.qualified_key}{hint}; lm-eval covers: "
            f"{', '.join(sorted(LM_EVAL_TASKS))}"
        ) from None


def _write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_task_yaml(
    *,
    spec: LmEvalTask,
    directory: Path,
    eval_rows: Sequence[Mapping[str, Any]],
    train_rows: Sequence[Mapping[str, Any]] | None,
) -> str:
    """A local task that reuses the installed one on our rows; returns its task name."""
    import lm_eval  # type: ignore[import-untyped]

    installed = Path(lm_eval.__file__).parent / "tasks" / spec.yaml
    directory.mkdir(parents=True, exist_ok=True)
    eval_file = directory / "validation.jsonl"
    _write_jsonl(eval_file, eval_rows)
    data_files = {"validation": str(eval_file)}
    if train_rows:
        train_file = directory / "train.jsonl"
        _write_jsonl(train_file, train_rows)
        data_files["train"] = str(train_file)
    name = f"{LOCAL_TASK_PREFIX}{spec.name}"
    config: dict[str, Any] = {
        "include": str(installed),
        "task": name,
        "tag": [],
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {
            "data_files": data_files,
            # datasets' json->arrow cache stays inside the job's workdir.
            "cache_dir": str(directory / "datasets_cache"),
        },
        # Our eval rows are the split lm-eval evaluates, whatever the task called it.
        "validation_split": "validation",
        "test_split": None,
        "training_split": "train" if train_rows else None,
        "fewshot_split": "train" if train_rows else None,
        **dict(spec.overrides or {}),
    }
    # JSON is valid YAML, and leaves no quoting question open.
    (directory / f"{name}.yaml").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return name


def _choice_index(sample: Mapping[str, Any]) -> int:
    """argmax over the per-choice log-likelihoods of a multiple_choice sample."""
    responses = sample["filtered_resps"]
    scores = [float(r[0]) if isinstance(r, list | tuple) else float(r) for r in responses]
    return max(range(len(scores)), key=scores.__getitem__)


def _generated_index(sample: Mapping[str, Any]) -> int:
    value = sample["filtered_resps"]
    while isinstance(value, list | tuple):
        if not value:
            return -1
        value = value[0]
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def predictions_from_samples(
    *,
    task: TaskDefinition,
    samples: Sequence[Mapping[str, Any]],
    num_rows: int,
    generative: bool,
    fallback_label: str,
) -> tuple[list[Any], int]:
    """Podium predictions aligned with the eval rows, and how many answers were unparsable.

    Multiple-choice tasks predict the choice with the highest log-likelihood: the choice
    index is the label index (lm-eval's `doc_to_target: label`), ReCoRD's is an entity of
    the processed document. Generative tasks (PolEmo2) map the answer letter to the label
    index; an answer without a letter gets `fallback_label`.
    """
    by_doc = {int(s["doc_id"]): s for s in samples}
    if sorted(by_doc) != list(range(num_rows)):
        raise RuntimeError(
            f"lm-eval returned samples for {len(by_doc)} documents, expected {num_rows}"
        )
    predictions: list[Any] = []
    unparsed = 0
    for doc_id in range(num_rows):
        sample = by_doc[doc_id]
        if task.task_type == "record":
            entities = sample["doc"]["entities"]
            predictions.append(str(entities[_choice_index(sample)]))
            continue
        index = _generated_index(sample) if generative else _choice_index(sample)
        if 0 <= index < len(task.labels):
            predictions.append(task.labels[index])
        else:
            unparsed += 1
            predictions.append(fallback_label)
    return predictions, unparsed


def _majority_label(task: TaskDefinition, rows: Sequence[Mapping[str, Any]]) -> str:
    from runners.training.encoding import class_index

    counts = Counter(class_index(task, row[task.label_field]) for row in rows)
    if not counts:
        return task.labels[0]
    return task.labels[min(counts, key=lambda i: (-counts[i], i))]


def run_lm_eval(context: JobContext) -> MethodOutput:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from runners.evaluation import squad_shim

    squad_shim.install()  # lm-eval's ReCoRD imports a module transformers 5 removed

    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM  # type: ignore[import-untyped]
    from lm_eval.tasks import TaskManager  # type: ignore[import-untyped]

    from runners.evaluation.packed import PackedHFLM

    task = context.task
    spec = lm_eval_task(task)
    config = context.config
    reporter = context.reporter
    eval_rows = context.rows(context.eval_split)
    try:
        train_rows: list[dict[str, Any]] | None = context.rows(context.train_split)
    except DataError:
        train_rows = None  # zero-shot needs none; few-shot will say so
    if int(config["num_fewshot"]) > 0 and not train_rows:
        raise ValueError(f"{task.qualified_key}: few-shot needs training rows, none found")

    task_dir = context.workdir / "lm_eval_tasks"
    name = write_task_yaml(
        spec=spec, directory=task_dir, eval_rows=eval_rows, train_rows=train_rows
    )
    check_cancelled(reporter)

    torch.manual_seed(context.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    backbone = resolve_backbone(context.spec.backbone)
    started = time.perf_counter()
    tokenizer = load_tokenizer(backbone)
    model = load_causal_lm(backbone, device=device)
    load_time = time.perf_counter() - started
    reporter.log(f"loaded {backbone.path} ({backbone.gguf_file or 'hf'}) in {load_time:.1f}s")
    lm_kwargs: dict[str, Any] = {
        "pretrained": model,
        "tokenizer": tokenizer,
        "batch_size": int(config["batch_size"]),
        "device": device,
    }
    if int(config["max_length"]) > 0:
        lm_kwargs["max_length"] = int(config["max_length"])
    # Log-likelihood requests run packed unless the job turns it off (`packed`, once the
    # method's schema lists it): same scores to float tolerance, fewer and denser passes.
    packed = bool(config.get("packed", True))
    lm = PackedHFLM(**lm_kwargs) if packed else HFLM(**lm_kwargs)
    manager = TaskManager(include_path=str(task_dir), include_defaults=False)
    reporter.progress(step=0, total_steps=1)
    started = time.perf_counter()
    results = lm_eval.simple_evaluate(
        model=lm,
        tasks=[name],
        task_manager=manager,
        num_fewshot=int(config["num_fewshot"]),
        log_samples=True,
        bootstrap_iters=0,
        random_seed=context.seed,
        numpy_random_seed=context.seed,
        torch_random_seed=context.seed,
        fewshot_random_seed=context.seed,
        apply_chat_template=bool(config["apply_chat_template"]),
    )
    eval_time = max(time.perf_counter() - started, 1e-9)
    if results is None:
        raise RuntimeError("lm_eval.simple_evaluate returned no results")
    check_cancelled(reporter)
    fallback = _majority_label(task, train_rows or []) if task.labels else ""
    predictions, unparsed = predictions_from_samples(
        task=task,
        samples=results["samples"][name],
        num_rows=len(eval_rows),
        generative=spec.generative,
        fallback_label=fallback,
    )
    extra_scores = {
        f"lm_eval/{key.split(',')[0]}": float(value)
        for key, value in results["results"][name].items()
        if isinstance(value, int | float) and "stderr" not in key and key != "sample_len"
    }
    reporter.progress(step=1, total_steps=1, examples_per_second=len(eval_rows) / eval_time)
    reporter.log_metrics({"examples_per_second": len(eval_rows) / eval_time}, step=1)
    system = {
        "model_load_s": load_time,
        "eval_time_s": eval_time,
        "examples_per_second": len(eval_rows) / eval_time,
        "unparsed_answers": float(unparsed),
        "num_fewshot": float(config["num_fewshot"]),
        "seed": float(context.seed),
        # 1 when log-likelihoods were scored packed (0: off, or the check fell back).
        "packed_loglikelihood": float(isinstance(lm, PackedHFLM) and lm.packing),
    }
    if isinstance(lm, PackedHFLM):
        system["packed_forward_passes"] = float(lm.forward_passes)
    return MethodOutput(
        predictions=predictions,
        trainable_parameters=0,
        extra_scores=extra_scores,
        system=system,
    )
