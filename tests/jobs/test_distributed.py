"""Jobs asking for several GPUs run under torchrun on one worker (here: 2 CPU ranks, gloo).

Through the real broker, the real platform worker and a real GPU-worker process, which
launches torchrun; the ranks train a tiny model built here with the real fine-tuning loop.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from catalog.models import Backbone, BackboneSource, Method, Task
from runners.testing import build_tiny_encoder
from tests.conftest import CeleryWorker
from tests.jobs.conftest import GpuWorker, wait_until
from tracking.jobs import run_cancel, runs_request
from tracking.models import Job, MetricPoint, Run, Score
from tracking.status import RunStatus

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TRAIN = {"max_train_examples": 64, "batch_size": 8, "eval_batch_size": 256, "log_every": 2}
# A job that would train for hours: the tests stop it (or break it) mid-way.
ENDLESS = {**TRAIN, "max_steps": 1_000_000, "log_every": 1}


@pytest.fixture(scope="module")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    texts = (data_dir / "glue/sst2/train.jsonl").read_text(encoding="utf-8").splitlines()[:500]
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"), texts=texts)


@pytest.fixture
def tiny_backbone(tiny_encoder_dir: Path, transactional_db: None) -> Backbone:
    return Backbone.objects.create(
        key="tiny-bert",
        name="Tiny BERT",
        source=BackboneSource.LOCAL,
        local_path=str(tiny_encoder_dir),
    )


@pytest.fixture
def request_on_gpus(sst2: Task, owner: User) -> Callable[..., Run]:
    """Request one job on SST-2 that asks for `gpus` GPUs; returns its run."""

    def request(*, method: str, backbone: Backbone, config: dict[str, Any], gpus: int = 2) -> Run:
        # The spec goes out when the request commits, so it carries the resources.
        with transaction.atomic():
            (run,) = runs_request(
                owner=owner,
                method=Method.objects.get(key=method),
                backbone=backbone,
                task=sst2,
                config=config,
                seeds=[5],
                max_attempts=1,
            )
            Job.objects.filter(run=run).update(resources={"gpus": gpus})
        return run

    return request


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a live process; None once it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    return None if state in ("Z", "X") else (int(ppid), state)


def descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = found[0]
    found_pids: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found_pids |= frontier
    return found_pids


def rank_processes(worker: GpuWorker) -> dict[int, int]:
    """Rank -> pid of the torchrun ranks under the GPU worker (their RANK variable)."""
    ranks = {}
    for pid in descendants(worker.process.pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        for item in environ:
            if item.startswith(b"RANK="):
                ranks[int(item[5:])] = pid
    return ranks


def status_of(run: Run) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run.pk)


def step_of(run: Run) -> int:
    progress = Job.objects.values_list("progress", flat=True).get(run=run)
    return int(progress.get("step", 0))


@pytest.fixture
def gpu(start_gpu_worker: Callable[[], GpuWorker]) -> Iterator[GpuWorker]:
    worker = start_gpu_worker()
    yield worker
    # Whatever a test did, no rank may outlive its job.
    wait_until(
        lambda: not rank_processes(worker), timeout=60, what="the ranks to be gone at teardown"
    )


def test_a_two_gpu_job_trains_data_parallel_under_torchrun(
    platform_worker: CeleryWorker,
    gpu: GpuWorker,
    request_on_gpus: Callable[..., Run],
    tiny_backbone: Backbone,
) -> None:
    run = request_on_gpus(
        method="full_finetuning", backbone=tiny_backbone, config={**TRAIN, "max_steps": 6}
    )
    wait_until(
        lambda: status_of(run) in (RunStatus.SUCCEEDED, RunStatus.FAILED),
        timeout=240,
        what=lambda: f"the job to end; gpu log:\n{gpu.output()[-4000:]}",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.status_reason
    accuracy = Score.objects.get(run=run, metric__key="accuracy").value
    assert 0.0 <= accuracy <= 1.0
    assert run.provenance["hardware"]["distributed"] == {"world_size": 2, "backend": "gloo"}
    # Both ranks trained, each on its half of every batch of 8 (6 steps, 48 examples).
    assert run.system["world_size"] == 2
    assert run.system["train_examples_rank_0"] == 24
    assert run.system["train_examples_rank_1"] == 24
    # Rank 0's reports came through the channel to the parent, then to the platform.
    steps = list(
        MetricPoint.objects.filter(run=run, key="loss")
        .order_by("step")
        .values_list("step", flat=True)
    )
    assert steps == [2, 4, 6]
    log_tail = Job.objects.get(run=run).log_tail
    assert "launching 2 processes under torchrun (gloo)" in log_tail
    assert "data parallel: rank 0 of 2 (gloo)" in log_tail


def test_a_killed_rank_fails_the_job_with_its_rank_and_log(
    platform_worker: CeleryWorker,
    gpu: GpuWorker,
    request_on_gpus: Callable[..., Run],
    tiny_backbone: Backbone,
) -> None:
    run = request_on_gpus(method="full_finetuning", backbone=tiny_backbone, config=ENDLESS)
    wait_until(lambda: step_of(run) >= 2, timeout=240, what=lambda: gpu.output()[-4000:])
    ranks = rank_processes(gpu)
    assert sorted(ranks) == [0, 1]
    os.kill(ranks[1], signal.SIGKILL)  # as the kernel's out-of-memory killer would

    wait_until(lambda: status_of(run) == RunStatus.FAILED, timeout=60, what="the job to fail")
    run.refresh_from_db()
    assert "rank 1 of 2 was killed by SIGKILL" in run.status_reason
    # The job's log tail is the failing rank's own.
    assert "data parallel: rank 1 of 2 (gloo)" in Job.objects.get(run=run).log_tail
    assert not Score.objects.filter(run=run).exists()


def test_a_rank_raising_fails_the_job_with_its_error(
    platform_worker: CeleryWorker,
    gpu: GpuWorker,
    request_on_gpus: Callable[..., Run],
    stepper_method: Method,
    no_backbone: Backbone,
) -> None:
    run = request_on_gpus(
        method=stepper_method.key, backbone=no_backbone, config={"steps": 5, "fail_at_step": 3}
    )
    wait_until(
        lambda: status_of(run) == RunStatus.FAILED,
        timeout=120,
        what=lambda: f"the job to fail; gpu log:\n{gpu.output()[-4000:]}",
    )
    run.refresh_from_db()
    assert "of 2 failed: RuntimeError: diverged at step 3" in run.status_reason
    log_tail = Job.objects.get(run=run).log_tail
    assert "Traceback" in log_tail
    assert "diverged at step 3" in log_tail


def test_cancelling_a_distributed_job_stops_every_rank_at_a_step(
    platform_worker: CeleryWorker,
    gpu: GpuWorker,
    request_on_gpus: Callable[..., Run],
    tiny_backbone: Backbone,
) -> None:
    run = request_on_gpus(method="full_finetuning", backbone=tiny_backbone, config=ENDLESS)
    wait_until(lambda: step_of(run) >= 2, timeout=240, what=lambda: gpu.output()[-4000:])
    processes = descendants(gpu.process.pid)
    assert sorted(rank_processes(gpu)) == [0, 1]

    assert run_cancel(run_id=run.pk).status == RunStatus.CANCELLING
    wait_until(lambda: status_of(run) == RunStatus.CANCELLED, timeout=60, what="cancelled")
    # The launcher and both ranks are gone, having stopped at a step, not been killed.
    wait_until(
        lambda: all(_stat(pid) is None for pid in processes),
        timeout=30,
        what="the launcher and the ranks to exit",
    )
    log_tail = Job.objects.get(run=run).log_tail
    assert "asked the ranks to stop at their next step" in log_tail
    assert "terminating" not in log_tail
    assert step_of(run) < ENDLESS["max_steps"]
    assert not Score.objects.filter(run=run).exists()
