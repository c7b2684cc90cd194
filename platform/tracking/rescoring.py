"""Runs submitted as predictions: validated and scored by Podium itself.

Gold labels come from staff-uploaded private splits first, then from PODIUM_DATA_DIR.
Where Podium holds no gold labels for a split (GLUE's test sets), the submission is refused
with a message that says so.

Files come from strangers, so before any parsing they are checked for what a scorer should
never meet: more than PODIUM_MAX_UPLOAD_BYTES, a line longer than PODIUM_MAX_LINE_CHARS,
bytes that are not UTF-8 (latin-1, UTF-16), NUL characters. Each is refused with a message
naming the problem, and messages quoting a file's content are cut short.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from catalog.models import Backbone, GoldSplit, Method, Task
from leaderboard.catalog import TaskDefinition, get_task
from leaderboard.data import DataError, LoadedSplit, load_split, local_split_path
from leaderboard.predictions import (
    PredictionError,
    parse_predictions,
    per_class_scores,
    score_predictions,
)
from runners.spec import InlineArtifact
from tracking.artifacts import artifact_store_inline
from tracking.models import ProvenanceTier, Run, Visibility
from tracking.services import RunInputError, run_create_external


def task_definition(*, task: Task) -> TaskDefinition:
    """The catalog definition a stored task version was loaded from."""
    definition = get_task(benchmark=task.benchmark.key, key=task.key)
    if definition.version != task.version:
        raise RunInputError(
            f"task: {task} is not the version in this server's catalog files "
            f"(v{definition.version}); submit against the current version."
        )
    return definition


def gold_split(*, task: Task, split: str) -> LoadedSplit:
    definition = task_definition(task=task)
    sources: list[Path] = []
    if GoldSplit.objects.filter(task=task, split=split).exists():
        sources.append(Path(settings.PODIUM_PRIVATE_DIR))
    if settings.PODIUM_DATA_DIR:
        sources.append(Path(settings.PODIUM_DATA_DIR))
    for directory in sources:
        if local_split_path(definition, split, data_dir=directory).is_file():
            try:
                return load_split(definition, split, data_dir=directory)
            except DataError as error:
                raise RunInputError(f"split: the gold data cannot be read ({error}).") from None
    raise RunInputError(
        f"split: Podium holds no gold labels for {task.benchmark.key}/{task.key} split "
        f"{split!r}, so it cannot score predictions for it; "
        f"submit predictions for {definition.eval_split!r}."
    )


# Messages quote ids and values from the file; a hostile file must not make them huge.
MAX_MESSAGE_CHARS = 500
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _short(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _size_check(*, field: str, size: int) -> None:
    limit = settings.PODIUM_MAX_UPLOAD_BYTES
    if size > limit:
        raise RunInputError(
            f"{field}: the file is {size} bytes; at most {limit} bytes are accepted "
            "(PODIUM_MAX_UPLOAD_BYTES)."
        )


def submitted_text_check(*, text: str, field: str = "predictions") -> str:
    """A submitted file's text checked before parsing; returns it without a leading
    byte-order mark. Raises RunInputError naming `field` and the problem."""
    # Characters never outnumber UTF-8 bytes, so a long text is refused before encoding it.
    limit = settings.PODIUM_MAX_UPLOAD_BYTES
    _size_check(
        field=field,
        size=len(text) if len(text) > limit else len(text.encode("utf-8", "surrogatepass")),
    )
    if "\x00" in text:
        raise RunInputError(
            f"{field}: line {_line_of(text, text.index(chr(0)))} contains a NUL character; "
            "is the file UTF-16? Save it as UTF-8."
        )
    surrogate = _LONE_SURROGATE.search(text)
    if surrogate is not None:
        raise RunInputError(
            f"{field}: line {_line_of(text, surrogate.start())} is not valid Unicode (a lone "
            "surrogate); save the file as UTF-8."
        )
    text = text.removeprefix("\ufeff")
    max_line = settings.PODIUM_MAX_LINE_CHARS
    for number, line in enumerate(text.split("\n"), start=1):
        if len(line) > max_line:
            raise RunInputError(
                f"{field}: line {number} is {len(line)} characters long; at most {max_line} "
                "are accepted (PODIUM_MAX_LINE_CHARS)."
            )
    return text


def uploaded_text(*, content: bytes, field: str = "file") -> str:
    """An uploaded file's bytes as UTF-8 text, or a RunInputError saying what they are."""
    _size_check(field=field, size=len(content))
    if content.startswith(_UTF16_BOMS) or b"\x00" in content:
        raise RunInputError(
            f"{field}: the file looks like UTF-16 (a UTF-16 byte-order mark or NUL bytes); "
            "save it as UTF-8."
        )
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        line = content.count(b"\n", 0, error.start) + 1
        raise RunInputError(
            f"{field}: the file is not UTF-8: byte 0x{content[error.start]:02x} on line {line} "
            "cannot be decoded (latin-1 or another legacy encoding?); save it as UTF-8."
        ) from None
    return submitted_text_check(text=text, field=field)


