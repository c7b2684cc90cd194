"""Read side of a task's page: every system's scores on one task version, and per-class
metrics where runs report them.

Per-class metrics are read from a run's `extra_scores` under keys
`per_class/<class label>/<metric>` (e.g. `per_class/positive/f1`), the way a worker or a
submission reports scores beyond the task's own metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from catalog.models import Task, TaskMetric
from tracking.models import Run
from tracking.selectors import SeedAggregate, SystemScores, system_scores, visible_runs_filter
from tracking.status import RunStatus

Viewer = AbstractBaseUser | AnonymousUser | None
PER_CLASS_PREFIX = "per_class/"


@dataclass(frozen=True, kw_only=True)
class TaskBoardRow:
    system: SystemScores
    cells: tuple[SeedAggregate | None, ...]  # one per metric of the task


@dataclass(frozen=True, kw_only=True)
class PerClassRow:
    system: str
    values: tuple[float | None, ...]  # one per (class, metric) column, mean over runs


@dataclass(frozen=True, kw_only=True)
class PerClass:
    columns: tuple[tuple[str, str], ...]  # (class label, metric key)
    rows: tuple[PerClassRow, ...]


@dataclass(frozen=True, kw_only=True)
class TaskBoard:
    metrics: tuple[TaskMetric, ...]
    rows: tuple[TaskBoardRow, ...]
    per_class: PerClass | None


def _per_class(task: Task, viewer: Viewer, systems: list[SystemScores]) -> PerClass | None:
    labels = {
        (s.method.pk, s.backbone.pk, s.config_hash, s.official_split): s.label for s in systems
    }
    sums: dict[str, dict[tuple[str, str], list[float]]] = {}
    for method_id, backbone_id, config_hash, official, extra in Run.objects.filter(
        visible_runs_filter(viewer=viewer), task=task, status=RunStatus.SUCCEEDED
    ).values_list("method_id", "backbone_id", "config_hash", "on_official_split", "extra_scores"):
        label = labels.get((method_id, backbone_id, config_hash, official))
        if label is None or not isinstance(extra, dict):
            continue
        for key, value in extra.items():
            parts = key.split("/")
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if len(parts) == 3 and key.startswith(PER_CLASS_PREFIX) and number:
                sums.setdefault(label, {}).setdefault((parts[1], parts[2]), []).append(value)
    if not sums:
        return None
    found = {column for per_system in sums.values() for column in per_system}
    order = {label: i for i, label in enumerate(task.labels or [])}
    columns = tuple(sorted(found, key=lambda c: (order.get(c[0], len(order)), c[0], c[1])))
    rows = tuple(
        PerClassRow(
            system=label,
            values=tuple(
                sum(v) / len(v) if (v := per_system.get(column)) else None for column in columns
            ),
        )
        for label, per_system in sorted(sums.items())
    )
    return PerClass(columns=columns, rows=rows)


def task_board(*, task: Task, viewer: Viewer = None) -> TaskBoard:
    """Every system on this task version, best first by the primary metric."""
    metrics = tuple(sorted(task.metrics.all(), key=lambda m: m.position))
    systems = system_scores(task_ids=[task.pk], viewer=viewer)
    rows = [
        TaskBoardRow(system=s, cells=tuple(s.scores.get((task.pk, m.key)) for m in metrics))
        for s in systems
    ]
    primary = next((i for i, m in enumerate(metrics) if m.key == task.primary_metric), None)
    if primary is not None:
        sign = -1.0 if metrics[primary].higher_is_better else 1.0

        def order(row: TaskBoardRow) -> tuple[bool, float, str]:
            cell = row.cells[primary]
            return (cell is None, sign * cell.mean if cell else 0.0, row.system.label)

        rows.sort(key=order)
    return TaskBoard(metrics=metrics, rows=tuple(rows), per_class=_per_class(task, viewer, systems))
