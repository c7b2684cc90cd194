"""Hugging Face Trainer → Podium: `trainer.add_callback(PodiumCallback(task=..., ...))`.

Every `on_log` (loss, learning rate, grad norm, eval metrics, ...) is logged at
`state.global_step`; at `on_train_end` the run is finished with the last evaluation's
metrics as its scores (Trainer's `eval_<metric>` for each metric of the Podium task, or the
names given in `score_map`). Importing this module imports transformers; the bare `podium`
package never does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

import podium
from podium.transport import check_metric_key

logger = logging.getLogger("podium")

# TrainingArguments worth recording as a run's config (the seed is a field of its own).
CONFIG_ARGUMENTS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "weight_decay",
    "warmup_steps",
    "lr_scheduler_type",
    "optim",
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class PodiumCallback(TrainerCallback):
    """Track a Trainer run in Podium.

    Give either a started `run` (from `podium.init`) or what `podium.init` needs (`task`,
    `method`, `backbone`, ...); then the run starts at `on_train_begin`, its config taken
    from the TrainingArguments unless `config` is given, its seed from `args.seed`.
    """

    def __init__(
        self,
        *,
        run: podium.Run | None = None,
        task: str | None = None,
        method: str | None = None,
        backbone: str | None = None,
        config: Mapping[str, Any] | None = None,
        seed: int | None = None,
        tags: Sequence[str] = (),
        description: str = "",
        visibility: str = "public",
        score_map: Mapping[str, str] | None = None,
        finish_on_train_end: bool = True,
        **init_options: Any,
    ) -> None:
        if run is None and not (task and method and backbone):
            raise ValueError("give a started run, or task, method and backbone to start one")
        self.run = run
        self._init = {
            "task": task,
            "method": method,
            "backbone": backbone,
            "tags": tags,
            "description": description,
            "visibility": visibility,
            **init_options,
        }
        self._config = dict(config) if config is not None else None
        self._seed = seed
        self._score_map = dict(score_map or {})
        self._finish = finish_on_train_end
        self._last_eval: dict[str, float] = {}
        self._skipped_keys: set[str] = set()

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        if self.run is not None or not state.is_world_process_zero:
            return
        config = self._config
        if config is None:
            config = {name: getattr(args, name) for name in CONFIG_ARGUMENTS}
            config = {
                k: (v if isinstance(v, int | float | str) else str(v)) for k, v in config.items()
            }
        self.run = podium.init(
            config=config,
            seed=self._seed if self._seed is not None else int(args.seed),
            **self._init,
        )

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.run is None or not state.is_world_process_zero or not logs:
            return
        metrics: dict[str, float] = {}
        for key, raw in logs.items():
            value = _number(raw)
            if value is None:
                continue
            try:
                check_metric_key(key)
            except ValueError as problem:
                if key not in self._skipped_keys:
                    self._skipped_keys.add(key)
                    logger.warning("podium: not logging %s", problem)
                continue
            metrics[key] = value
        if metrics:
            self.run.log(metrics, step=state.global_step)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if metrics:
            self._last_eval = {k: v for k, v in metrics.items() if _number(v) is not None}

    def scores(self) -> dict[str, float]:
        """The last evaluation's metrics as the task's scores; empty unless every metric of
        the task was evaluated (a partial set would be refused)."""
        if self.run is None:
            return {}
        wanted = self.run.task_metrics
        if not wanted:
            if self._last_eval:
                logger.warning(
                    "podium: the server has not been reached, so the task's metrics are "
                    "unknown; the run is finished without scores"
                )
            return {}
        found = {}
        for metric in wanted:
            source = self._score_map.get(metric, f"eval_{metric}")
            if source in self._last_eval:
                found[metric] = float(self._last_eval[source])
        missing = sorted(set(wanted) - set(found))
        if missing:
            if self._last_eval:
                logger.warning(
                    "podium: the last evaluation has no %s (looked for %s); the run is "
                    "finished without scores. Map Trainer's metric names with score_map.",
                    ", ".join(missing),
                    ", ".join(self._score_map.get(m, f"eval_{m}") for m in missing),
                )
            return {}
        return found

    def on_train_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        if self.run is None or not self._finish or self.run.finished:
            return
        self.run.finish(scores=self.scores())
