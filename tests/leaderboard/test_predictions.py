"""Re-scoring predictions against gold rows: every task with data, formats, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from leaderboard.catalog import TaskDefinition, get_task, load_catalog
from leaderboard.data import has_gold_labels, load_task, local_split_path, row_id
from leaderboard.predictions import (
    PredictionError,
    parse_predictions,
    per_class_scores,
    rescore_file,
    score_predictions,
)


def _data_dir() -> Path:
    value = os.environ.get("PODIUM_DATA_DIR")
    if not value:
        pytest.fail(
            "set PODIUM_DATA_DIR to the directory of benchmark JSONL samples to run these tests"
        )
    return Path(value)


def _labelled_local_splits() -> list[tuple[TaskDefinition, str]]:
    directory = Path(os.environ.get("PODIUM_DATA_DIR", "/nonexistent"))
    found = []
    for benchmark in load_catalog():
        for task in benchmark.tasks:
            # One split per task keeps the suite fast: the eval split where present.
            for split in sorted(task.splits, key=lambda s: s != task.eval_split):
                if local_split_path(task, split, data_dir=directory).is_file():
                    found.append((task, split))
                    break
    return found


def _jsonl(task: TaskDefinition, rows: list[dict[str, Any]], values: list[Any]) -> str:
    lines = []
    for position, (row, value) in enumerate(zip(rows, values, strict=True)):
        idx = row[task.id_field] if task.id_field else position
        lines.append(json.dumps({"idx": idx, "prediction": value}))
    return "\n".join(lines) + "\n"


def _score(task: TaskDefinition, rows: list[dict[str, Any]], values: list[Any]) -> dict[str, float]:
    parsed = parse_predictions(text=_jsonl(task, rows, values))
    return score_predictions(task=task, rows=rows, predictions=parsed)


PERFECT = {
    "accuracy": 1.0, "mcc": 1.0, "f1": 1.0, "macro_f1": 1.0, "pearson": 1.0, "spearman": 1.0,
    "f1a": 1.0, "multirc_em": 1.0, "record_f1": 1.0, "record_em": 1.0, "seqeval_f1": 1.0,
}  # fmt: skip


def test_samples_cover_many_tasks() -> None:
    _data_dir()
    assert len(_labelled_local_splits()) >= 25


@pytest.mark.parametrize(
    ("task", "split"),
    _labelled_local_splits(),
    ids=lambda v: v.qualified_key if isinstance(v, TaskDefinition) else str(v),
)
def test_gold_as_prediction_is_perfect(task: TaskDefinition, split: str) -> None:
    rows = load_task(task, split, data_dir=_data_dir())
    gold = [row[task.label_field] for row in rows]
    if task.task_type == "record":
        gold = [answers[0] for answers in gold]  # one answer string per query
    scores = _score(task, rows, gold)
    assert set(scores) == {m.key for m in task.metrics}
    for key, value in scores.items():
        assert value == pytest.approx(PERFECT[key]), key


@pytest.mark.parametrize(
    ("task", "split"),
    [(t, s) for t, s in _labelled_local_splits() if t.label_encoding != "none"],
    ids=lambda v: v.qualified_key if isinstance(v, TaskDefinition) else str(v),
)
def test_known_perturbation_of_class_labels(task: TaskDefinition, split: str) -> None:
    rows = load_task(task, split, data_dir=_data_dir())
    gold = [row[task.label_field] for row in rows]
    # Change the first k predictions to a different label: accuracy must be exactly 1 - k/n.
    k = max(1, len(rows) // 10)
    predicted = list(gold)
    for i in range(k):
        if task.label_encoding == "index":
            predicted[i] = (gold[i] + 1) % len(task.labels)
        else:
            predicted[i] = task.labels[(task.labels.index(gold[i]) + 1) % len(task.labels)]
    scores = _score(task, rows, predicted)
    if "accuracy" in scores:
        assert scores["accuracy"] == pytest.approx(1 - k / len(rows))
    for key, value in scores.items():
        assert value < 1.0, key


def test_stsb_scale_invariance_and_perturbation() -> None:
    task = get_task(benchmark="glue", key="stsb")
    rows = load_task(task, "validation", data_dir=_data_dir())
    gold = [row["label"] for row in rows]
    linear = _score(task, rows, [2 * g + 1 for g in gold])
    assert linear == {"pearson": pytest.approx(1.0), "spearman": pytest.approx(1.0)}
    reversed_scores = _score(task, rows, [5 - g for g in gold])
    assert reversed_scores["pearson"] == pytest.approx(-1.0)


def test_multirc_one_wrong_option_costs_one_question() -> None:
    task = get_task(benchmark="superglue", key="multirc")
    rows = load_task(task, "validation", data_dir=_data_dir())
    gold = [row["label"] for row in rows]
    predicted = list(gold)
    predicted[0] = 1 - predicted[0]
    questions = {(r["idx"]["paragraph"], r["idx"]["question"]) for r in rows}
    scores = _score(task, rows, predicted)
    assert scores["multirc_em"] == pytest.approx(1 - 1 / len(questions))


def test_record_wrong_answer_for_one_query() -> None:
    task = get_task(benchmark="superglue", key="record")
    rows = load_task(task, "validation", data_dir=_data_dir())
    predicted = [row["answers"][0] for row in rows]
    predicted[0] = "zzz not an entity"
    scores = _score(task, rows, predicted)
    assert scores["record_em"] == pytest.approx(1 - 1 / len(rows))
    # SuperGLUE submissions identify a ReCoRD query by its query idx alone.
    lines = [json.dumps({"idx": r["idx"]["query"], "label": r["answers"][0]}) for r in rows]
    parsed = parse_predictions(text="\n".join(lines), fmt="superglue")
    assert score_predictions(task=task, rows=rows, predictions=parsed)["record_em"] == 1.0


def test_kpwr_ner_dropping_all_entities_scores_zero() -> None:
    task = get_task(benchmark="lepiszcze", key="kpwr-ner")
    rows = load_task(task, "test", data_dir=_data_dir())
    scores = _score(task, rows, [["O"] * len(row["tokens"]) for row in rows])
    assert scores == {"seqeval_f1": 0.0}


def test_glue_tsv_submission_file(tmp_path: Path) -> None:
    task = get_task(benchmark="glue", key="sst2")
    rows = load_task(task, "validation", data_dir=_data_dir())
    lines = ["index\tprediction"] + [f"{r['idx']}\t{r['label']}" for r in rows]
    lines[1] = f"{rows[0]['idx']}\t{1 - rows[0]['label']}"
    path = tmp_path / "SST-2.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = rescore_file(task=task, split="validation", path=path, data_dir=_data_dir())
    assert dict(result.metrics)["accuracy"] == pytest.approx(1 - 1 / len(rows))
    assert result.num_predictions == len(rows)
    assert len(result.data_sha256) == 64
    assert json.loads(json.dumps(result.to_dict()))["task"] == "glue/sst2"


def test_glue_tsv_accepts_label_names(tmp_path: Path) -> None:
    task = get_task(benchmark="glue", key="rte")
    rows = load_task(task, "validation", data_dir=_data_dir())
    body = [f"{r['idx']}\t{task.labels[r['label']]}" for r in rows]
    parsed = parse_predictions(text="index\tprediction\n" + "\n".join(body))
    assert score_predictions(task=task, rows=rows, predictions=parsed) == {"accuracy": 1.0}


def test_superglue_boolean_labels() -> None:
    task = get_task(benchmark="superglue", key="boolq")
    rows = load_task(task, "validation", data_dir=_data_dir())
    lines = [
        json.dumps({"idx": r["idx"], "label": "true" if r["label"] else "false"}) for r in rows
    ]
    parsed = parse_predictions(text="\n".join(lines), fmt="superglue")
    assert score_predictions(task=task, rows=rows, predictions=parsed) == {"accuracy": 1.0}
    lines = [json.dumps({"idx": r["idx"], "label": bool(r["label"])}) for r in rows]
    parsed = parse_predictions(text="\n".join(lines), fmt="superglue")
    assert score_predictions(task=task, rows=rows, predictions=parsed) == {"accuracy": 1.0}


def _cb_rows() -> list[dict[str, Any]]:
    return [
        {"premise": "p", "hypothesis": "h", "idx": 0, "label": 0},
        {"premise": "p", "hypothesis": "h", "idx": 1, "label": 1},
        {"premise": "p", "hypothesis": "h", "idx": 2, "label": 2},
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"idx": 0, "prediction": 0}\n{"idx": 1, "prediction": 1}\n',
         "expected 3 predictions, got 2"),
        ('{"idx": 0, "prediction": 0}\n{"idx": 9, "prediction": 1}\n', "line 2: id '9' is not in"),
        ('{"idx": 0, "prediction": 0}\n\n{"idx": 0, "prediction": 1}\n',
         "line 3: id '0' was already predicted on line 1"),
        ('{"idx": 0, "prediction": 0}\n{"idx": 1, "prediction": 7}\n',
         "line 2: id '1': 7 is neither a label name"),
        ('{"idx": 0, "prediction": "maybe"}\n', "line 1: id '0': 'maybe' is not a label"),
        ('{"idx": 0, "prediction": 0}\n{"idx": 1}\n', "line 2: missing 'label'"),
        ('{"prediction": 0}\n', "line 1: missing 'idx'"),
        ('{"idx": 0, "prediction": 0}\n[1, 2]\n', "line 2: expected a JSON object"),
        ('{"idx": 0, "prediction": 0}\n{oops\n', "line 2: not valid JSON"),
        ("", "line 1: the file is empty"),
        ("id\tlabel\n0\t1\n", "line 1: expected the GLUE header"),
        ("index\tprediction\n0\t1\t2\n", "line 2: expected 2 tab-separated columns"),
    ],
)  # fmt: skip
def test_bad_files_name_the_first_offending_line(text: str, message: str) -> None:
    task = get_task(benchmark="superglue", key="cb")
    with pytest.raises(PredictionError) as info:
        score_predictions(task=task, rows=_cb_rows(), predictions=parse_predictions(text=text))
    assert message in str(info.value)


def test_sequence_prediction_length_is_checked() -> None:
    task = get_task(benchmark="lepiszcze", key="kpwr-ner")
    rows = [{"tokens": ["a", "b"], "ner": ["B-x", "O"]}]
    parsed = parse_predictions(text='{"idx": 0, "prediction": ["O"]}')
    with pytest.raises(PredictionError, match="line 1: id '0': 1 tags for 2 tokens"):
        score_predictions(task=task, rows=rows, predictions=parsed)


def test_unlabelled_test_split_is_refused(tmp_path: Path) -> None:
    task = get_task(benchmark="glue", key="cola")
    path = local_split_path(task, "test", data_dir=tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"sentence": "a", "label": -1, "idx": 0}\n', encoding="utf-8")
    predictions = tmp_path / "CoLA.tsv"
    predictions.write_text("index\tprediction\n0\t1\n", encoding="utf-8")
    with pytest.raises(PredictionError, match="no gold label") as info:
        rescore_file(task=task, split="test", path=predictions, data_dir=tmp_path)
    assert "private" in str(info.value)


def test_ax_diagnostic_written_locally(tmp_path: Path) -> None:
    task = get_task(benchmark="glue", key="ax")
    rows = [
        {"premise": "p", "hypothesis": "h", "label": label, "idx": i}
        for i, label in enumerate([0, 1, 2, 0, 1, 2])
    ]
    path = local_split_path(task, "test", data_dir=tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    predictions = tmp_path / "AX.tsv"
    names = ["entailment", "neutral", "contradiction", "entailment", "neutral", "neutral"]
    body = "\n".join(f"{i}\t{n}" for i, n in enumerate(names))
    predictions.write_text("index\tprediction\n" + body, encoding="utf-8")
    result = rescore_file(task=task, split="test", path=predictions, data_dir=tmp_path)
    from sklearn.metrics import matthews_corrcoef

    expected = matthews_corrcoef([0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 1, 1])
    assert dict(result.metrics)["mcc"] == pytest.approx(expected)


def test_axg_gender_parity_from_pairs() -> None:
    task = get_task(benchmark="superglue", key="axg")
    rows = [{"premise": "p", "hypothesis": "h", "idx": i, "label": 0} for i in range(6)]
    text = "\n".join(
        json.dumps({"idx": i, "label": label})
        for i, label in enumerate(["entailment", "entailment", "entailment", "not_entailment",
                                   "not_entailment", "not_entailment"])
    )  # fmt: skip
    scores = score_predictions(task=task, rows=rows, predictions=parse_predictions(text=text))
    assert scores["gender_parity"] == pytest.approx(2 / 3)
    assert scores["accuracy"] == pytest.approx(3 / 6)


def test_row_ids_match_submission_ids() -> None:
    multirc = get_task(benchmark="superglue", key="multirc")
    row = {"idx": {"paragraph": 3, "question": 1, "answer": 2}}
    assert row_id(multirc, row, 0) == "3-1-2"
    assert has_gold_labels(get_task(benchmark="glue", key="stsb"), {"label": -1}) is False


def test_per_class_scores_match_scikit_learn() -> None:
    from sklearn.metrics import precision_recall_fscore_support

    task = get_task(benchmark="lepiszcze", key="klej-polemo2-in")  # four classes
    rows = load_task(task, "validation", data_dir=_data_dir())[:200]
    gold = [task.labels.index(r[task.label_field]) if task.label_encoding == "name"
            else r[task.label_field] for r in rows]  # fmt: skip
    # A skewed predictor: every third row gets the next class, the rest are right.
    guessed = [(g + 1) % len(task.labels) if i % 3 == 0 else g for i, g in enumerate(gold)]
    parsed = parse_predictions(text=_jsonl(task, rows, [task.labels[g] for g in guessed]))
    figures = per_class_scores(task=task, rows=rows, predictions=parsed)
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, guessed, labels=list(range(len(task.labels))), zero_division=0
    )
    for index, label in enumerate(task.labels):
        assert figures[f"per_class/{label}/precision"] == pytest.approx(precision[index])
        assert figures[f"per_class/{label}/recall"] == pytest.approx(recall[index])
        assert figures[f"per_class/{label}/f1"] == pytest.approx(f1[index])
        assert figures[f"per_class/{label}/support"] == support[index]


def test_per_class_scores_are_empty_where_a_task_has_no_classes() -> None:
    task = get_task(benchmark="glue", key="stsb")
    rows = load_task(task, "validation", data_dir=_data_dir())[:20]
    parsed = parse_predictions(text=_jsonl(task, rows, [r["label"] for r in rows]))
    assert per_class_scores(task=task, rows=rows, predictions=parsed) == {}
