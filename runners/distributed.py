"""Data-parallel jobs: several processes on one worker, launched by torchrun.

A job that asks for more than one GPU runs under `python -m torch.distributed.run
--standalone --nproc-per-node=N` on the worker that took it: one process (rank) per GPU
with the nccl backend, or, on a machine without CUDA, N CPU processes with gloo. The
parent (the Celery task) stays the only process that talks to the broker: it keeps the
claim, heartbeats, control queue and time limit, and sends the one JobResult. Files in
the job's workdir connect it to the ranks:

* `launch.json`: what to run (the spec, the data folder, the backend), from the parent;
* `channel.jsonl`: rank 0's log lines, metric points and progress, one JSON object a
  line, tailed by the parent and forwarded to its reporter;
* `result.json`: rank 0's JobResult, written atomically when it is done;
* `stop`: created by the parent to stop the job. Every rank looks for it at each step
  boundary and the ranks agree (an all-reduce) so they all stop at the same step; if
  they have not stopped within a grace period the launcher is terminated, and the ranks,
  bound to its life, with it;
* `ranks/rank-R.log`: everything rank R printed (its log lines, tracebacks, warnings);
  `launcher.log`: torchrun's own output, with its report of which rank exited how;
* `ranks/rank-R.error`: the error of a rank whose work failed and when, so the parent
  can name the rank that failed first (the others then fail on the broken connection).

Inside the ranks, the helpers at the end (process group, sharding, reductions, DDP)
make the training loop data parallel; without a process group they do nothing, so a
single-process job runs exactly as it always did.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from runners import provenance
from runners.reporting import JobCancelled, Reporter, check_cancelled
from runners.spec import JobResult, JobSpec, Resources, SpecError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
LOG_TAIL_CHARS = 4000
# How often the parent forwards rank 0's reports and checks for a stop request.
POLL_S = 0.2
# How long the ranks get to stop at a step boundary before their launcher is terminated,
# and how long the launcher then gets to take its ranks down before it is killed.
STOP_GRACE_S = float(os.environ.get("PODIUM_STOP_GRACE_S", "120"))
TERMINATE_GRACE_S = 40.0

LAUNCH_FILE = "launch.json"
CHANNEL_FILE = "channel.jsonl"
RESULT_FILE = "result.json"
STOP_FILE = "stop"
RANKS_DIR = "ranks"
LAUNCHER_LOG = "launcher.log"

_PR_SET_PDEATHSIG = 1

_T = TypeVar("_T")


class DistributedUnavailable(ValueError):
    """This worker cannot give the job the processes it asks for."""


@dataclass(frozen=True, kw_only=True)
class Launch:
    world_size: int
    backend: str  # "nccl" (one process per GPU) or "gloo" (CPU processes)

    def describe(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "backend": self.backend}


def plan_launch(resources: Resources) -> Launch | None:
    """How to run a job with these resources: None in this process, else under torchrun.

    A job asking for N > 1 GPUs gets N processes: one per GPU with nccl where CUDA is
    available, else N CPU processes with gloo (how the tests run it on machines without
    a GPU).
    """
    if resources.gpus <= 1:
        return None
    import torch

    if torch.cuda.is_available():
        available = torch.cuda.device_count()
        if available < resources.gpus:
            raise DistributedUnavailable(
                f"the job asks for {resources.gpus} GPUs; this worker has {available}"
            )
        backend = "nccl" if torch.distributed.is_nccl_available() else "gloo"
        return Launch(world_size=resources.gpus, backend=backend)
    if not torch.distributed.is_gloo_available():
        raise DistributedUnavailable("this worker's torch has no gloo backend for CPU processes")
    return Launch(world_size=resources.gpus, backend="gloo")


def execute_on_worker(
    spec: JobSpec, *, reporter: Reporter, workdir: Path, data_dir: Path | None
) -> JobResult:
    """Run a job the way its resources ask: in this process, or under torchrun.

    Artifacts go to the store the environment names (`store_from_env`), which the ranks
    inherit. As with `execute`, a failure of the job is a failed JobResult with the reason.
    """
    from runners.artifact_store import store_from_env
    from runners.execute import execute

    try:
        launch = plan_launch(spec.resources)
    except DistributedUnavailable as error:
        return JobResult(
            job_id=spec.job_id,
            attempt=spec.attempt,
            outcome="failed",
            error=str(error),
            provenance=provenance.collect(),
        )
    if launch is None:
        return execute(
            spec,
            reporter=reporter,
            workdir=workdir,
            data_dir=data_dir,
            artifact_store=store_from_env(),
        )
    return run_distributed(
        spec, launch=launch, reporter=reporter, workdir=workdir, data_dir=data_dir
    )


# --- the parent: launch, forward, stop, explain ------------------------------------------


def _die_with_parent(sig: int) -> None:
    """Have the kernel send this process `sig` when its parent dies (Linux), so a worker
    killed mid-job does not leave its launcher and ranks training on."""
    if not sys.platform.startswith("linux"):
        return
    prctl: Callable[[int, int], int] | None = getattr(ctypes.CDLL(None), "prctl", None)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, sig)


class _ChannelTail:
    """Reads the complete lines rank 0 appended since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def forward(self, reporter: Reporter) -> None:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        for raw in lines:
            try:
                event = json.loads(raw)
                _forward_event(event, reporter)
            except (ValueError, KeyError, TypeError) as error:
                logger.warning("ignored a malformed channel line %r: %s", raw[:200], error)


