"""Runs submitted as predictions are scored by Podium against its own gold labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from pytest_django.fixtures import Settings

from catalog.models import GoldSplit, Task
from leaderboard.catalog import get_task
from leaderboard.data import load_task, row_id
from tests.factories import BackboneFactory, MethodFactory, UserFactory
from tracking.models import Artifact, ProvenanceTier, Run, Score
from tracking.rescoring import gold_split_upload, run_create_from_predictions
from tracking.services import RunInputError

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(settings: Settings, data_dir: Path, tmp_path: Path) -> None:
    settings.PODIUM_DATA_DIR = str(data_dir)
    settings.PODIUM_PRIVATE_DIR = tmp_path / "private"
    call_command("load_catalog", verbosity=0)


def current(benchmark: str, key: str) -> Task:
    return Task.objects.get(benchmark__key=benchmark, key=key, is_current=True)


def submit(task: Task, split: str, text: str) -> Run:
    return run_create_from_predictions(
        owner=UserFactory.create(),
        method=MethodFactory.create(executable=False),
        backbone=BackboneFactory.create(),
        task=task,
        config={},
        seed=0,
        split=split,
        predictions=text,
    )


def predictions_jsonl(benchmark: str, key: str, split: str, data_dir: Path, flip: int = 0) -> str:
    definition = get_task(benchmark=benchmark, key=key)
    rows = load_task(definition, split, data_dir=data_dir)
    lines = []
    for i, row in enumerate(rows):
        label = row[definition.label_field]
        if i < flip:
            label = 1 - label
        lines.append(json.dumps({"idx": row_id(definition, row, i), "prediction": label}))
    return "\n".join(lines) + "\n"


def test_predictions_are_scored_and_the_run_is_marked_rescored(
    catalog: None, data_dir: Path
) -> None:
    sst2 = current("glue", "sst2")
    run = submit(
        sst2, "validation", predictions_jsonl("glue", "sst2", "validation", data_dir, flip=87)
    )
    assert run.provenance_tier == ProvenanceTier.RESCORED
    accuracy = Score.objects.get(run=run, metric__key="accuracy").value
    assert accuracy == pytest.approx(1 - 87 / 872)
    assert run.provenance["predictions"] == 872
    assert len(run.provenance["gold_sha256"]) == 64
    # Per-class figures for the task page; the two classes' supports add up to the split.
    supports = [
        run.extra_scores[f"per_class/{label}/support"] for label in ("negative", "positive")
    ]
    assert sum(supports) == 872
    assert 0 < run.extra_scores["per_class/positive/f1"] < 1
    artifact = Artifact.objects.get(run=run)
    assert (Path(settings.MEDIA_ROOT) / artifact.uri).read_text().count("\n") == 872


def test_a_bad_file_is_refused_naming_the_line_and_nothing_is_written(
    catalog: None, data_dir: Path
) -> None:
    text = predictions_jsonl("glue", "sst2", "validation", data_dir).splitlines()
    text[4] = '{"idx": 4, "prediction": "maybe"}'
    with pytest.raises(RunInputError, match="line 5"):
        submit(current("glue", "sst2"), "validation", "\n".join(text))
    assert not Run.objects.exists()


def test_a_split_without_gold_labels_is_refused(catalog: None) -> None:
    with pytest.raises(RunInputError, match="holds no gold labels for glue/sst2 split 'test'"):
        submit(current("glue", "sst2"), "test", '{"idx": 0, "prediction": 1}\n')


def test_private_gold_is_uploaded_by_staff_and_used_for_scoring(catalog: None) -> None:
    ax = current("glue", "ax")
    definition = get_task(benchmark="glue", key="ax")
    rows = [
        {
            definition.input_fields[0]: f"premise {i}",
            definition.input_fields[1]: f"hypothesis {i}",
            definition.label_field: i % 3,
            "idx": i,
        }
        for i in range(30)
    ]
    content = "".join(json.dumps(r) + "\n" for r in rows).encode()
    gold = gold_split_upload(task=ax, split="test", content=content, uploaded_by=None)
    assert (gold.rows, GoldSplit.objects.count()) == (30, 1)
    stored = Path(settings.PODIUM_PRIVATE_DIR)
    assert not stored.is_relative_to(Path(settings.MEDIA_ROOT))
    perfect = "".join(json.dumps({"idx": i, "prediction": i % 3}) + "\n" for i in range(30))
    run = submit(ax, "test", perfect)
    assert Score.objects.get(run=run, metric__key="mcc").value == pytest.approx(1.0)


def test_an_invalid_gold_upload_is_refused_and_nothing_is_stored(catalog: None) -> None:
    ax = current("glue", "ax")
    with pytest.raises(RunInputError, match="file:"):
        gold_split_upload(task=ax, split="test", content=b'{"premise": "x"}\n', uploaded_by=None)
    assert not GoldSplit.objects.exists()
    assert not list(Path(settings.PODIUM_PRIVATE_DIR).rglob("*.jsonl"))
