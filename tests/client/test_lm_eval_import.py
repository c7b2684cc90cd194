"""Importing lm-evaluation-harness results: the 0.4 results JSON mapped onto Podium tasks
and metrics by the one mapping the lm-eval runner uses, submitted as external runs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from catalog.models import Task
from leaderboard.catalog import get_task
from leaderboard.lm_eval_names import LM_EVAL_TASKS
from podium.cli import main
from podium.errors import PodiumError
from podium.lm_eval import plan_lm_eval_import
from tests.factories import BackboneFactory, UserFactory
from tracking.models import Run, Score


def lm_eval_results(**config: Any) -> dict[str, Any]:
    """A results file as lm-eval 0.4's `--output_path` writes it (abridged: the per-task
    `configs` and the environment report are left out)."""
    return {
        "results": {
            "sst2": {"alias": "sst2", "acc,none": 0.9128, "acc_stderr,none": 0.0096},
            "mrpc": {
                "alias": "mrpc",
                "acc,none": 0.6838,
                "acc_stderr,none": 0.0230,
                "f1,none": 0.8122,
                "f1_stderr,none": "N/A",
            },
            "cola": {"alias": "cola", "mcc,none": 0.0277, "mcc_stderr,none": 0.0310},
            "cb": {
                "alias": "cb",
                "acc,none": 0.4107,
                "acc_stderr,none": 0.0663,
                "f1,none": 0.1941,
                "f1_stderr,none": "N/A",
            },
            "multirc": {"alias": "multirc", "acc,none": 0.5697, "acc_stderr,none": 0.0071},
            "polemo2_in": {
                "alias": "polemo2_in",
                "f1,score-first": 0.4114,
                "f1_stderr,score-first": "N/A",
                "accuracy,score-first": 0.4114,
                "accuracy_stderr,score-first": "N/A",
            },
            "hellaswag": {"alias": "hellaswag", "acc,none": 0.2891, "acc_norm,none": 0.3050},
        },
        "group_subtasks": {"sst2": [], "mrpc": [], "cola": [], "cb": [], "multirc": []},
        "versions": {"sst2": 1.0, "mrpc": 1.0, "cola": 1.0, "cb": 1.0, "multirc": 2.0},
        "n-shot": {"sst2": 0, "mrpc": 0, "cola": 0, "cb": 5, "multirc": 0, "polemo2_in": 0},
        "higher_is_better": {"sst2": {"acc": True}},
        "n-samples": {"sst2": {"original": 872, "effective": 872}},
        "config": {
            "model": "hf",
            "model_args": "pretrained=HuggingFaceTB/SmolLM2-135M",
            "batch_size": 8,
            "device": "cpu",
            "limit": None,
            "bootstrap_iters": 100000,
            "random_seed": 0,
            "numpy_seed": 1234,
            "torch_seed": 1234,
            "fewshot_seed": 1234,
            **config,
        },
        "git_hash": "5e8f1d2",
        "date": 1763860000.0,
        "lm_eval_version": "0.4.13",
        "model_name": "HuggingFaceTB/SmolLM2-135M",
    }


def test_lm_eval_names_and_metrics_map_onto_the_catalog() -> None:
    for path, spec in LM_EVAL_TASKS.items():
        benchmark, key = path.split("/")
        metrics = {m.key for m in get_task(benchmark=benchmark, key=key).metrics}
        if spec.unmapped_reason:
            assert not spec.metrics
            continue
        assert set(spec.metrics.values()) == metrics, path


def test_the_plan_maps_tasks_and_metrics_and_says_what_it_skips() -> None:
    plan = plan_lm_eval_import(lm_eval_results())
    submitted = {s.task: (s.lm_eval_task, s.scores, s.config) for s in plan.submissions}
    assert submitted == {
        "glue/sst2": ("sst2", {"accuracy": 0.9128}, {"num_fewshot": 0}),
        "glue/mrpc": ("mrpc", {"accuracy": 0.6838, "f1": 0.8122}, {"num_fewshot": 0}),
        "glue/cola": ("cola", {"mcc": 0.0277}, {"num_fewshot": 0}),
        "superglue/cb": ("cb", {"accuracy": 0.4107, "macro_f1": 0.1941}, {"num_fewshot": 5}),
        "lepiszcze/klej-polemo2-in": ("polemo2_in", {"accuracy": 0.4114}, {"num_fewshot": 0}),
    }
    skipped = {s.lm_eval_task: s.reason for s in plan.skipped}
    assert set(skipped) == {"multirc", "hellaswag"}
    assert "per-answer accuracy" in skipped["multirc"]
    assert skipped["hellaswag"] == "no Podium task for it"
    assert plan.seed == 0
    assert plan.description == (
        "Imported from lm-eval 0.4.13 results of HuggingFaceTB/SmolLM2-135M "
        "(pretrained=HuggingFaceTB/SmolLM2-135M), evaluated 1763860000.0."
    )
    mapped = plan_lm_eval_import(lm_eval_results(), task_map={"hellaswag": "glue/rte"}, seed=3)
    assert next(s for s in mapped.submissions if s.task == "glue/rte").scores == {
        "accuracy": 0.2891
    }
    assert mapped.seed == 3


def test_results_on_a_subset_are_refused() -> None:
    with pytest.raises(PodiumError, match="--limit 100"):
        plan_lm_eval_import(lm_eval_results(limit=100))
    with pytest.raises(PodiumError, match="no 'results'"):
        plan_lm_eval_import({"config": {}})


@pytest.mark.django_db(transaction=True)
def test_import_lm_eval_records_one_run_per_task_once(
    live_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from api.services import token_create

    call_command("load_catalog", verbosity=0)
    user = UserFactory.create(username="dana")
    BackboneFactory.create(key="smollm2-135m")
    monkeypatch.setenv("PODIUM_URL", live_server.url)
    monkeypatch.setenv("PODIUM_TOKEN", token_create(user=user, name="cli").key)
    results = tmp_path / "results_2025-11-22T10-00-00.json"
    results.write_text(json.dumps(lm_eval_results(), indent=2))
    argv = ["import-lm-eval", str(results), "--backbone", "smollm2-135m"]

    out = io.StringIO()
    assert main([*argv, "--dry-run"], out=out) == 0
    assert "would submit glue/sst2 (from sst2): accuracy=0.9128" in out.getvalue()
    assert not Run.objects.exists()

    out = io.StringIO()
    assert main(argv, out=out) == 0
    printed = out.getvalue()
    assert printed.count("imported ") == 5
    assert "skipped multirc: lm-eval's multirc reports per-answer accuracy only" in printed
    runs = Run.objects.filter(owner=user)
    assert runs.count() == 5
    cb = runs.get(task=Task.objects.get(benchmark__key="superglue", key="cb", is_current=True))
    assert (cb.method.key, cb.backbone.key, cb.config, cb.seed) == (
        "lm_eval",
        "smollm2-135m",
        {"num_fewshot": 5},
        0,
    )
    assert cb.provenance_tier == "self_reported"
    assert sorted(cb.tags.values_list("name", flat=True)) == ["lm-eval"]
    assert dict(Score.objects.filter(run=cb).values_list("metric__key", "value")) == {
        "accuracy": 0.4107,
        "macro_f1": 0.1941,
    }

    # Importing the same file again changes nothing.
    out = io.StringIO()
    assert main(argv, out=out) == 0
    assert out.getvalue().count("already imported ") == 5
    assert Run.objects.count() == 5

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["import-lm-eval", str(broken), "--backbone", "smollm2-135m"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("podium: error: ")
    assert "is not JSON" in line
