"""Turn catalog rows into token ids for every task type, and batch them without padding waste.

Formulations (the standard encoder ones):
* classification / regression: the first text field is segment A, the remaining text
  fields joined form segment B (BoolQ: question | passage; WiC: word | s1 | s2);
* multiple choice (COPA): one (context, choice) sequence per choice, scored jointly;
* MultiRC: binary classification of (paragraph, question + answer);
* ReCoRD: one (passage, query with @placeholder filled) sequence per candidate entity,
  softmax over candidates, any gold entity counts as correct;
* sequence labelling: the first sub-token of each word carries its tag; long texts are
  cut at word boundaries into chunks that fit the model.

Batches are grouped by length (shuffled mega-batches sorted by length) and padded only
to the longest sequence in the batch, so almost no compute goes to padding.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from leaderboard.catalog import TaskDefinition
from leaderboard.data import has_gold_labels

IGNORE_INDEX = -100

KIND_BY_TASK_TYPE = {
    "single_sentence_classification": "classification",
    "pair_classification": "classification",
    "diagnostic": "classification",
    "multirc": "classification",
    "regression": "regression",
    "multiple_choice": "choice",
    "record": "choice",
    "sequence_labelling": "tokens",
}

# COPA's `question` field names the relation; spell it out for the encoder.
_COPA_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}


class EncodingError(ValueError):
    """The rows cannot be encoded for this task (e.g. no tags to learn)."""


@dataclass(frozen=True, kw_only=True)
class TaskFormat:
    kind: str  # classification | regression | choice | tokens
    num_labels: int  # classes; 1 for regression and choice scoring; tags for tokens
    tags: tuple[str, ...] = ()  # tag vocabulary for sequence labelling
    default_tag: str = ""  # predicted for words cut off by truncation


@dataclass(frozen=True, kw_only=True)
class Encoded:
    """One training/eval unit: one or more sequences and its target."""

    row: int  # position of the source row in its split
    sequences: tuple[dict[str, list[int]], ...]
    target: Any  # class index, float, gold candidate indices, or per-token tag ids
    candidates: tuple[str, ...] = ()  # ReCoRD entities / choice names, in sequence order
    word_offset: int = 0  # tokens: index of this chunk's first word within its row
    word_starts: tuple[int, ...] = ()  # tokens: token position of each word's first piece

    @property
    def length(self) -> int:
        return max(len(s["input_ids"]) for s in self.sequences)

    @property
    def tokens(self) -> int:
        return sum(len(s["input_ids"]) for s in self.sequences)


def task_format(task: TaskDefinition, train_rows: Sequence[Mapping[str, Any]]) -> TaskFormat:
    kind = KIND_BY_TASK_TYPE.get(task.task_type)
    if kind is None:
        raise EncodingError(f"no encoder formulation for task type {task.task_type!r}")
    if kind == "classification":
        return TaskFormat(kind=kind, num_labels=len(task.labels))
    if kind in ("regression", "choice"):
        return TaskFormat(kind=kind, num_labels=1)
    # The catalog lists no tag set for sequence labelling: learn it from the training rows.
    seen = sorted({tag for row in train_rows for tag in row[task.label_field]})
    if not seen:
        raise EncodingError(f"{task.qualified_key}: the training rows carry no tags")
    tags = tuple(["O", *[t for t in seen if t != "O"]] if "O" in seen else seen)
    counts = dict.fromkeys(tags, 0)
    for row in train_rows:
        for tag in row[task.label_field]:
            counts[tag] += 1
    default = "O" if "O" in counts else max(tags, key=lambda t: counts[t])
    return TaskFormat(kind=kind, num_labels=len(tags), tags=tags, default_tag=default)


def class_index(task: TaskDefinition, value: Any) -> int:
    if task.label_encoding == "name":
        return task.labels.index(str(value))
    return int(value)


def _text_fields(task: TaskDefinition, row: Mapping[str, Any]) -> list[str]:
    return [str(row[f]) for f in task.input_fields if isinstance(row.get(f), str)]


def _segments(task: TaskDefinition, row: Mapping[str, Any]) -> tuple[str, str | None]:
    if task.task_type == "multirc":
        return str(row["paragraph"]), f"{row['question']} {row['answer']}"
    texts = _text_fields(task, row)
    if not texts:
        raise EncodingError(f"{task.qualified_key}: no text in fields {task.input_fields}")
    return texts[0], (" | ".join(texts[1:]) if len(texts) > 1 else None)


def _choice_inputs(
    task: TaskDefinition, row: Mapping[str, Any]
) -> tuple[list[tuple[str, str]], tuple[str, ...], list[int]]:
    """(segment pairs, candidate names, gold candidate positions) for one choice row."""
    if task.task_type == "record":
        # Unique entities in passage order; ReCoRD lists repeated mentions separately.
        entities = tuple(dict.fromkeys(str(e) for e in row["entities"]))
        query = str(row["query"])
        pairs = [(str(row["passage"]), query.replace("@placeholder", e)) for e in entities]
        answers = {str(a) for a in row.get(task.label_field) or ()}
        return pairs, entities, [i for i, e in enumerate(entities) if e in answers]
    choice_fields = task.labels  # COPA lists its choice fields as the labels
    context_parts = []
    for name in task.input_fields:
        if name in choice_fields or not isinstance(row.get(name), str):
            continue
        value = str(row[name])
        context_parts.append(_COPA_QUESTIONS.get(value, value) if name == "question" else value)
    context = " ".join(context_parts)
    pairs = [(context, str(row[name])) for name in choice_fields]
    gold = [class_index(task, row[task.label_field])] if has_gold_labels(task, row) else []
    return pairs, tuple(choice_fields), gold


def _features(encoding: Mapping[str, Any], i: int) -> dict[str, list[int]]:
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return {k: list(encoding[k][i]) for k in keys if k in encoding}


def _encode_pairs(
    tokenizer: Any, firsts: list[str], seconds: list[str], *, max_length: int, cut_first: bool
) -> Any:
    """Tokenise segment pairs; with `cut_first`, passages give way before questions do."""
    if cut_first:
        try:
            return tokenizer(firsts, seconds, truncation="only_first", max_length=max_length)
        except Exception:  # a second segment longer than max_length on its own
            pass
    return tokenizer(firsts, seconds, truncation="longest_first", max_length=max_length)


def encode_rows(
    *,
    task: TaskDefinition,
    fmt: TaskFormat,
    rows: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    max_length: int,
    training: bool,
) -> list[Encoded]:
    """Encode `rows`; when `training`, rows without a usable gold label are skipped."""
    if fmt.kind == "tokens":
        return _encode_tokens(
            task=task, fmt=fmt, rows=rows, tokenizer=tokenizer, max_length=max_length
        )
    if fmt.kind == "choice":
        return _encode_choices(
            task=task, rows=rows, tokenizer=tokenizer, max_length=max_length, training=training
        )
    keep = [i for i, row in enumerate(rows) if not training or has_gold_labels(task, row)]
    segments = [_segments(task, rows[i]) for i in keep]
    firsts = [a for a, _ in segments]
    seconds = [b or "" for _, b in segments]
    has_pair = any(b is not None for _, b in segments)
    if has_pair:
        encoding = _encode_pairs(
            tokenizer,
            firsts,
            seconds,
            max_length=max_length,
            cut_first=task.task_type == "multirc",
        )
    else:
        encoding = tokenizer(firsts, truncation=True, max_length=max_length)
    encoded = []
    for j, i in enumerate(keep):
        row = rows[i]
        target: Any = None
        if has_gold_labels(task, row):
            value = row[task.label_field]
            target = float(value) if fmt.kind == "regression" else class_index(task, value)
        encoded.append(Encoded(row=i, sequences=(_features(encoding, j),), target=target))
    return encoded


def _encode_choices(
    *,
    task: TaskDefinition,
    rows: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    max_length: int,
    training: bool,
) -> list[Encoded]:
    encoded = []
    for i, row in enumerate(rows):
        pairs, candidates, gold = _choice_inputs(task, row)
        if training and not gold:
            continue  # e.g. a ReCoRD query whose answer is no listed entity
        if not pairs:
            raise EncodingError(f"{task.qualified_key} row {i}: no candidates to score")
        encoding = _encode_pairs(
            tokenizer,
            [a for a, _ in pairs],
            [b for _, b in pairs],
            max_length=max_length,
            cut_first=True,
        )
        sequences = tuple(_features(encoding, j) for j in range(len(pairs)))
        encoded.append(
            Encoded(row=i, sequences=sequences, target=tuple(gold), candidates=candidates)
        )
    return encoded


def _word_chunks(piece_counts: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Greedy [start, end) word ranges whose sub-token counts fit in `budget`."""
    chunks: list[tuple[int, int]] = []
    start, used = 0, 0
    for w, count in enumerate(piece_counts):
        if used and used + count > budget:
            chunks.append((start, w))
            start, used = w, 0
        used += count
    if start < len(piece_counts) or not chunks:
        chunks.append((start, len(piece_counts)))
    return chunks


