"""Runs submitted as predictions through the API: scored by Podium, or refused by line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from leaderboard.catalog import get_task
from leaderboard.data import load_task, row_id
from tests.factories import BackboneFactory, MethodFactory
from tracking.models import Artifact, Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def glue(settings: Settings, data_dir: Path, tmp_path: Path) -> None:
    settings.PODIUM_DATA_DIR = str(data_dir)
    settings.PODIUM_PRIVATE_DIR = tmp_path / "private"
    call_command("load_catalog", verbosity=0)
    MethodFactory.create(key="paper", executable=False)
    BackboneFactory.create(key="minilm")


def sst2_lines(data_dir: Path, flip: int = 0) -> list[str]:
    definition = get_task(benchmark="glue", key="sst2")
    lines = []
    for i, row in enumerate(load_task(definition, "validation", data_dir=data_dir)):
        label = row[definition.label_field]
        lines.append(
            json.dumps(
                {"idx": row_id(definition, row, i), "prediction": 1 - label if i < flip else label}
            )
        )
    return lines


def body(predictions: str, split: str = "validation") -> dict[str, Any]:
    return {
        "method": "paper",
        "backbone": "minilm",
        "task": "glue/sst2",
        "seed": 0,
        "predictions": predictions,
        "split": split,
        "format": "jsonl",
    }


def test_predictions_are_scored_by_podium(
    client_for: Callable[[User], APIClient], alice: User, glue: None, data_dir: Path
) -> None:
    text = "\n".join(sst2_lines(data_dir, flip=87)) + "\n"
    response = client_for(alice).post("/api/v1/runs/", body(text), format="json")
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["provenance_tier"] == "rescored"
    (accuracy,) = run["scores"]
    assert accuracy["metric"] == "accuracy"
    assert accuracy["value"] == pytest.approx(1 - 87 / 872)
    assert run["provenance"]["predictions"] == 872
    assert Artifact.objects.filter(run__uuid=run["uuid"], kind="predictions").count() == 1


def test_a_bad_line_is_a_400_on_predictions_naming_the_line(
    client_for: Callable[[User], APIClient], alice: User, glue: None, data_dir: Path
) -> None:
    lines = sst2_lines(data_dir)
    lines[4] = '{"idx": 4, "prediction": "maybe"}'
    response = client_for(alice).post("/api/v1/runs/", body("\n".join(lines)), format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["predictions"]
    assert "line 5" in errors["predictions"][0]
    assert not Run.objects.exists()
    assert not Artifact.objects.exists()


def test_a_split_without_gold_labels_is_a_400_on_split(
    client_for: Callable[[User], APIClient], alice: User, glue: None
) -> None:
    response = client_for(alice).post(
        "/api/v1/runs/", body('{"idx": 0, "prediction": 1}\n', split="test"), format="json"
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["split"]
    assert "no gold labels" in errors["split"][0]
    assert not Run.objects.exists()
