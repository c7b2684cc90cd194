"""Runs submitted as predictions: validated and scored by Podium itself.

Gold labels come from staff-uploaded private splits first, then from PODIUM_DATA_DIR.
Where Podium holds no gold labels for a split (GLUE's test sets), the submission is refused
with a message that says so.
"""

from __future__ import annotations

import hashlib
import os
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
from leaderboard.predictions import PredictionError, parse_predictions, score_predictions
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
    gold = gold_split(task=task, split=split)
    definition = task_definition(task=task)
    try:
        parsed = parse_predictions(text=predictions, fmt=fmt)
        scores = score_predictions(task=definition, rows=gold.rows, predictions=parsed, split=split)
    except PredictionError as error:
        raise RunInputError(f"predictions: {error}") from None
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
            raise RunInputError(f"file: {error}".replace(staging, "<upload>")) from None
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
    gold, _ = GoldSplit.objects.update_or_create(
        task=task,
        split=split,
        defaults={"rows": len(loaded.rows), "sha256": loaded.sha256, "uploaded_by": uploaded_by},
    )
    return gold
