"""Runs of every kind a page lists, `per_kind` of each, for query-count tests: a page must
read the same number of queries whatever the number of runs."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.utils import timezone

from catalog.models import Backbone, BackboneSource, Method, Task
from tests.dashboard.scenario import executed_run
from tests.factories import UserFactory
from tracking.models import (
    Artifact,
    ArtifactKind,
    Flag,
    FlagKind,
    Job,
    MetricPoint,
    ProvenanceTier,
    Run,
    Visibility,
)
from tracking.services import (
    config_fingerprint,
    record_transition,
    run_create_external,
    run_transition,
)
from tracking.status import RunStatus

GLUE_SINGLE_METRIC = ("sst2", "rte", "qnli", "wnli")


@dataclass(frozen=True, kw_only=True)
class Population:
    owner: User
    method: Method
    backbone: Backbone
    executed: list[Run]  # succeeded runs of one spec, each with curves and figures
    external: list[Run]


def _task(key: str) -> Task:
    return Task.objects.prefetch_related("metrics").get(
        benchmark__key="glue", key=key, is_current=True
    )


def _queued(*, owner: User, method: Method, backbone: Backbone, task: Task, seed: int) -> Run:
    config = {"learning_rate": 3e-4}
    run = Run.objects.create(
        owner=owner,
        method=method,
        backbone=backbone,
        task=task,
        config=config,
        config_hash=config_fingerprint(config),
        seed=seed,
        provenance_tier=ProvenanceTier.EXECUTED,
        eval_split="validation",
    )
    record_transition(run=run, from_status="", reason="requested")
    Job.objects.create(run=run)
    return run


def populate(*, per_kind: int, start: int = 0) -> Population:
    """External and executed runs, running, queued and failed jobs, private runs of someone
    else: `per_kind` of each, numbered from `start` (call again to add more). Needs the
    loaded catalog."""
    owner = UserFactory.create(username="alice")
    stranger = UserFactory.create(username="mallory")
    backbone, _ = Backbone.objects.get_or_create(
        key="bert-base",
        defaults={
            "name": "BERT-base",
            "source": BackboneSource.HUB,
            "hub_id": "google-bert/bert-base-cased",
        },
    )
    method = Method.objects.get(key="lora")
    tasks = {key: _task(key) for key in GLUE_SINGLE_METRIC}
    external: list[Run] = []
    executed: list[Run] = []
    now = timezone.now()
    for i in range(start, start + per_kind):
        paper, _ = Method.objects.get_or_create(
            key=f"paper-{i % 3}", defaults={"name": f"Paper method {i % 3}"}
        )
        task = tasks[GLUE_SINGLE_METRIC[i % len(GLUE_SINGLE_METRIC)]]
        run = run_create_external(
            owner=owner,
            method=paper,
            backbone=backbone,
            task=task,
            config={"variant": i % 2},
            seed=i,
            scores={"accuracy": 0.7 + 0.001 * i},
            tags=[f"tag-{i}", "shared"],
        )
        Flag.objects.create(run=run, kind=FlagKind.NOTE, reason=f"note {i}")
        external.append(run)
        run_create_external(
            owner=stranger,
            method=paper,
            backbone=backbone,
            task=task,
            config={},
            seed=i,
            scores={"accuracy": 0.99},
            visibility=Visibility.PRIVATE,
        )
        done = executed_run(
            owner=owner,
            method=method,
            backbone=backbone,
            task=tasks["sst2"],
            config={"learning_rate": 3e-4},
            seed=0,
            scores={"accuracy": 0.9 + 0.001 * i},
            system={"trainable_parameters": 1e6, "wall_time_s": 60.0 + i},
            curves={"loss": [(s, 1.0 / s) for s in range(1, 6)], "lr": [(1, 1e-4)]},
        )
        Artifact.objects.create(
            run=done,
            kind=ArtifactKind.LOG,
            name="log.txt",
            uri=f"runs/{done.uuid}/log.txt",
            size_bytes=10,
            sha256="0" * 64,
        )
        executed.append(done)
        running = executed_run(
            owner=owner,
            method=method,
            backbone=backbone,
            task=tasks["rte"],
            config={"learning_rate": 3e-4},
            seed=100 + i,
            scores=None,
            curves={"loss": [(1, 0.9)]},
            progress={"step": 1, "total_steps": 10},
        )
        MetricPoint.objects.create(run=running, key="lr", step=1, value=1e-4, recorded_at=now)
        _queued(owner=owner, method=method, backbone=backbone, task=tasks["qnli"], seed=200 + i)
        failed = _queued(
            owner=owner, method=method, backbone=backbone, task=tasks["wnli"], seed=300 + i
        )
        Job.objects.filter(run=failed).update(attempts=1, log_tail="Traceback ...")
        run_transition(run_id=failed.pk, to=RunStatus.FAILED, reason="CUDA out of memory")
    return Population(
        owner=owner, method=method, backbone=backbone, executed=executed, external=external
    )