def _forward_event(event: Mapping[str, Any], reporter: Reporter) -> None:
    kind = event["kind"]
    if kind == "log":
        reporter.log(str(event["message"]))
    elif kind == "metrics":
        metrics = {str(k): float(v) for k, v in event["metrics"].items()}
        reporter.log_metrics(metrics, step=int(event["step"]))
    elif kind == "progress":
        reporter.progress(
            step=int(event["step"]),
            total_steps=int(event["total_steps"]),
            examples_per_second=float(event["examples_per_second"]),
        )
    else:
        raise ValueError(f"unknown event kind {kind!r}")


def _tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4 * chars))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return text[-chars:]


# torchrun's failure report: "rank : 1 (local_rank: 1)" then "exitcode : -9 (pid: ...)".
_REPORTED_FAILURE = re.compile(
    r"rank\s*:\s*(\d+)\s*\(local_rank:\s*\d+\)\s*\n\s*exitcode\s*:\s*(-?\d+)"
)


def _reported_exit_codes(launcher_output: str) -> dict[int, int]:
    return {int(rank): int(code) for rank, code in _REPORTED_FAILURE.findall(launcher_output)}


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


@dataclass(frozen=True, kw_only=True)
class RankFailure:
    rank: int
    error: str
    log_tail: str


def root_failure(workdir: Path, *, world_size: int) -> RankFailure | None:
    """The rank whose failure brought the job down, with its error and log tail.

    A rank killed by a signal (out of memory, a segfault) leaves no error file; its peers
    then fail on the broken connection and do leave one, so a rank torchrun saw die by a
    signal other than its own SIGTERM comes first. Otherwise the earliest error wins.
    """
    ranks = workdir / RANKS_DIR
    launcher_output = _tail(workdir / LAUNCHER_LOG, 40_000)
    errors: dict[int, tuple[float, str]] = {}
    for rank in range(world_size):
        try:
            data = json.loads((ranks / f"rank-{rank}.error").read_text(encoding="utf-8"))
            errors[rank] = (float(data["time"]), str(data["error"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            continue
    exit_codes = _reported_exit_codes(launcher_output)
    killed = sorted(
        rank
        for rank, code in exit_codes.items()
        if rank not in errors and code != 0 and code != -signal.SIGTERM
    )
    if killed:
        rank = killed[0]
        error = f"rank {rank} of {world_size} {_describe_exit(exit_codes[rank])}"
    elif errors:
        rank = min(errors, key=lambda r: errors[r][0])
        error = f"rank {rank} of {world_size} failed: {errors[rank][1]}"
    elif exit_codes:
        rank = min(exit_codes)
        error = f"rank {rank} of {world_size} {_describe_exit(exit_codes[rank])}"
    else:
        return None
    log_tail = _tail(ranks / f"rank-{rank}.log") or launcher_output[-LOG_TAIL_CHARS:]
    return RankFailure(rank=rank, error=error, log_tail=log_tail)


def run_distributed(
    spec: JobSpec,
    *,
    launch: Launch,
    reporter: Reporter,
    workdir: Path,
    data_dir: Path | None,
    stop_grace_s: float = STOP_GRACE_S,
) -> JobResult:
    """Run `spec` in `launch.world_size` processes under torchrun; return rank 0's result.

    Never raises and never waits forever: a failed rank fails the job with its error and
    log tail; a stop request (cancel, stop, time limit) reaches the ranks through the
    stop file, and the launcher is terminated if they do not stop in time.
    """
    started = time.perf_counter()

    def ended(outcome: str, error: str, log_tail: str = "") -> JobResult:
        return JobResult(
            job_id=spec.job_id,
            attempt=spec.attempt,
            outcome=outcome,
            error=error,
            log_tail=log_tail,
            provenance=provenance.collect(distributed=launch.describe()),
            system={"wall_time_s": time.perf_counter() - started},
        )

    try:
        workdir.mkdir(parents=True, exist_ok=True)
        # Nothing from an earlier launch in this folder may be taken for this one's.
        shutil.rmtree(workdir / RANKS_DIR, ignore_errors=True)
        for name in (CHANNEL_FILE, RESULT_FILE, STOP_FILE):
            (workdir / name).unlink(missing_ok=True)
        (workdir / RANKS_DIR).mkdir()
        (workdir / LAUNCH_FILE).write_text(
            json.dumps(
                {
                    "spec": spec.to_dict(),
                    "data_dir": str(data_dir) if data_dir is not None else None,
                    "backend": launch.backend,
                    "world_size": launch.world_size,
                }
            ),
            encoding="utf-8",
        )
        # `launch` binds itself to this process's life, then becomes torchrun (exec).
        command = [
            *(sys.executable, "-m", "runners.distributed", "launch", str(os.getpid())),
            "--standalone",
            f"--nproc-per-node={launch.world_size}",
            *("-m", "runners.distributed", "rank", str(workdir)),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        # Share the cores between the ranks (torchrun would set 1 and warn about it).
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // launch.world_size)))
        reporter.log(f"launching {launch.world_size} processes under torchrun ({launch.backend})")
        with (workdir / LAUNCHER_LOG).open("wb") as launcher_log:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=launcher_log,
                stderr=subprocess.STDOUT,
            )
    except OSError as error:
        return ended("failed", f"could not launch the ranks: {error}")

    channel = _ChannelTail(workdir / CHANNEL_FILE)
    stop_deadline: float | None = None
    terminated = False
    try:
        while True:
            try:
                process.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            channel.forward(reporter)
            now = time.monotonic()
            if stop_deadline is None and reporter.cancel_requested():
                (workdir / STOP_FILE).touch()
                stop_deadline = now + stop_grace_s
                reporter.log("asked the ranks to stop at their next step")
            elif stop_deadline is not None and now > stop_deadline and not terminated:
                reporter.log(f"the ranks did not stop within {stop_grace_s:.0f} s: terminating")
                _terminate(process)
                terminated = True
    finally:
        if process.poll() is None:  # only if this function itself was interrupted
            _terminate(process)
    channel.forward(reporter)

    result: JobResult | None = None
    try:
        result = JobResult.from_dict(
            json.loads((workdir / RESULT_FILE).read_text(encoding="utf-8"))
        )
    except FileNotFoundError:
        pass
    except (ValueError, SpecError) as error:
        return ended("failed", f"rank 0 wrote an unreadable result: {error}")
    if result is not None and (result.job_id, result.attempt) != (spec.job_id, spec.attempt):
        return ended("failed", "rank 0's result names another job or attempt")
    # Rank 0 finishes after every other rank's last collective: its success or
    # cancellation stands even if another rank fails afterwards.
    if result is not None and result.outcome != "failed":
        return result
    if stop_deadline is not None:
        how = " (terminated)" if terminated else ""
        return ended("cancelled", f"the job was stopped{how}")
    failure = root_failure(workdir, world_size=launch.world_size)
    if failure is not None:
        reporter.log(f"{failure.error}; its log ends:\n{failure.log_tail[-1500:]}")
        return ended("failed", failure.error, failure.log_tail)
    if result is not None:
        return result
    tail = _tail(workdir / LAUNCHER_LOG)
    return ended("failed", f"torchrun exited with code {process.returncode} without a result", tail)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the launcher (it stops its ranks, SIGKILLing stragglers), then SIGKILL it;
    ranks still alive then die with it (they were started bound to its life)."""
    process.terminate()
    try:
        process.wait(timeout=TERMINATE_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- python -m runners.distributed launch|rank ... ---------------------------------------


class RankReporter:
    """A rank's reporter: lines to its own log; rank 0 also writes the parent's channel."""

    def __init__(self, *, channel: IO[str] | None, stop_file: Path) -> None:
        self.channel = channel
        self.stop_file = stop_file

    def _emit(self, event: dict[str, Any]) -> None:
        if self.channel is not None:
            self.channel.write(json.dumps(event) + "\n")
            self.channel.flush()

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        self._emit(
            {"kind": "metrics", "step": step, "metrics": {k: float(v) for k, v in metrics.items()}}
        )

    def progress(self, *, step: int, total_steps: int, examples_per_second: float = 0.0) -> None:
        self._emit(
            {
                "kind": "progress",
                "step": step,
                "total_steps": total_steps,
                "examples_per_second": examples_per_second,
            }
        )

    def log(self, message: str) -> None:
        print(message, flush=True)
        self._emit({"kind": "log", "message": message})

    def cancel_requested(self) -> bool:
        return self.stop_file.exists()


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _redirect_output(log: Path) -> None:
    """Send this process's stdout and stderr (Python's and C's) to its own log file."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: Sequence[str]) -> int:
    """`launch WORKER_PID TORCHRUN_ARGS...` (for the worker) or `rank WORKDIR` (torchrun's)."""
    command, *rest = argv
    if command == "launch":
        return _launch(parent_pid=int(rest[0]), torchrun_args=rest[1:])
    if command == "rank":
        return _rank(Path(rest[0]))
    print(f"unknown command {command!r}: use launch or rank", file=sys.stderr)
    return 2


def _launch(*, parent_pid: int, torchrun_args: Sequence[str]) -> int:
    """Become torchrun, bound to the worker: SIGTERM when it dies (torchrun then stops its
    ranks). Binding here, not in a preexec function, keeps the worker's fork thread-safe."""
    _die_with_parent(signal.SIGTERM)
    if os.getppid() == parent_pid:
        os.execv(sys.executable, [sys.executable, "-m", "torch.distributed.run", *torchrun_args])
    return 1  # the worker died before this process was bound to it


def _rank(workdir: Path) -> int:
    """One rank of a distributed job; torchrun sets RANK, WORLD_SIZE, LOCAL_RANK."""
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    # Should torchrun itself be killed, its ranks go with it.
    _die_with_parent(signal.SIGKILL)
    _redirect_output(workdir / RANKS_DIR / f"rank-{rank}.log")
    error_file = workdir / RANKS_DIR / f"rank-{rank}.error"

    def record_failure(error: str) -> int:
        _write_atomically(
            error_file, json.dumps({"rank": rank, "time": time.time(), "error": error})
        )
        return 1

    try:
        launch = json.loads((workdir / LAUNCH_FILE).read_text(encoding="utf-8"))
        spec = JobSpec.from_dict(launch["spec"])
        data_dir = Path(launch["data_dir"]) if launch["data_dir"] else None
        import torch

        if launch["backend"] == "nccl":
            torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group(backend=launch["backend"])
        from runners.artifact_store import store_from_env
        from runners.execute import execute

        store = store_from_env() if rank == 0 else None
    except Exception as error:
        traceback.print_exc()
        return record_failure(f"{type(error).__name__}: {error}")

    channel = (workdir / CHANNEL_FILE).open("a", encoding="utf-8") if rank == 0 else None
    try:
        result = execute(
            spec,
            reporter=RankReporter(channel=channel, stop_file=workdir / STOP_FILE),
            workdir=workdir / f"rank-{rank}",
            data_dir=data_dir,
            artifact_store=store,
        )
    finally:
        if channel is not None:
            channel.close()
    if result.outcome == "failed":
        # Leave at once: a peer blocked in a collective then fails too instead of waiting.
        return record_failure(result.error)
    if rank == 0:
        _write_atomically(workdir / RESULT_FILE, json.dumps(result.to_dict()))
    torch.distributed.destroy_process_group()
    return 0


# --- inside a rank: what makes the training loop data parallel ---------------------------


@dataclass(frozen=True, kw_only=True)
class ProcessGroup:
    rank: int
    world_size: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def process_group() -> ProcessGroup | None:
    """The initialised process group of several ranks this process belongs to, if any.

    Looks torch up without importing it: a process that never loaded torch is in no group.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    dist = torch.distributed
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() < 2:
        return None
    return ProcessGroup(
        rank=dist.get_rank(), world_size=dist.get_world_size(), backend=str(dist.get_backend())
    )


def is_main_process() -> bool:
    group = process_group()
    return group is None or group.is_main


def shard(batch: Sequence[_T], group: ProcessGroup) -> tuple[list[_T], float]:
    """This rank's part of a global batch, and its share of the batch's examples.

    Items are dealt round-robin, so length-grouped batches give every rank similar
    lengths. A rank dealt nothing (a batch smaller than the world) gets the first item
    with share 0: it still joins the gradient all-reduce, contributing nothing.
    """
    mine = list(batch[group.rank :: group.world_size])
    if not mine:
        return list(batch[:1]), 0.0
    return mine, len(mine) / len(batch)


def _collective_device(group: ProcessGroup) -> torch.device:
    import torch

    if group.backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sum_tensor(value: torch.Tensor, group: ProcessGroup) -> torch.Tensor:
    """The sum of `value` over all ranks (autograd does not flow through it)."""
    import torch

    total = value.detach().to(_collective_device(group), torch.float64).clone()
    torch.distributed.all_reduce(total)
    return total.to(value.device, value.dtype)


def sum_across(values: Sequence[float], group: ProcessGroup) -> list[float]:
    import torch

    tensor = torch.tensor(list(values), dtype=torch.float64, device=_collective_device(group))
    torch.distributed.all_reduce(tensor)
    return [float(v) for v in tensor.cpu()]


def gather_across(value: float, group: ProcessGroup) -> list[float]:
    """`value` from every rank, in rank order."""
    import torch

    device = _collective_device(group)
    parts = [torch.zeros(1, dtype=torch.float64, device=device) for _ in range(group.world_size)]
    torch.distributed.all_gather(parts, torch.tensor([value], dtype=torch.float64, device=device))
    return [float(p.item()) for p in parts]


def check_cancelled_together(reporter: Reporter, group: ProcessGroup | None) -> None:
    """`check_cancelled` at a step boundary, agreed by all ranks: if any rank was asked to
    stop, every rank stops at this same step (none is left waiting in a collective)."""
    if group is None:
        check_cancelled(reporter)
        return
    if sum_across([1.0 if reporter.cancel_requested() else 0.0], group)[0] > 0:
        raise JobCancelled("the job was cancelled")


def data_parallel(model: Any, group: ProcessGroup) -> Any:
    """`model` wrapped in DistributedDataParallel: gradients are averaged over the ranks
    during backward, so every rank takes the same optimizer step."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    on_cuda = next(model.parameters()).is_cuda
    return DistributedDataParallel(
        model, device_ids=[torch.cuda.current_device()] if on_cuda else None
    )


def broadcast_parameters(model: Any, group: ProcessGroup) -> None:
    """Every rank starts from rank 0's weights (for training without DDP, e.g. MeZO)."""
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            torch.distributed.broadcast(parameter.data, src=0)


__all__ = [
    "DistributedUnavailable",
    "Launch",
    "ProcessGroup",
    "RankReporter",
    "broadcast_parameters",
    "check_cancelled_together",
    "data_parallel",
    "execute_on_worker",
    "gather_across",
    "is_main_process",
    "plan_launch",
    "process_group",
    "root_failure",
    "run_distributed",
    "shard",
    "sum_across",
    "sum_tensor",
]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
