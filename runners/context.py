"""What a method is given (JobContext) and what it hands back (MethodOutput)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leaderboard.catalog import TaskDefinition
from leaderboard.data import load_task
from runners.reporting import Reporter
from runners.spec import JobSpec


@dataclass(frozen=True, kw_only=True)
class JobContext:
    spec: JobSpec
    task: TaskDefinition
    config: Mapping[str, Any]  # validated against the method's schema, defaults filled in
    reporter: Reporter
    workdir: Path
    data_dir: Path | None = None

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def train_split(self) -> str:
        return "train"

    @property
    def eval_split(self) -> str:
        return self.spec.eval_split or self.task.eval_split

    def rows(self, split: str) -> list[dict[str, Any]]:
        return _rows(self.task, split, self.data_dir)


@functools.lru_cache(maxsize=16)
def _rows(task: TaskDefinition, split: str, data_dir: Path | None) -> list[dict[str, Any]]:
    return load_task(task, split, data_dir=data_dir)


@dataclass(frozen=True, kw_only=True)
class MethodOutput:
    # One prediction per row of the eval split, in order, in the task's label format
    # (a label name or index, a float for regression, a tag list for sequence labelling).
    predictions: Sequence[Any]
    trainable_parameters: int | None = None
    extra_scores: Mapping[str, float] = field(default_factory=dict)
    system: Mapping[str, float] = field(default_factory=dict)
    # Large files to keep (e.g. {"checkpoint.safetensors": path}), put in the artifact store.
    files: Mapping[str, Path] = field(default_factory=dict)
