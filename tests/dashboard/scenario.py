"""A GLUE leaderboard where the official mean and Kemeny disagree, for page, browser and
screenshot tests.

Built from BERT-large's published GLUE results (tests/published.py):
* "Full fine-tuning" is the published row, executed by Podium with three seeds;
* "Specialist" is far better on CoLA, RTE and WNLI and slightly worse on the seven other
  tasks: the best mean (so the best GLUE score), but it loses the pairwise majority to full
  fine-tuning on 7 of 10 tasks, which is therefore the Condorcet and Kemeny winner;
* LoRA and BitFit trail full fine-tuning everywhere but cost far less.
Seeds differ by a few thousandths so that the bootstrap has variation to resample. Cost
figures are those of BERT-large's adapters (trainable parameters) and plausible GPU times.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from catalog.models import Backbone, BackboneSource, Method, Task
from tests.published import BERT_LARGE_GLUE
from tracking.models import Job, MetricPoint, ProvenanceTier, Run, Score, Visibility
from tracking.services import (
    config_fingerprint,
    eval_split_fields,
    record_transition,
    run_create_external,
    run_transition,
)
from tracking.status import RunStatus

SEEDS = (0, 1, 2)
# Per-seed offsets: small against the gaps between systems, but not zero.
SEED_NOISE = (0.0, 0.003, -0.002)
SPECIALIST_BOOST = {"cola": 0.12, "rte": 0.12, "wnli": 0.12}


@dataclass(frozen=True, kw_only=True)
class SystemPlan:
    method_key: str
    config: dict[str, Any]
    shift: dict[str, float]  # per task; tasks not named get `default_shift`
    default_shift: float
    executed: bool
    trainable_parameters: float = 0.0
    peak_memory_mb: float = 0.0
    seconds_per_task: float = 0.0


PLANS = (
    SystemPlan(
        method_key="full_finetuning",
        config={"learning_rate": 2e-5, "epochs": 3},
        shift={},
        default_shift=0.0,
        executed=True,
        trainable_parameters=335_141_888,
        peak_memory_mb=14_800,
        seconds_per_task=1_900,
    ),
    SystemPlan(
        method_key="specialist",
        config={"recipe": "task-adaptive pretraining"},
        shift=SPECIALIST_BOOST,
        default_shift=-0.01,
        executed=False,
    ),
    SystemPlan(
        method_key="lora",
        config={"learning_rate": 3e-4, "rank": 8},
        shift={"sst2": 0.002},
        default_shift=-0.006,
        executed=True,
        trainable_parameters=786_432,
        peak_memory_mb=8_100,
        seconds_per_task=1_300,
    ),
    SystemPlan(
        method_key="bitfit",
        config={"learning_rate": 1e-3},
        shift={},
        default_shift=-0.02,
        executed=True,
        trainable_parameters=273_408,
        peak_memory_mb=7_400,
        seconds_per_task=1_100,
    ),
)


@dataclass(frozen=True, kw_only=True)
class Showcase:
    owner: User
    backbone: Backbone
    curve_run: Run  # a finished executed run with curves
    reproduction: Run  # a later run of the same spec with slightly different scores
    live_run: Run  # a running run with a partial curve


def _glue_task(key: str) -> Task:
    return Task.objects.prefetch_related("metrics").get(
        benchmark__key="glue", key=key, is_current=True
    )


def executed_run(
    *,
    owner: User,
    method: Method,
    backbone: Backbone,
    task: Task,
    config: dict[str, Any],
    seed: int,
    scores: dict[str, float] | None,
    system: dict[str, float] | None = None,
    curves: dict[str, list[tuple[int, float]]] | None = None,
    progress: dict[str, Any] | None = None,
) -> Run:
    """A run Podium executed, as the platform worker records it: queued, running (with its
    curves), then succeeded with its scores; left running when `scores` is None."""
    run = Run.objects.create(
        owner=owner,
        method=method,
        backbone=backbone,
        task=task,
        config=config,
        config_hash=config_fingerprint(config),
        seed=seed,
        status=RunStatus.QUEUED,
        visibility=Visibility.PUBLIC,
        provenance_tier=ProvenanceTier.EXECUTED,
        **eval_split_fields(task=task),
    )
    record_transition(run=run, from_status="", reason="requested")
    now = timezone.now()
    Job.objects.create(
        run=run,
        attempts=1,
        worker="gpu-a100-0",
        dispatched_at=now,
        heartbeat_at=now,
        progress=progress or {},
        log_tail="epoch 1/3: loss 0.41\nepoch 2/3: loss 0.22\n",
    )
    run_transition(run_id=run.pk, to=RunStatus.RUNNING, reason="started on gpu-a100-0")
    MetricPoint.objects.bulk_create(
        MetricPoint(run=run, key=key, step=step, value=value, recorded_at=now)
        for key, points in (curves or {}).items()
        for step, value in points
    )
    if scores is None:
        return run
    metrics = {m.key: m for m in task.metrics.all()}
    Score.objects.bulk_create(
        Score(run=run, metric=metrics[key], value=value) for key, value in scores.items()
    )
    Run.objects.filter(pk=run.pk).update(system=system or {})
    run_transition(run_id=run.pk, to=RunStatus.SUCCEEDED, reason="result recorded")
    run.refresh_from_db()
    return run


def training_curves(*, steps: int, final_loss: float, final_accuracy: float) -> dict[str, Any]:
    """Smooth loss and accuracy curves that end at the given values."""
    loss = [(s, final_loss + 0.6 * (0.96 ** (s / 2))) for s in range(1, steps + 1)]
    accuracy = [(s, final_accuracy - 0.25 * (0.9 ** (s / 10))) for s in range(10, steps + 1, 10)]
    rate = [(s, 2e-5 * min(1.0, s / 10) * (1 - s / (steps + 1))) for s in range(1, steps + 1)]
    return {"train/loss": loss, "eval/accuracy": accuracy, "learning_rate": rate}


def build_showcase(*, seeds: tuple[int, ...] = SEEDS) -> Showcase:
    call_command("load_catalog", verbosity=0, stdout=io.StringIO())
    owner, _ = User.objects.get_or_create(username="alice", defaults={"email": "a@example.org"})
    backbone, _ = Backbone.objects.get_or_create(
        key="bert-large-cased",
        defaults={
            "name": "BERT-large",
            "source": BackboneSource.HUB,
            "hub_id": "google-bert/bert-large-cased",
            "parameter_count": 335_141_888,
            "license": "apache-2.0",
        },
    )
    Method.objects.get_or_create(
        key="specialist",
        defaults={"name": "Specialist", "executable": False, "description": "External."},
    )
    methods = {m.key: m for m in Method.objects.all()}
    tasks = {key: _glue_task(key) for key in BERT_LARGE_GLUE}
    for plan in PLANS:
        for index, seed in enumerate(seeds):
            noise = SEED_NOISE[index % len(SEED_NOISE)]
            for key, published in BERT_LARGE_GLUE.items():
                shift = plan.shift.get(key, plan.default_shift) + noise
                scores = {m: round(min(1.0, v + shift), 4) for m, v in published.items()}
                if plan.executed:
                    executed_run(
                        owner=owner,
                        method=methods[plan.method_key],
                        backbone=backbone,
                        task=tasks[key],
                        config=plan.config,
                        seed=seed,
                        scores=scores,
                        system={
                            "trainable_parameters": plan.trainable_parameters,
                            "peak_accelerator_memory_mb": plan.peak_memory_mb,
                            "wall_time_s": plan.seconds_per_task,
                        },
                    )
                else:
                    run_create_external(
                        owner=owner,
                        method=methods[plan.method_key],
                        backbone=backbone,
                        task=tasks[key],
                        config=plan.config,
                        seed=seed,
                        scores=scores,
                        description="Scores from the authors' paper.",
                    )
    full = PLANS[0]
    sst2 = tasks["sst2"]
    curve_run = executed_run(
        owner=owner,
        method=methods["full_finetuning"],
        backbone=backbone,
        task=sst2,
        config=full.config,
        seed=7,
        scores={"accuracy": 0.9482},
        system={"trainable_parameters": full.trainable_parameters, "wall_time_s": 1880.0},
        curves=training_curves(steps=120, final_loss=0.08, final_accuracy=0.9482),
    )
    reproduction = executed_run(
        owner=owner,
        method=methods["full_finetuning"],
        backbone=backbone,
        task=sst2,
        config=full.config,
        seed=7,
        scores={"accuracy": 0.9471},
        system={"trainable_parameters": full.trainable_parameters, "wall_time_s": 1875.0},
        curves=training_curves(steps=120, final_loss=0.081, final_accuracy=0.9471),
    )
    partial = training_curves(steps=40, final_loss=0.3, final_accuracy=0.7)
    live_run = executed_run(
        owner=owner,
        method=methods["lora"],
        backbone=backbone,
        task=tasks["rte"],
        config={"learning_rate": 3e-4, "rank": 16},
        seed=0,
        scores=None,
        curves={"train/loss": partial["train/loss"]},
        progress={"step": 40, "total_steps": 120, "examples_per_second": 212.5},
    )
    return Showcase(
        owner=owner,
        backbone=backbone,
        curve_run=curve_run,
        reproduction=reproduction,
        live_run=live_run,
    )
