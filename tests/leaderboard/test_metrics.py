"""Metrics against independent references (scikit-learn, scipy, seqeval) and edge cases."""

from __future__ import annotations

import math
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from seqeval.metrics import f1_score as seqeval_f1_score
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from leaderboard.metrics import (
    MetricError,
    compute_metric,
    get_metric,
    metric_keys,
    register_metric,
    seqeval_entities,
    squad_normalize,
)

FAST = settings(max_examples=60, deadline=None)


@st.composite
def label_pairs(
    draw: st.DrawFn, alphabet: tuple[Any, ...] = (0, 1, 2)
) -> tuple[list[Any], list[Any]]:
    n = draw(st.integers(min_value=1, max_value=40))
    labels = st.sampled_from(alphabet)
    return draw(st.lists(labels, min_size=n, max_size=n)), draw(
        st.lists(labels, min_size=n, max_size=n)
    )


@st.composite
def float_pairs(draw: st.DrawFn) -> tuple[list[float], list[float]]:
    n = draw(st.integers(min_value=2, max_value=40))
    # Coarse values so ties (and constant vectors) are common.
    values = st.integers(min_value=0, max_value=10).map(lambda v: v / 2)
    return draw(st.lists(values, min_size=n, max_size=n)), draw(
        st.lists(values, min_size=n, max_size=n)
    )


def _approx(value: float) -> Any:
    return pytest.approx(value, abs=1e-9)


def test_registry_lists_every_benchmark_metric() -> None:
    assert set(metric_keys()) >= {
        "accuracy", "mcc", "f1", "macro_f1", "pearson", "spearman", "f1a", "multirc_em",
        "record_f1", "record_em", "seqeval_f1", "gender_parity",
    }  # fmt: skip
    assert all(get_metric(k).higher_is_better for k in metric_keys())


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_metric("accuracy", higher_is_better=True, name="Again")(lambda **_: 0.0)


def test_unknown_metric() -> None:
    with pytest.raises(MetricError, match="unknown metric 'bleu'"):
        get_metric("bleu")


@FAST
@given(label_pairs(alphabet=("a", "b", "c", "d")))
def test_accuracy_matches_sklearn(pair: tuple[list[Any], list[Any]]) -> None:
    gold, pred = pair
    assert compute_metric("accuracy", gold=gold, predictions=pred) == _approx(
        accuracy_score(gold, pred)
    )


@FAST
@given(label_pairs())
def test_mcc_matches_sklearn_multiclass(pair: tuple[list[Any], list[Any]]) -> None:
    gold, pred = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = matthews_corrcoef(gold, pred)
    assert compute_metric("mcc", gold=gold, predictions=pred) == _approx(expected)


@FAST
@given(label_pairs(alphabet=(0, 1)))
def test_binary_f1_and_f1a_match_sklearn(pair: tuple[list[Any], list[Any]]) -> None:
    gold, pred = pair
    expected = f1_score(gold, pred, pos_label=1, average="binary", zero_division=0.0)
    assert compute_metric("f1", gold=gold, predictions=pred) == _approx(expected)
    assert compute_metric("f1a", gold=gold, predictions=pred) == _approx(expected)


@FAST
@given(label_pairs(alphabet=("x", "y", "z", "w")))
def test_macro_f1_matches_sklearn(pair: tuple[list[Any], list[Any]]) -> None:
    gold, pred = pair
    expected = f1_score(gold, pred, average="macro", zero_division=0.0)
    assert compute_metric("macro_f1", gold=gold, predictions=pred) == _approx(expected)


@FAST
@given(float_pairs())
def test_correlations_match_scipy(pair: tuple[list[float], list[float]]) -> None:
    gold, pred = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = stats.pearsonr(gold, pred).statistic
        rho = stats.spearmanr(gold, pred).statistic
    # scipy gives NaN for a constant vector; we score it 0 (documented in metrics.py).
    expected_r = 0.0 if math.isnan(r) else r
    expected_rho = 0.0 if math.isnan(rho) else rho
    assert compute_metric("pearson", gold=gold, predictions=pred) == pytest.approx(
        expected_r, abs=1e-9
    )
    assert compute_metric("spearman", gold=gold, predictions=pred) == pytest.approx(
        expected_rho, abs=1e-9
    )


