"""Data loading: real sample files, validation errors, provenance hash, hub fallback."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from leaderboard.catalog import TaskDefinition, get_task, load_catalog
from leaderboard.data import (
    DATA_DIR_ENV,
    DataUnavailable,
    DataValidationError,
    has_gold_labels,
    load_split,
    load_task,
    local_split_path,
)


@pytest.fixture(scope="module")
def data_dir() -> Path:
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        pytest.fail(
            f"set {DATA_DIR_ENV} to the directory of benchmark JSONL samples to run these tests"
        )
    return Path(value)


def _available(directory: Path) -> list[tuple[TaskDefinition, str]]:
    return [
        (task, split)
        for benchmark in load_catalog()
        for task in benchmark.tasks
        for split in task.splits
        if local_split_path(task, split, data_dir=directory).is_file()
    ]


def _write(directory: Path, task: TaskDefinition, split: str, rows: list[Any]) -> Path:
    path = local_split_path(task, split, data_dir=directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_every_available_sample_loads_and_is_hashed(data_dir: Path) -> None:
    available = _available(data_dir)
    # The shared samples cover all GLUE/SuperGLUE tasks and eight LEPISZCZE ones.
    covered = {task.qualified_key for task, _ in available}
    assert len(covered) >= 25, covered
    for task, split in available:
        path = local_split_path(task, split, data_dir=data_dir)
        loaded = load_split(task, split, data_dir=data_dir)
        raw = path.read_bytes()
        assert loaded.sha256 == hashlib.sha256(raw).hexdigest()
        assert len(loaded.rows) == sum(1 for line in raw.splitlines() if line.strip())
        assert loaded.source == str(path)
        assert all(task.label_field in row for row in loaded.rows)


def test_env_var_is_the_default_location(data_dir: Path) -> None:
    task = get_task(benchmark="glue", key="rte")
    assert load_task(task, "validation") == load_task(task, "validation", data_dir=data_dir)


def test_known_rows(data_dir: Path) -> None:
    sst2 = load_task(get_task(benchmark="glue", key="sst2"), "validation", data_dir=data_dir)
    assert sst2[0] == {"sentence": "one long string of cliches .", "label": 0, "idx": 0}
    cdsc = load_task(
        get_task(benchmark="lepiszcze", key="klej-cdsc-e"), "validation", data_dir=data_dir
    )
    assert cdsc[0]["entailment_judgment"] == "NEUTRAL"


def test_punctuation_rows_become_tags(data_dir: Path) -> None:
    task = get_task(benchmark="lepiszcze", key="punctuation-restoration")
    rows = load_task(task, "test", data_dir=data_dir)
    first = rows[0]
    assert first["text_id"] == "wikitalks009129"
    assert first["tokens"][:3] == ["co", "znaczy", "że"]
    # "co znaczy, że beginki ..." -> comma after "znaczy".
    assert first["tags"][:3] == ["O", "B-,", "O"]
    assert len(first["tags"]) == len(first["tokens"])


def test_tmp_files_for_tasks_missing_from_samples(tmp_path: Path) -> None:
    ax = get_task(benchmark="glue", key="ax")
    _write(tmp_path, ax, "test", [
        {"premise": "A cat sat.", "hypothesis": "An animal sat.", "label": 0, "idx": 0},
        {"premise": "A cat sat.", "hypothesis": "No cat sat.", "label": 2, "idx": 1},
    ])  # fmt: skip
    assert [r["label"] for r in load_task(ax, "test", data_dir=tmp_path)] == [0, 2]
    mm = get_task(benchmark="glue", key="mnli_mismatched")
    _write(tmp_path, mm, "validation_mismatched", [
        {"premise": "p", "hypothesis": "h", "label": 1, "idx": 7},
    ])  # fmt: skip
    assert load_task(mm, "validation_mismatched", data_dir=tmp_path)[0]["idx"] == 7


def test_unlabelled_rows_are_recognised(tmp_path: Path) -> None:
    task = get_task(benchmark="glue", key="cola")
    _write(tmp_path, task, "test", [{"sentence": "s", "label": -1, "idx": 0}])
    (row,) = load_task(task, "test", data_dir=tmp_path)
    assert not has_gold_labels(task, row)
    assert has_gold_labels(task, {"sentence": "s", "label": 0, "idx": 0})


@pytest.mark.parametrize(
    ("benchmark", "key", "rows", "message"),
    [
        ("glue", "cola", [{"sentence": "ok", "label": 1, "idx": 0}, {"label": 1, "idx": 1}],
         "row 2: missing field 'sentence'"),
        ("glue", "cola", [{"sentence": "x", "label": 2, "idx": 0}], "out of range 0..1"),
        ("glue", "cola", [{"sentence": "x", "label": "1", "idx": 0}], "must be a label index"),
        ("glue", "cola",
         [{"sentence": "x", "label": 1, "idx": 0}, {"sentence": "y", "label": 0, "idx": 0}],
         "id '0' repeats row 1"),
        ("glue", "stsb",
         [{"sentence1": "a", "sentence2": "b", "label": "high", "idx": 0}], "finite number"),
        ("lepiszcze", "klej-cdsc-e",
         [{"pair_ID": "1", "sentence_A": "a", "sentence_B": "b", "entailment_judgment": "MAYBE"}],
         "'MAYBE' is not one of NEUTRAL"),
        ("lepiszcze", "kpwr-ner", [{"tokens": ["a", "b"], "ner": ["O"]}], "1 tags for 2 tokens"),
        ("glue", "cola",
         ['{"sentence": "x", "label": 1, "idx": 0}', "{not json"], ":2: not valid JSON"),
        ("superglue", "record",
         [{"passage": "p", "query": "q", "entities": [], "answers": "x",
           "idx": {"passage": 0, "query": 0}}],
         "list of answer strings"),
    ],
)  # fmt: skip
def test_invalid_rows(
    tmp_path: Path, benchmark: str, key: str, rows: list[Any], message: str
) -> None:
    task = get_task(benchmark=benchmark, key=key)
    path = _write(tmp_path, task, task.eval_split, rows)
    with pytest.raises(DataValidationError) as info:
        load_task(task, task.eval_split, data_dir=tmp_path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_split() -> None:
    with pytest.raises(DataValidationError, match="has no split 'dev'"):
        load_task(get_task(benchmark="glue", key="cola"), "dev", data_dir=Path("/nonexistent"))


def test_missing_file_is_unavailable_with_instructions(tmp_path: Path) -> None:
    task = get_task(benchmark="lepiszcze", key="aspectemo")
    with pytest.raises(DataUnavailable) as info:
        load_task(task, "test", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "lepiszcze" / "aspectemo" / "test.jsonl") in message
    assert DATA_DIR_ENV in message
    assert "datasets" in message


def test_no_data_dir_and_no_datasets_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(DataUnavailable) as info:
        load_task(get_task(benchmark="glue", key="cola"), "validation")
    message = str(info.value)
    assert f"set {DATA_DIR_ENV}" in message
    assert "install `datasets`" in message


class _ClassLabel:
    def __init__(self, names: list[str]) -> None:
        self.names = names


class _FakeDataset(list[dict[str, Any]]):
    features: dict[str, Any] = {}


def _fake_datasets(
    calls: list[dict[str, Any]], rows: list[dict[str, Any]], features: dict[str, Any]
) -> Any:
    def load_dataset(
        path: str, name: str | None, *, split: str, revision: str | None
    ) -> _FakeDataset:
        calls.append({"path": path, "name": name, "split": split, "revision": revision})
        dataset = _FakeDataset(rows)
        dataset.features = features
        return dataset

    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset  # type: ignore[attr-defined]
    return module


def test_hub_fallback_uses_pinned_revision_and_label_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    base = get_task(benchmark="lepiszcze", key="abusive-clauses-pl")
    task = dataclasses.replace(
        base,
        dataset=dataclasses.replace(
            base.dataset, revision="0123abc", hub_renames=(("class", "label"),)
        ),
    )
    calls: list[dict[str, Any]] = []
    rows = [{"text": "a", "class": 1}, {"text": "b", "class": 0}]
    features = {"class": _ClassLabel(["BEZPIECZNE_POSTANOWIENIE_UMOWNE", "KLAUZULA_ABUZYWNA"])}
    monkeypatch.setitem(sys.modules, "datasets", _fake_datasets(calls, rows, features))
    loaded = load_split(task, "test")
    assert calls == [
        {
            "path": "laugustyniak/abusive-clauses-pl",
            "name": None,
            "split": "test",
            "revision": "0123abc",
        }
    ]
    assert [r["label"] for r in loaded.rows] == [
        "KLAUZULA_ABUZYWNA",
        "BEZPIECZNE_POSTANOWIENIE_UMOWNE",
    ]
    assert loaded.source == "hub:laugustyniak/abusive-clauses-pl@0123abc"
    assert len(loaded.sha256) == 64


def test_hub_failure_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    module = types.ModuleType("datasets")

    def load_dataset(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("offline")

    module.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)
    with pytest.raises(DataUnavailable, match="could not load nyu-mll/glue/cola from the hub"):
        load_task(get_task(benchmark="glue", key="cola"), "validation")


def test_loaded_split_to_dict(data_dir: Path) -> None:
    loaded = load_split(get_task(benchmark="glue", key="wnli"), "validation", data_dir=data_dir)
    data = json.loads(json.dumps(loaded.to_dict()))
    assert data["num_rows"] == 71
    assert data["task"] == "glue/wnli"