@transaction.atomic
def run_create_from_predictions(
    *,
    owner: User,
    method: Method,
    backbone: Backbone,
    task: Task,
    config: Mapping[str, Any],
    seed: int,
    split: str,
    predictions: str,
    fmt: str = "auto",
    visibility: str = Visibility.PUBLIC,
    tags: Iterable[str] = (),
    description: str = "",
) -> Run:
    """Score submitted predictions against Podium's gold labels and record the run."""
    predictions = submitted_text_check(text=predictions)
    gold = gold_split(task=task, split=split)
    definition = task_definition(task=task)
    try:
        parsed = parse_predictions(text=predictions, fmt=fmt)
        scores = score_predictions(task=definition, rows=gold.rows, predictions=parsed, split=split)
        per_class = per_class_scores(
            task=definition, rows=gold.rows, predictions=parsed, split=split
        )
    except PredictionError as error:
        raise RunInputError(_short(f"predictions: {error}")) from None
    run = run_create_external(
        owner=owner,
        method=method,
        backbone=backbone,
        task=task,
        config=config,
        seed=seed,
        scores=scores,
        visibility=visibility,
        tags=tags,
        description=description,
        provenance_tier=ProvenanceTier.RESCORED,
        extra_scores=per_class,
        eval_split=split,
        provenance={"split": split, "gold_sha256": gold.sha256, "predictions": len(parsed)},
    )
    content = predictions if predictions.endswith("\n") else predictions + "\n"
    artifact_store_inline(
        run=run,
        artifact=InlineArtifact(
            name=f"predictions-{split}.{'tsv' if fmt == 'tsv' else 'jsonl'}",
            kind="predictions",
            content=content,
            sha256=hashlib.sha256(content.encode("utf-8")).hexdigest(),
        ),
    )
    return run


@transaction.atomic
def gold_split_upload(
    *, task: Task, split: str, content: bytes, uploaded_by: User | None
) -> GoldSplit:
    """Store private gold labels for a split after validating them as the loader would."""
    # Checked and re-encoded here: the loader assumes clean UTF-8 (a stray byte would be an
    # exception, not a message), and a byte-order mark would break its first line.
    content = uploaded_text(content=content).encode("utf-8")
    definition = task_definition(task=task)
    private = Path(settings.PODIUM_PRIVATE_DIR)
    target = local_split_path(definition, split, data_dir=private)
    private.mkdir(parents=True, exist_ok=True)
    # Stage inside the private folder so the final move is a same-filesystem rename.
    with tempfile.TemporaryDirectory(dir=private, prefix=".upload-") as staging:
        staged = local_split_path(definition, split, data_dir=Path(staging))
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_bytes(content)
        try:
            loaded = load_split(definition, split, data_dir=Path(staging))
        except DataError as error:
            raise RunInputError(_short(f"file: {error}".replace(staging, "<upload>"))) from None
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
    gold, _ = GoldSplit.objects.update_or_create(
        task=task,
        split=split,
        defaults={"rows": len(loaded.rows), "sha256": loaded.sha256, "uploaded_by": uploaded_by},
    )
    return gold