def test_spearman_is_rank_based_and_differs_from_pearson() -> None:
    gold = [1.0, 2.0, 3.0, 4.0]
    pred = [1.0, 2.0, 3.0, 100.0]  # monotone but not linear
    assert compute_metric("spearman", gold=gold, predictions=pred) == _approx(1.0)
    assert compute_metric("pearson", gold=gold, predictions=pred) < 0.9


TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "E-LOC", "S-PER", "I-ORG")


@st.composite
def tag_pairs(draw: st.DrawFn) -> tuple[list[list[str]], list[list[str]]]:
    lengths = draw(st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=5))
    tag = st.sampled_from(TAGS)
    gold = [draw(st.lists(tag, min_size=n, max_size=n)) for n in lengths]
    pred = [draw(st.lists(tag, min_size=n, max_size=n)) for n in lengths]
    return gold, pred


@settings(max_examples=150, deadline=None)
@given(tag_pairs())
def test_seqeval_f1_matches_seqeval(pair: tuple[list[list[str]], list[list[str]]]) -> None:
    gold, pred = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = seqeval_f1_score(gold, pred, average="micro", zero_division=0)
    assert compute_metric("seqeval_f1", gold=gold, predictions=pred) == _approx(expected)


def test_seqeval_entity_spans() -> None:
    assert seqeval_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]
    # IOB1-style I- after O opens an entity; a type change closes it.
    assert seqeval_entities(["I-PER", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 1)]


def test_seqeval_known_values() -> None:
    gold = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    assert compute_metric("seqeval_f1", gold=gold, predictions=pred) == _approx(0.5)
    assert compute_metric("seqeval_f1", gold=gold, predictions=gold) == 1.0
    # No entities anywhere: F1 undefined, scored 0 (seqeval's zero_division=0).
    assert compute_metric("seqeval_f1", gold=[["O", "O"]], predictions=[["O", "O"]]) == 0.0


def test_seqeval_does_not_join_entities_across_sentences() -> None:
    gold = [["B-PER"], ["I-PER"]]
    assert compute_metric("seqeval_f1", gold=gold, predictions=[["B-PER"], ["I-PER"]]) == 1.0
    assert len(seqeval_entities(["B-PER", "O", "I-PER"])) == 2


def test_seqeval_rejects_ragged_and_string_items() -> None:
    with pytest.raises(MetricError, match="item 1 has 1 predicted tags for 2 gold tags"):
        compute_metric("seqeval_f1", gold=[["O"], ["O", "O"]], predictions=[["O"], ["O"]])
    with pytest.raises(MetricError, match="list of tags"):
        compute_metric("seqeval_f1", gold=["B-PER"], predictions=["B-PER"])


@pytest.mark.parametrize("key", ["accuracy", "mcc", "f1", "macro_f1"])
def test_constant_predictions(key: str) -> None:
    gold = [0, 1, 1, 0, 1]
    const = [1] * 5
    expected = {
        "accuracy": accuracy_score(gold, const),
        "mcc": 0.0,  # no variance in predictions: no correlation (sklearn agrees)
        "f1": f1_score(gold, const, zero_division=0.0),
        "macro_f1": f1_score(gold, const, average="macro", zero_division=0.0),
    }[key]
    assert compute_metric(key, gold=gold, predictions=const) == _approx(expected)


def test_single_class_everywhere() -> None:
    ones = [1, 1, 1]
    assert compute_metric("accuracy", gold=ones, predictions=ones) == 1.0
    assert compute_metric("mcc", gold=ones, predictions=ones) == 0.0
    assert compute_metric("f1", gold=ones, predictions=ones) == 1.0
    assert compute_metric("macro_f1", gold=ones, predictions=ones) == 1.0
    zeros = [0, 0, 0]
    assert compute_metric("f1", gold=zeros, predictions=zeros) == 0.0  # no positives at all
    assert compute_metric("pearson", gold=[1.0, 2.0, 3.0], predictions=[2.0, 2.0, 2.0]) == 0.0


