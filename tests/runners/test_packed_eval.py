"""Packed log-likelihood scoring gives the unpacked scores, request by request."""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from lm_eval.models.huggingface import HFLM  # type: ignore[import-untyped]
from transformers import AutoModelForCausalLM, AutoTokenizer

from runners.evaluation.packed import PackedHFLM, pack_rows
from runners.testing import build_tiny_decoder

Request = tuple[Any, list[int], list[int]]


@pytest.fixture(scope="module")
def tiny_decoder(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    lines = (data_dir / "superglue" / "copa" / "train.jsonl").read_text().splitlines()
    return build_tiny_decoder(tmp_path_factory.mktemp("tiny-decoder"), texts=lines[:200])


def requests_of(tokenizer: Any, data_dir: Path) -> list[Request]:
    """Variable-length contexts; one-token answers that share a context (as in SST-2),
    multi-token answers, and contexts longer than the 64-token window (left-truncated)."""
    rng = random.Random(0)
    lines = (data_dir / "superglue" / "boolq" / "validation.jsonl").read_text().splitlines()
    out: list[Request] = []
    for k, line in enumerate(lines[:24]):
        ids = tokenizer(line)["input_ids"]
        context = ids[: rng.randint(3, 90)]
        answers = [ids[-1:], ids[-2:-1]] if k % 3 == 0 else [ids[-rng.randint(2, 6) :]]
        out.extend((None, context, answer) for answer in answers)
    return out


def load(tiny_decoder: Path, attention: str) -> tuple[Any, Any]:
    model = AutoModelForCausalLM.from_pretrained(
        tiny_decoder, dtype=torch.float32, attn_implementation=attention
    ).eval()
    return model, AutoTokenizer.from_pretrained(tiny_decoder)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_scores_equal_unpacked(tiny_decoder: Path, data_dir: Path, attention: str) -> None:
    model, tokenizer = load(tiny_decoder, attention)
    common = {"pretrained": model, "tokenizer": tokenizer, "device": "cpu", "max_length": 64}
    plain = HFLM(batch_size=8, **common)
    packed = PackedHFLM(batch_size=4, **common)
    requests = requests_of(tokenizer, data_dir)

    expected = plain._loglikelihood_tokens(requests, disable_tqdm=True)
    got = packed._loglikelihood_tokens(requests, disable_tqdm=True)

    assert packed.packing, "the packed path fell back to unpacked scoring"
    assert len(got) == len(expected) == len(requests)
    for (ll, greedy), (ll_ref, greedy_ref) in zip(got, expected, strict=True):
        assert ll == pytest.approx(ll_ref, rel=1e-5, abs=1e-5)
        assert greedy == greedy_ref
    # Packing happened: far fewer forward passes than distinct inputs.
    distinct = len({tuple((c + a)[-65:][:-1]) for _, c, a in requests})
    assert packed.forward_passes < distinct / 3


def test_a_model_that_ignores_the_mask_falls_back(tiny_decoder: Path, data_dir: Path) -> None:
    """Positions and mask dropped: the first-call check notices and scores unpacked."""
    model, tokenizer = load(tiny_decoder, "sdpa")
    plain_forward = model.forward

    def forward(input_ids: torch.Tensor, **kwargs: Any) -> Any:
        kwargs.pop("attention_mask", None)
        kwargs.pop("position_ids", None)
        return plain_forward(input_ids, **kwargs)

    model.forward = forward
    common = {"pretrained": model, "tokenizer": tokenizer, "device": "cpu", "max_length": 64}
    packed = PackedHFLM(batch_size=4, **common)
    requests = requests_of(tokenizer, data_dir)

    got = packed._loglikelihood_tokens(requests, disable_tqdm=True)

    assert not packed.packing
    expected = HFLM(batch_size=8, **common)._loglikelihood_tokens(requests, disable_tqdm=True)
    assert [ll for ll, _ in got] == pytest.approx([ll for ll, _ in expected], rel=1e-6)


def test_pack_rows_first_fit_decreasing() -> None:
    lengths = [5, 9, 2, 7, 3, 3, 10, 1]
    rows = pack_rows(lengths, capacity=10)

    placed = sorted(i for row in rows for i, _ in row.members)
    assert placed == list(range(len(lengths)))
    for row in rows:
        spans = sorted((start, start + lengths[i]) for i, start in row.members)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
        assert row.length == spans[-1][1] <= 10
    # 40 tokens in rows of 10: first-fit decreasing needs exactly 4 rows here.
    assert len(rows) == 4
    with pytest.raises(ValueError, match="longer than the row capacity"):
        pack_rows([11], capacity=10)
