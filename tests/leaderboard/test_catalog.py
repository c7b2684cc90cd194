"""The packaged benchmark catalog: contents, interface, validation errors."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import yaml

from leaderboard.catalog import (
    TASK_TYPES,
    BenchmarkDefinition,
    CatalogError,
    TaskDefinition,
    get_task,
    load_catalog,
)
from leaderboard.metrics import get_metric

PACKAGED = Path(__file__).resolve().parents[2] / "leaderboard" / "benchmarks"


def _by_key() -> dict[str, BenchmarkDefinition]:
    return {b.key: b for b in load_catalog()}


def test_three_benchmarks_with_the_expected_tasks() -> None:
    catalog = _by_key()
    assert list(catalog) == ["glue", "superglue", "lepiszcze"]
    assert [t.key for t in catalog["glue"].tasks] == [
        "cola",
        "sst2",
        "mrpc",
        "stsb",
        "qqp",
        "mnli_matched",
        "mnli_mismatched",
        "qnli",
        "rte",
        "wnli",
        "ax",
    ]
    assert [t.key for t in catalog["superglue"].tasks] == [
        "boolq",
        "cb",
        "copa",
        "multirc",
        "record",
        "rte",
        "wic",
        "wsc",
        "axb",
        "axg",
    ]
    assert sorted(t.dataset.hub_id for t in catalog["lepiszcze"].tasks) == sorted(
        [
            "laugustyniak/abusive-clauses-pl",
            "clarin-pl/aspectemo",
            "allegro/klej-cdsc-e",
            "clarin-pl/dialogue-acts",
            "allegro/klej-dyk",
            "clarin-pl/kpwr-ner",
            "clarin-pl/nkjp-pos",
            "clarin-pl/polemo2-official",
            "allegro/klej-polemo2-in",
            "allegro/klej-polemo2-out",
            "laugustyniak/political-advertising-pl",
            "allegro/klej-psc",
            "clarin-pl/2021-punctuation-restoration",
        ]
    )


@pytest.mark.parametrize(
    ("benchmark", "key", "metrics", "primary"),
    [
        ("glue", "cola", ["mcc"], "mcc"),
        ("glue", "sst2", ["accuracy"], "accuracy"),
        ("glue", "mrpc", ["f1", "accuracy"], "f1"),
        ("glue", "stsb", ["pearson", "spearman"], "pearson"),
        ("glue", "qqp", ["f1", "accuracy"], "f1"),
        ("glue", "mnli_mismatched", ["accuracy"], "accuracy"),
        ("glue", "ax", ["mcc"], "mcc"),
        ("superglue", "cb", ["macro_f1", "accuracy"], "macro_f1"),
        ("superglue", "multirc", ["f1a", "multirc_em"], "f1a"),
        ("superglue", "record", ["record_f1", "record_em"], "record_f1"),
        ("superglue", "axb", ["mcc"], "mcc"),
        ("superglue", "axg", ["gender_parity", "accuracy"], "gender_parity"),
        ("lepiszcze", "abusive-clauses-pl", ["accuracy", "macro_f1"], "macro_f1"),
        ("lepiszcze", "klej-cdsc-e", ["accuracy"], "accuracy"),
        ("lepiszcze", "klej-dyk", ["f1"], "f1"),
        ("lepiszcze", "kpwr-ner", ["seqeval_f1"], "seqeval_f1"),
        ("lepiszcze", "dialogue-acts", ["macro_f1"], "macro_f1"),
    ],
)
def test_metrics_as_the_benchmarks_define_them(
    benchmark: str, key: str, metrics: list[str], primary: str
) -> None:
    task = get_task(benchmark=benchmark, key=key)
    assert [m.key for m in task.metrics] == metrics
    assert task.primary_metric == primary


def test_multi_metric_suite_tasks_group_their_metrics() -> None:
    for benchmark, key in [
        ("glue", "mrpc"),
        ("glue", "stsb"),
        ("glue", "qqp"),
        ("superglue", "cb"),
        ("superglue", "multirc"),
        ("superglue", "record"),
    ]:
        task = get_task(benchmark=benchmark, key=key)
        assert {m.group for m in task.metrics} == {"score"}, key
    assert get_task(benchmark="glue", key="mnli_matched").score_group == "mnli"
    assert get_task(benchmark="glue", key="mnli_mismatched").score_group == "mnli"


def test_every_task_is_well_formed() -> None:
    for benchmark in load_catalog():
        for task in benchmark.tasks:
            assert task.benchmark == benchmark.key
            assert task.task_type in TASK_TYPES
            assert task.eval_split in task.splits
            assert task.primary_metric in {m.key for m in task.metrics}
            for spec in task.metrics:
                # Direction is the registry's, never a YAML opinion.
                assert spec.higher_is_better == get_metric(spec.key).higher_is_better
            assert task.license
            assert task.url.startswith("http")
            assert not Path(task.dataset.local_path).is_absolute()
            # No invented pins: every unpinned revision says why.
            assert task.dataset.revision is not None or task.dataset.revision_note


def test_flags_public_and_suite_membership() -> None:
    not_in_suite = {
        t.qualified_key for b in load_catalog() for t in b.tasks if not t.in_suite_score
    }
    assert not_in_suite == {
        "glue/ax",
        "superglue/axb",
        "superglue/axg",
        "lepiszcze/dialogue-acts",
    }
    private = {t.qualified_key for b in load_catalog() for t in b.tasks if not t.public}
    assert private == {"lepiszcze/dialogue-acts"}


def test_licences_record_restrictions() -> None:
    assert "NC-ND" in get_task(benchmark="lepiszcze", key="punctuation-restoration").license
    assert "NC-SA" in get_task(benchmark="lepiszcze", key="klej-cdsc-e").license
    assert get_task(benchmark="lepiszcze", key="nkjp-pos").license == "GPL-3.0"


def test_field_mapping_matches_hub_format() -> None:
    cdsc = get_task(benchmark="lepiszcze", key="klej-cdsc-e")
    assert cdsc.input_fields == ("sentence_A", "sentence_B")
    assert cdsc.label_field == "entailment_judgment"
    assert cdsc.label_encoding == "name"
    mrpc = get_task(benchmark="glue", key="mrpc")
    assert mrpc.labels == ("not_equivalent", "equivalent")  # positive class second
    assert mrpc.label_encoding == "index"
    assert get_task(benchmark="glue", key="stsb").labels == ()


def test_to_dict_is_json_serialisable_and_complete() -> None:
    for benchmark in load_catalog():
        data = json.loads(json.dumps(benchmark.to_dict()))
        assert data["key"] == benchmark.key
        assert len(data["tasks"]) == len(benchmark.tasks)
        task_fields = {f.name for f in dataclasses.fields(TaskDefinition)}
        assert task_fields <= set(data["tasks"][0])
    spec = get_task(benchmark="glue", key="cola").metrics[0].to_dict()
    assert spec == {"key": "mcc", "name": "Matthews corr.", "higher_is_better": True, "group": ""}


def test_dataclasses_are_frozen() -> None:
    task = get_task(benchmark="glue", key="cola")
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.key = "other"  # type: ignore[misc]


def test_get_task_unknown() -> None:
    with pytest.raises(KeyError, match="nope"):
        get_task(benchmark="glue", key="nope")
    with pytest.raises(KeyError, match="unknown benchmark"):
        get_task(benchmark="nope", key="cola")


def _copy_with(tmp_path: Path, edit: object) -> Path:
    """Copy the packaged GLUE file with one edit applied to its first task."""
    data = yaml.safe_load((PACKAGED / "glue.yaml").read_text(encoding="utf-8"))
    assert callable(edit)
    edit(data)
    (tmp_path / "glue.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return tmp_path


def test_loads_a_copied_directory(tmp_path: Path) -> None:
    shutil.copy(PACKAGED / "glue.yaml", tmp_path / "glue.yaml")
    (benchmark,) = load_catalog(tmp_path)
    assert benchmark.key == "glue"
    assert len(benchmark.tasks) == 11


@pytest.mark.parametrize(
    ("edit", "field", "problem"),
    [
        (
            lambda d: d["tasks"][0]["metrics"].append({"key": "bleu"}),
            "tasks[0].metrics[1].key",
            "unknown metric",
        ),
        (
            lambda d: d["tasks"][0].update(primary_metric="accuracy"),
            "tasks[0].primary_metric",
            "not among",
        ),
        (
            lambda d: d["tasks"][0].update(task_type="translation"),
            "tasks[0].task_type",
            "not one of",
        ),
        (lambda d: d["tasks"][0].pop("license"), "tasks[0].license", "required"),
        (
            lambda d: d["tasks"][0].update(eval_split="dev"),
            "tasks[0].eval_split",
            "not one of the splits",
        ),
        (
            lambda d: d["tasks"][0]["dataset"].update(revision_note=""),
            "tasks[0].dataset.revision_note",
            "why",
        ),
        (
            lambda d: d["tasks"][0]["metrics"][0].update(higher_is_better=False),
            "tasks[0].metrics[0].higher_is_better",
            "registry",
        ),
        (lambda d: d["tasks"][1].update(key="cola"), "tasks[1].key", "duplicate"),
        (lambda d: d["tasks"][2].update(labels=["a", "b", "c"]), "tasks[2].labels", "two labels"),
        (lambda d: d["tasks"][0].update(version=0), "tasks[0].version", "positive integer"),
        (
            lambda d: d["tasks"][0]["dataset"].update(local_path="/abs/cola"),
            "tasks[0].dataset.local_path",
            "relative",
        ),
        (
            lambda d: d["tasks"][6]["metrics"].append({"key": "macro_f1"}),
            "tasks[6].score_group",
            "shares group",
        ),
    ],
)
def test_invalid_files_name_file_and_field(
    tmp_path: Path, edit: object, field: str, problem: str
) -> None:
    directory = _copy_with(tmp_path, edit)
    with pytest.raises(CatalogError) as info:
        load_catalog(directory)
    message = str(info.value)
    assert str(directory / "glue.yaml") in message
    assert repr(field) in message
    assert problem in message


def test_unparseable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no benchmark"):
        load_catalog(tmp_path)
    (tmp_path / "bad.yaml").write_text("key: [unclosed", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"bad\.yaml"):
        load_catalog(tmp_path)
