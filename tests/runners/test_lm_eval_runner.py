"""The lm-eval runner scores a tiny random decoder on local rows, offline."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

# The hub is never reachable from tests: models are built locally, data read from files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


from leaderboard.catalog import get_task
from leaderboard.lm_eval_names import LM_EVAL_TASKS
from runners.evaluation.lm_eval_runner import (
    TaskNotInLmEval,
    lm_eval_task,
    predictions_from_samples,
    write_task_yaml,
)
from runners.evaluation.squad_shim import compute_exact, compute_f1
from runners.execute import execute
from runners.reporting import CollectingReporter
from runners.spec import BackboneRef, JobResult, JobSpec, TaskRef
from runners.testing import build_tiny_decoder


@pytest.fixture(scope="module")
def tiny_decoder(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    lines = (data_dir / "superglue" / "copa" / "train.jsonl").read_text().splitlines()
    return build_tiny_decoder(tmp_path_factory.mktemp("tiny-decoder"), texts=lines[:200])


def run_lm_eval_job(
    *, task: str, backbone: Path, data_dir: Path, workdir: Path, config: dict[str, object]
) -> JobResult:
    benchmark, key = task.split("/")
    spec = JobSpec(
        job_id=1,
        attempt=1,
        run_uuid="test",
        method="lm_eval",
        config=config,
        seed=3,
        backbone=BackboneRef(key="tiny", source="local", local_path=str(backbone)),
        task=TaskRef(
            benchmark=benchmark, key=key, version=get_task(benchmark=benchmark, key=key).version
        ),
    )
    return execute(spec, reporter=CollectingReporter(), workdir=workdir, data_dir=data_dir)


def test_copa_with_a_tiny_decoder(tiny_decoder: Path, data_dir: Path, tmp_path: Path) -> None:
    result = run_lm_eval_job(
        task="superglue/copa",
        backbone=tiny_decoder,
        data_dir=data_dir,
        workdir=tmp_path,
        config={"batch_size": 16},
    )
    assert result.outcome == "succeeded", result.error + result.log_tail
    # Podium's own scoring of the per-sample answers agrees with lm-eval's aggregate.
    assert result.scores["accuracy"] == pytest.approx(result.extra_scores["lm_eval/acc"])
    lines = result.inline_artifacts[0].content.splitlines()
    assert len(lines) == 100
    assert {json.loads(line)["prediction"] for line in lines} <= {"choice1", "choice2"}
    # The task YAML read our local rows, not the hub.
    written = json.loads((tmp_path / "lm_eval_tasks" / "podium_copa.yaml").read_text())
    assert written["dataset_path"] == "json"


def test_stsb_is_refused_with_a_clear_reason(
    tiny_decoder: Path, data_dir: Path, tmp_path: Path
) -> None:
    result = run_lm_eval_job(
        task="glue/stsb", backbone=tiny_decoder, data_dir=data_dir, workdir=tmp_path, config={}
    )
    assert result.outcome == "failed"
    assert "no native STS-B task" in result.error
    with pytest.raises(TaskNotInLmEval, match="kpwr-ner"):
        lm_eval_task(get_task(benchmark="lepiszcze", key="kpwr-ner"))


def test_every_mapped_task_exists_in_lm_eval(tmp_path: Path) -> None:
    for qualified, spec in LM_EVAL_TASKS.items():
        benchmark, key = qualified.split("/")
        get_task(benchmark=benchmark, key=key)  # the Podium side exists
        name = write_task_yaml(spec=spec, directory=tmp_path / key, eval_rows=[{}], train_rows=None)
        config = json.loads((tmp_path / key / f"{name}.yaml").read_text())
        assert Path(config["include"]).is_file(), qualified
        assert config["test_split"] is None
        assert config["training_split"] is None


def test_generative_answers_map_to_labels() -> None:
    task = get_task(benchmark="lepiszcze", key="klej-polemo2-in")
    samples = [
        {"doc_id": 1, "filtered_resps": [2]},
        {"doc_id": 0, "filtered_resps": [-1]},  # no A-D letter in the answer
    ]
    predictions, unparsed = predictions_from_samples(
        task=task, samples=samples, num_rows=2, generative=True, fallback_label=task.labels[1]
    )
    assert predictions == [task.labels[1], task.labels[2]]
    assert unparsed == 1


def test_choice_and_record_answers() -> None:
    copa = get_task(benchmark="superglue", key="copa")
    samples = [{"doc_id": 0, "filtered_resps": [(-3.0, False), (-1.0, True)]}]
    assert predictions_from_samples(
        task=copa, samples=samples, num_rows=1, generative=False, fallback_label=""
    ) == (["choice2"], 0)
    record = get_task(benchmark="superglue", key="record")
    samples = [
        {
            "doc_id": 0,
            "doc": {"entities": ["Alice", "Bob"]},
            "filtered_resps": [(-1.0, False), (-4.0, False)],
        }
    ]
    assert predictions_from_samples(
        task=record, samples=samples, num_rows=1, generative=False, fallback_label=""
    ) == (["Alice"], 0)
    with pytest.raises(RuntimeError, match="expected 2"):
        predictions_from_samples(
            task=copa, samples=samples, num_rows=2, generative=False, fallback_label=""
        )


def test_squad_shim_matches_the_squad_definitions() -> None:
    assert compute_exact("The Cat", "cat") == 1
    assert compute_f1("new york city", "york city") == pytest.approx(0.8)
    assert compute_f1("", "") == 1.0


def test_polemo2_generates_five_tokens_and_its_filter_still_reads_the_letter(
    data_dir: Path, tmp_path: Path
) -> None:
    import yaml
    from lm_eval.tasks import TaskManager  # type: ignore[import-untyped]

    spec = lm_eval_task(get_task(benchmark="lepiszcze", key="klej-polemo2-in"))
    rows = [
        json.loads(line)
        for line in (data_dir / "lepiszcze" / "klej-polemo2-in" / "validation.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()[:3]
    ]
    name = write_task_yaml(spec=spec, directory=tmp_path, eval_rows=rows, train_rows=None)
    written = json.loads((tmp_path / f"{name}.yaml").read_text())
    installed = yaml.safe_load(Path(written["include"]).read_text())
    # Only the generation length differs from lm-eval's own task.
    assert written["generation_kwargs"] == {**installed["generation_kwargs"], "max_gen_toks": 5}

    manager = TaskManager(include_path=str(tmp_path), include_defaults=False)
    task = manager.load(name)["tasks"][name]
    assert task.config.generation_kwargs["max_gen_toks"] == 5
    # SmolLM2's answers cut at five tokens: the "score-first" filter maps the letter.
    answers = ["\nB - Neg", " C", "\n- 1\n"]
    instances = [
        SimpleNamespace(resps=[answer], doc=row, filtered_resps={})
        for answer, row in zip(answers, rows, strict=True)
    ]
    (ensemble,) = task._filters
    ensemble.apply(instances)
    assert [i.filtered_resps["score-first"] for i in instances] == [1, 2, -1]
