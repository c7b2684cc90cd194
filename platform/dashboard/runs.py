"""Read side of the run pages: one run, its curves while it trains, runs of the same spec
(reproductions), side-by-side comparisons, and run lists for method and backbone pages.

Every function reads a fixed number of queries, whatever the number of runs or points.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Prefetch, Q, QuerySet

from catalog.models import Backbone, Method
from dashboard.charts import MAX_POINTS_PER_CURVE, Curve
from tracking.models import Flag, MetricPoint, Run, Score
from tracking.selectors import visible_runs_filter
from tracking.status import FINAL_STATUSES
from tracking.tracked import downsample_min_max

Viewer = AbstractBaseUser | AnonymousUser | None

# Two runs of one spec agree when every metric differs by at most this much (metrics are on
# a 0-1 scale): nondeterministic kernels move scores by a few thousandths, a bug by more.
REPRODUCTION_TOLERANCE = 0.01
COMPARE_MAX_RUNS = 12
RUN_LIST_LIMIT = 50

RUN_RELATED = ("method", "backbone", "task", "task__benchmark", "owner")


def runs_visible(*, viewer: Viewer) -> QuerySet[Run]:
    """Runs the viewer may open, with what every run list shows fetched alongside."""
    return Run.objects.filter(visible_runs_filter(viewer=viewer)).select_related(*RUN_RELATED)


def run_for_page(*, viewer: Viewer, uuid: UUID | str) -> Run | None:
    return (
        runs_visible(viewer=viewer)
        .select_related("job", "owner__profile")
        .prefetch_related("tags", Prefetch("flags", queryset=Flag.objects.order_by("-created_at")))
        .filter(uuid=uuid)
        .first()
    )


def run_is_final(*, run: Run) -> bool:
    return run.status in FINAL_STATUSES


def run_curves(
    *, run_ids: Sequence[int], max_points: int = MAX_POINTS_PER_CURVE
) -> dict[int, dict[str, Curve]]:
    """Every curve of the given runs in one query, each downsampled for display the way the
    API's `?max_points=` does it (storage keeps every point)."""
    raw: dict[int, dict[str, tuple[list[int], list[float]]]] = {}
    for run_id, key, step, value in (
        MetricPoint.objects.filter(run_id__in=run_ids)
        .order_by("run_id", "key", "step")
        .values_list("run_id", "key", "step", "value")
    ):
        steps, values = raw.setdefault(run_id, {}).setdefault(key, ([], []))
        steps.append(step)
        values.append(value)
    return {
        run_id: {
            key: downsample_min_max(steps, values, max_points=max_points)
            for key, (steps, values) in curves.items()
        }
        for run_id, curves in raw.items()
    }


def run_live_state(*, run: Run, curves: Mapping[str, Curve]) -> dict[str, Any]:
    """What the run page polls while a run is not final: status, progress, log, curves."""
    job = getattr(run, "job", None)
    return {
        "status": run.status,
        "status_display": run.get_status_display(),
        "status_reason": run.status_reason,
        "final": run_is_final(run=run),
        "progress": dict(job.progress) if job is not None else {},
        "heartbeat_at": job.heartbeat_at.isoformat() if job and job.heartbeat_at else None,
        "worker": job.worker if job is not None else "",
        "log_tail": job.log_tail if job is not None else "",
        "points": sum(len(steps) for steps, _ in curves.values()),
    }


@dataclass(frozen=True, kw_only=True)
class ScoreDifference:
    metric: str
    higher_is_better: bool
    base: float | None
    other: float | None

    @property
    def difference(self) -> float | None:
        if self.base is None or self.other is None:
            return None
        return self.other - self.base

    @property
    def agrees(self) -> bool:
        diff = self.difference
        return diff is not None and abs(diff) <= REPRODUCTION_TOLERANCE


@dataclass(frozen=True, kw_only=True)
class RunComparison:
    """One run set against another of the same spec."""

    base: Run  # the original
    other: Run  # the reproduction
    rows: tuple[ScoreDifference, ...]

    @property
    def complete(self) -> bool:
        return bool(self.rows) and all(r.difference is not None for r in self.rows)

    @property
    def agrees(self) -> bool:
        return self.complete and all(r.agrees for r in self.rows)


@dataclass(frozen=True, kw_only=True)
class SameSpec:
    original: RunComparison | None  # set when this run reproduces an earlier one
    reproductions: tuple[RunComparison, ...]  # later runs of this run's spec


def _same_spec_filter(run: Run) -> Q:
    return Q(
        method_id=run.method_id,
        backbone_id=run.backbone_id,
        task_id=run.task_id,
        config_hash=run.config_hash,
        seed=run.seed,
        eval_split=run.eval_split,
    )


def _scores_by_run(run_ids: Iterable[int]) -> dict[int, dict[str, Score]]:
    out: dict[int, dict[str, Score]] = {}
    for score in Score.objects.filter(run_id__in=list(run_ids)).select_related("metric"):
        out.setdefault(score.run_id, {})[score.metric.key] = score
    return out


def _compare(base: Run, other: Run, scores: Mapping[int, Mapping[str, Score]]) -> RunComparison:
    mine, theirs = scores.get(base.pk, {}), scores.get(other.pk, {})
    metrics = {s.metric.key: s.metric for s in (*mine.values(), *theirs.values())}
    rows = tuple(
        ScoreDifference(
            metric=metric.name,
            higher_is_better=metric.higher_is_better,
            base=mine[key].value if key in mine else None,
            other=theirs[key].value if key in theirs else None,
        )
        for key, metric in sorted(metrics.items(), key=lambda kv: kv[1].position)
    )
    return RunComparison(base=base, other=other, rows=rows)