def test_perfect_and_inverted() -> None:
    gold = [0, 1, 2, 0, 1, 2]
    assert compute_metric("mcc", gold=gold, predictions=gold) == _approx(1.0)
    assert compute_metric("mcc", gold=[0, 1, 0, 1], predictions=[1, 0, 1, 0]) == _approx(-1.0)
    assert compute_metric("pearson", gold=[1.0, 2.0, 3.0], predictions=[3.0, 2.0, 1.0]) == _approx(
        -1.0
    )


@pytest.mark.parametrize("key", sorted(metric_keys()))
def test_empty_input_is_an_error(key: str) -> None:
    with pytest.raises(MetricError, match="empty"):
        compute_metric(key, gold=[], predictions=[], groups=[])


@pytest.mark.parametrize("key", sorted(metric_keys()))
def test_length_mismatch_is_an_error(key: str) -> None:
    with pytest.raises(MetricError, match="1 predictions for 2 gold items"):
        compute_metric(key, gold=[1, 0], predictions=[1], groups=[0, 0])


def test_group_metrics_need_matching_groups() -> None:
    with pytest.raises(MetricError, match="needs groups"):
        compute_metric("multirc_em", gold=[1], predictions=[1])
    with pytest.raises(MetricError, match="1 group ids for 2 items"):
        compute_metric("gender_parity", gold=[1, 0], predictions=[1, 0], groups=[0])


def test_correlations_reject_non_numbers() -> None:
    with pytest.raises(MetricError, match="numbers"):
        compute_metric("pearson", gold=[1.0, 2.0], predictions=["a", "b"])
    with pytest.raises(MetricError, match="finite"):
        compute_metric("spearman", gold=[1.0, 2.0], predictions=[1.0, float("nan")])


def test_multirc_exact_match_per_question() -> None:
    # Question q1: 3 options all right; q2: one of two wrong; q3: single option right.
    gold = [1, 0, 1, 1, 0, 0]
    pred = [1, 0, 1, 1, 1, 0]
    questions = ["q1", "q1", "q1", "q2", "q2", "q3"]
    assert compute_metric("multirc_em", gold=gold, predictions=pred, groups=questions) == _approx(
        2 / 3
    )
    # F1a pools all options: tp=3, pred positives=4, gold positives=3.
    assert compute_metric("f1a", gold=gold, predictions=pred) == _approx(6 / 7)


def test_squad_normalisation() -> None:
    assert squad_normalize("The  Cat's  hat!") == "cats hat"
    assert squad_normalize("An apple, a day") == "apple day"


def test_record_f1_and_em() -> None:
    gold = [["Benazir Bhutto", "Bhutto"], ["New York City"], ["the Pope"]]
    pred = ["bhutto", "New York", "Pope."]
    # q1: "bhutto" matches "Bhutto" exactly -> EM 1, F1 1.
    # q2: 2 common tokens, precision 1, recall 2/3 -> F1 0.8, EM 0.
    # q3: normalisation drops "the" and "." -> EM 1.
    assert compute_metric("record_em", gold=gold, predictions=pred) == _approx(2 / 3)
    assert compute_metric("record_f1", gold=gold, predictions=pred) == _approx((1 + 0.8 + 1) / 3)
    assert compute_metric("record_f1", gold=[["x y"]], predictions=["z"]) == 0.0
    assert (
        compute_metric("record_em", gold=[["a"]], predictions=["the"]) == 1.0
    )  # both normalise to ""


def test_record_needs_answer_lists() -> None:
    with pytest.raises(MetricError, match="answer strings"):
        compute_metric("record_f1", gold=[[]], predictions=["x"])


def test_gender_parity() -> None:
    pairs = [0, 0, 1, 1, 2, 2, 3, 3]
    pred = ["e", "e", "e", "n", "n", "n", "n", "e"]
    gold = ["e"] * 8
    assert compute_metric("gender_parity", gold=gold, predictions=pred, groups=pairs) == 0.5
