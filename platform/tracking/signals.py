"""Leaderboard stamps follow every model save and delete that changes what a board shows.

Services, the admin, cascades and the shell all save through the models, so a receiver
here cannot be forgotten by a new write path. Writes that bypass signals (bulk_create,
queryset.update) call tracking.services.board_stamps_bump themselves; today those are
scores bulk-created for a run that is not yet succeeded (its transition to succeeded is
a save, and bumps) and run_create_external, which bumps after its scores.

Each receiver runs in the transaction of the save or delete that sent it (under
autocommit right after it): never before the change is visible.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from catalog.models import Backbone, Method, Task, TaskMetric
from tracking.models import Flag, Run, Score
from tracking.services import board_stamps_bump, board_stamps_bump_all, board_stamps_bump_run
from tracking.status import RunStatus


@receiver(post_save, sender=Run, dispatch_uid="podium-stamp-run-saved")
@receiver(post_delete, sender=Run, dispatch_uid="podium-stamp-run-deleted")
def _run_changed(sender: type[Run], instance: Run, **kwargs: Any) -> None:
    board_stamps_bump_run(run=instance)


def _run_task_if_succeeded(run_id: int) -> list[int]:
    return list(
        Run.objects.filter(pk=run_id, status=RunStatus.SUCCEEDED).values_list("task_id", flat=True)
    )


@receiver(post_save, sender=Score, dispatch_uid="podium-stamp-score-saved")
@receiver(post_delete, sender=Score, dispatch_uid="podium-stamp-score-deleted")
def _score_changed(sender: type[Score], instance: Score, **kwargs: Any) -> None:
    board_stamps_bump(task_ids=_run_task_if_succeeded(instance.run_id))


@receiver(post_save, sender=Flag, dispatch_uid="podium-stamp-flag-saved")
@receiver(post_delete, sender=Flag, dispatch_uid="podium-stamp-flag-deleted")
def _flag_changed(sender: type[Flag], instance: Flag, **kwargs: Any) -> None:
    # Flags are shown beside the systems on the suite page.
    board_stamps_bump(task_ids=_run_task_if_succeeded(instance.run_id))


@receiver(post_save, sender=Task, dispatch_uid="podium-stamp-task-saved")
@receiver(post_save, sender=TaskMetric, dispatch_uid="podium-stamp-metric-saved")
def _task_changed(
    sender: type[Task | TaskMetric], instance: Task | TaskMetric, **kwargs: Any
) -> None:
    # Column headers: the task's name, its metrics' names and directions.
    board_stamps_bump(task_ids=[instance.pk if isinstance(instance, Task) else instance.task_id])


@receiver(post_save, sender=Method, dispatch_uid="podium-stamp-method-saved")
@receiver(post_save, sender=Backbone, dispatch_uid="podium-stamp-backbone-saved")
def _name_changed(
    sender: type[Method | Backbone], instance: Method | Backbone, **kwargs: Any
) -> None:
    # A system's label names its method and backbone, on every board they are on.
    if not kwargs.get("created"):
        board_stamps_bump_all()