def _encode_tokens(
    *,
    task: TaskDefinition,
    fmt: TaskFormat,
    rows: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    max_length: int,
) -> list[Encoded]:
    word_lists = [[str(w) for w in row[task.input_fields[0]]] for row in rows]
    tag_ids = {tag: i for i, tag in enumerate(fmt.tags)}
    special = tokenizer.num_special_tokens_to_add(pair=False)
    budget = max(1, max_length - special)
    # Count sub-tokens per word once, to cut long texts at word boundaries.
    bare = tokenizer(word_lists, is_split_into_words=True, add_special_tokens=False)
    pieces: list[tuple[list[str], int, int, Mapping[str, Any]]] = []
    for i, words in enumerate(word_lists):
        counts = [0] * len(words)
        for word in bare.word_ids(i):
            if word is not None:
                counts[word] += 1
        counts = [max(1, c) for c in counts]
        for start, end in _word_chunks(counts, budget):
            pieces.append((words[start:end], i, start, rows[i]))
    encoding = tokenizer(
        [chunk for chunk, _, _, _ in pieces],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    encoded = []
    for j, (chunk, i, start, row) in enumerate(pieces):
        gold = row.get(task.label_field)
        labels = [IGNORE_INDEX] * len(encoding["input_ids"][j])
        starts = [-1] * len(chunk)
        previous = None
        for position, word in enumerate(encoding.word_ids(j)):
            if word is not None and word != previous:
                starts[word] = position
                if gold:
                    # Tags unseen in training cannot be learned; they stay unsupervised.
                    labels[position] = tag_ids.get(gold[start + word], IGNORE_INDEX)
            previous = word
        encoded.append(
            Encoded(
                row=i,
                sequences=(_features(encoding, j),),
                target=labels,
                word_offset=start,
                word_starts=tuple(starts),
            )
        )
    return encoded


PAD_MULTIPLE = 8  # on a GPU, batches are padded to a multiple of this many tokens


@dataclass(frozen=True, kw_only=True)
class Batch:
    inputs: dict[str, torch.Tensor]  # model inputs, flattened over candidates
    items: tuple[Encoded, ...]
    group_sizes: tuple[int, ...] = ()  # sequences per item (choice tasks)
    targets: torch.Tensor | None = None
    real_tokens: int = 0  # non-padding tokens, for throughput figures
    extra: dict[str, Any] = field(default_factory=dict)


def batch_width(longest: int, *, device: torch.device) -> int:
    """Padded width of a batch whose longest sequence has `longest` tokens.

    On a GPU, widths go in steps of `PAD_MULTIPLE`: tensor-core friendly, and few distinct
    shapes for the kernels that tune or plan per shape (the padding is masked, so scores
    do not change). On CPU no step: each padded token costs its full share of compute.
    """
    if device.type == "cuda":
        return -(-longest // PAD_MULTIPLE) * PAD_MULTIPLE
    return longest


def collate(
    items: Sequence[Encoded], *, fmt: TaskFormat, pad_token_id: int, device: torch.device
) -> Batch:
    sequences = [s for item in items for s in item.sequences]
    width = batch_width(max(len(s["input_ids"]) for s in sequences), device=device)
    inputs: dict[str, torch.Tensor] = {}
    for key in sequences[0]:
        pad = pad_token_id if key == "input_ids" else 0
        inputs[key] = torch.tensor(
            [s[key] + [pad] * (width - len(s[key])) for s in sequences], dtype=torch.long
        ).to(device)
    if "attention_mask" not in inputs:
        inputs["attention_mask"] = torch.tensor(
            [[1] * len(s["input_ids"]) + [0] * (width - len(s["input_ids"])) for s in sequences],
            dtype=torch.long,
        ).to(device)
    targets: torch.Tensor | None = None
    labelled = all(item.target is not None for item in items)
    if labelled and fmt.kind == "classification":
        targets = torch.tensor([item.target for item in items], dtype=torch.long, device=device)
    elif labelled and fmt.kind == "regression":
        targets = torch.tensor([item.target for item in items], dtype=torch.float, device=device)
    elif labelled and fmt.kind == "tokens":
        targets = torch.tensor(
            [item.target + [IGNORE_INDEX] * (width - len(item.target)) for item in items],
            dtype=torch.long,
            device=device,
        )
    return Batch(
        inputs=inputs,
        items=tuple(items),
        group_sizes=tuple(len(item.sequences) for item in items),
        targets=targets,
        real_tokens=sum(item.tokens for item in items),
    )


def length_grouped_batches(
    items: Sequence[Encoded],
    *,
    batch_size: int,
    rng: random.Random | None,
    mega_batches: int = 50,
) -> list[list[Encoded]]:
    """Batches of similar length. With `rng`: shuffled (training); without: sorted (eval)."""
    if rng is None:
        order = sorted(range(len(items)), key=lambda i: items[i].length)
        return [
            [items[i] for i in order[k : k + batch_size]] for k in range(0, len(order), batch_size)
        ]
    order = list(range(len(items)))
    rng.shuffle(order)
    span = batch_size * mega_batches
    batches: list[list[Encoded]] = []
    for k in range(0, len(order), span):
        group = sorted(order[k : k + span], key=lambda i: items[i].length, reverse=True)
        batches.extend(
            [items[i] for i in group[b : b + batch_size]] for b in range(0, len(group), batch_size)
        )
    rng.shuffle(batches)
    return batches
