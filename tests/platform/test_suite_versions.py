"""Suite versions: a published version is immutable; a change makes a new version."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from catalog.models import ImmutableSuiteVersion, SuiteTask, SuiteVersionStatus
from catalog.services import suite_version_create_next, suite_version_publish
from tests.factories import SuiteFactory, SuiteTaskFactory, SuiteVersionFactory, TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def published_item() -> SuiteTask:
    item = SuiteTaskFactory.create(weight=2.0)
    suite_version_publish(suite_version=item.suite_version)
    item.suite_version.refresh_from_db()
    return item


def test_publish_freezes_the_version(published_item: SuiteTask) -> None:
    version = published_item.suite_version
    assert version.status == SuiteVersionStatus.PUBLISHED
    assert version.published_at is not None


def test_published_version_fields_cannot_change(published_item: SuiteTask) -> None:
    version = published_item.suite_version
    version.notes = "edited"
    with pytest.raises(ImmutableSuiteVersion, match="create a new version"):
        version.save()
    version.refresh_from_db()
    assert version.notes == ""


def test_published_version_cannot_be_deleted(published_item: SuiteTask) -> None:
    with pytest.raises(ImmutableSuiteVersion):
        published_item.suite_version.delete()


def test_published_version_tasks_cannot_change(published_item: SuiteTask) -> None:
    published_item.weight = 5.0
    with pytest.raises(ImmutableSuiteVersion):
        published_item.save()
    with pytest.raises(ImmutableSuiteVersion):
        published_item.delete()
    with pytest.raises(ImmutableSuiteVersion):
        SuiteTask.objects.create(
            suite_version=published_item.suite_version, task=TaskFactory.create()
        )
    assert SuiteTask.objects.get(pk=published_item.pk).weight == 2.0


def test_publishing_twice_or_empty_is_refused(published_item: SuiteTask) -> None:
    with pytest.raises(ImmutableSuiteVersion, match="already published"):
        suite_version_publish(suite_version=published_item.suite_version)
    with pytest.raises(ValueError, match="no tasks"):
        suite_version_publish(suite_version=SuiteVersionFactory.create())


def test_a_change_makes_a_new_version(published_item: SuiteTask) -> None:
    old = published_item.suite_version
    draft = suite_version_create_next(suite=old.suite)
    assert draft.number == old.number + 1
    assert draft.status == SuiteVersionStatus.DRAFT
    copied = draft.items.get()
    assert (copied.task_id, copied.weight) == (published_item.task_id, 2.0)
    copied.weight = 3.0
    copied.save()
    SuiteTask.objects.create(suite_version=draft, task=TaskFactory.create(), position=1)
    suite_version_publish(suite_version=draft)
    assert old.items.get().weight == 2.0
    assert draft.items.count() == 2
    third = suite_version_create_next(suite=old.suite)
    assert third.number == old.number + 2
    with pytest.raises(ValueError, match="still a draft"):
        suite_version_create_next(suite=old.suite)


def test_draft_versions_stay_editable() -> None:
    item = SuiteTaskFactory.create()
    item.weight = 0.5
    item.save()
    item.suite_version.notes = "still drafting"
    item.suite_version.save()
    item.delete()


def test_version_numbers_are_unique_per_suite() -> None:
    suite = SuiteFactory.create()
    SuiteVersionFactory.create(suite=suite, number=1)
    SuiteVersionFactory.create(number=1)  # same number, another suite: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        SuiteVersionFactory.create(suite=suite, number=1)


def test_a_task_appears_once_per_version_with_non_negative_weight() -> None:
    item = SuiteTaskFactory.create()
    with pytest.raises(IntegrityError), transaction.atomic():
        SuiteTask.objects.create(suite_version=item.suite_version, task=item.task)
    with pytest.raises(IntegrityError), transaction.atomic():
        SuiteTaskFactory.create(weight=-1.0)