def run_same_spec(*, run: Run, viewer: Viewer) -> SameSpec:
    """Runs of exactly this run's spec (method, backbone, task version, config, seed, split):
    the earliest is the original, the later ones are its reproductions."""
    siblings = list(
        runs_visible(viewer=viewer)
        .filter(_same_spec_filter(run))
        .exclude(pk=run.pk)
        .order_by("created_at", "id")
    )
    # Read even without siblings: a page costs the same queries whether it has them or not.
    scores = _scores_by_run([run.pk, *(s.pk for s in siblings)])
    earlier = [s for s in siblings if (s.created_at, s.pk) < (run.created_at, run.pk)]
    later = [s for s in siblings if (s.created_at, s.pk) > (run.created_at, run.pk)]
    original = _compare(earlier[0], run, scores) if earlier else None
    # The original lists its reproductions; a reproduction compares only with the original.
    reproductions = () if earlier else tuple(_compare(run, s, scores) for s in later)
    return SameSpec(original=original, reproductions=reproductions)


def run_label(run: Run) -> str:
    return f"{run.method.name} · {run.backbone.name} · seed {run.seed} · {run.uuid.hex[:8]}"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


@dataclass(frozen=True, kw_only=True)
class ConfigRow:
    key: str
    values: tuple[str, ...]  # one per run; "—" where the run has no such key

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1


@dataclass(frozen=True, kw_only=True)
class ScoreRow:
    metric: str
    values: tuple[float | None, ...]


@dataclass(frozen=True, kw_only=True)
class RunsComparison:
    runs: tuple[Run, ...]
    not_shown: int  # requested ids that are unknown, private or past the limit
    config: tuple[ConfigRow, ...]
    scores: tuple[ScoreRow, ...]
    curves: dict[int, dict[str, Curve]]


def _display(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return str(value)


def parse_run_ids(values: Iterable[str]) -> list[UUID]:
    """Run ids from `?runs=a,b` or repeated `?runs=a&runs=b`; malformed ones are dropped."""
    out: list[UUID] = []
    for value in values:
        for part in value.split(","):
            try:
                parsed = UUID(part.strip())
            except ValueError:
                continue
            if parsed not in out:
                out.append(parsed)
    return out


def runs_compare(*, viewer: Viewer, uuids: Sequence[UUID]) -> RunsComparison:
    wanted = list(uuids)[:COMPARE_MAX_RUNS]
    found = {r.uuid: r for r in runs_visible(viewer=viewer).filter(uuid__in=wanted)}
    runs = tuple(found[u] for u in wanted if u in found)
    scores = _scores_by_run(r.pk for r in runs)
    described = [
        {
            "method": run.method.name,
            "backbone": run.backbone.name,
            "task": f"{run.task.benchmark.key}/{run.task.key} v{run.task.version}",
            "seed": run.seed,
            "eval split": run.eval_split or "—",
            "status": run.get_status_display(),
            **{f"config.{k}": v for k, v in _flatten(run.config).items() if k},
        }
        for run in runs
    ]
    keys: list[str] = []
    for fields in described:
        keys.extend(k for k in fields if k not in keys)
    config = tuple(
        ConfigRow(key=key, values=tuple(_display(f[key]) if key in f else "—" for f in described))
        for key in keys
    )
    metrics: dict[str, tuple[int, str]] = {}
    for per_run in scores.values():
        for key, score in per_run.items():
            metrics.setdefault(key, (score.metric.position, score.metric.name))
    score_rows = tuple(
        ScoreRow(
            metric=name,
            values=tuple(
                scores[r.pk][key].value if key in scores.get(r.pk, {}) else None for r in runs
            ),
        )
        for key, (_, name) in sorted(metrics.items(), key=lambda kv: kv[1])
    )
    return RunsComparison(
        runs=runs,
        not_shown=len(uuids) - len(runs),
        config=config,
        scores=score_rows,
        curves=run_curves(run_ids=[r.pk for r in runs]),
    )


def runs_recent(*, viewer: Viewer, limit: int = RUN_LIST_LIMIT, **filters: Any) -> list[Run]:
    """The newest runs the viewer may see, filtered by model fields (method=..., task=...)."""
    runs = runs_visible(viewer=viewer).filter(**filters).order_by("-created_at", "-id")
    return list(runs[:limit])


def runs_count(*, viewer: Viewer, **filters: Any) -> int:
    return runs_visible(viewer=viewer).filter(**filters).count()


def _visible_run_count(viewer: Viewer) -> Count:
    return Count("runs", filter=visible_runs_filter(viewer=viewer, prefix="runs__"))


def methods_with_run_counts(*, viewer: Viewer) -> QuerySet[Method]:
    """Every method, with `run_count`: the runs of it the viewer may see."""
    return Method.objects.annotate(run_count=_visible_run_count(viewer)).order_by("name")


def backbones_with_run_counts(*, viewer: Viewer) -> QuerySet[Backbone]:
    """Every backbone, with `run_count`: the runs on it the viewer may see."""
    return Backbone.objects.annotate(run_count=_visible_run_count(viewer)).order_by("name")
