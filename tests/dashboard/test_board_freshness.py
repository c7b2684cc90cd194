"""Cached leaderboards follow every change at once: the API answer and the suite page are
served from the cache under a key made of the suite's leaderboard stamps (BoardStamp),
and each write path that changes what a board shows moves the stamp in its transaction.

Each test warms the cache first (the same request answered once), then changes something
through the real write path and asks again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from api.services import token_create
from catalog.models import Backbone, Method, Suite, Task
from catalog.services import suite_version_create_next, suite_version_publish
from tests.dashboard.pages import board_systems
from tests.factories import BackboneFactory, MethodFactory, UserFactory
from tests.published import BERT_LARGE_GLUE
from tracking.jobs import runs_request
from tracking.models import BoardStamp, Flag, FlagKind, Run, Score, Visibility
from tracking.services import (
    run_create_external,
    run_review,
    run_update,
    run_withdraw,
)
from tracking.tracked import tracked_run_finish, tracked_run_start

pytestmark = pytest.mark.django_db

BOARD = "/api/v1/suites/glue/leaderboard/?page_size=1000"
PAGE = "/suites/glue/"

Systems = Callable[[], list[str]]


@pytest.fixture
def alice(catalog: None) -> User:
    return UserFactory.create(username="alice")


@pytest.fixture
def backbone(catalog: None) -> Backbone:
    return BackboneFactory.create(key="bert-large", name="BERT-large")


def submit(
    owner: User, name: str, backbone: Backbone, *, shift: float = 0.0, **kwargs: object
) -> list[Run]:
    """A system with every GLUE task, through the external-run service."""
    method = MethodFactory.create(key=name.lower(), name=name, executable=False)
    return [
        run_create_external(
            owner=owner,
            method=method,
            backbone=backbone,
            task=Task.objects.get(benchmark__key="glue", key=key, is_current=True),
            config={},
            seed=0,
            scores={metric: value + shift for metric, value in scores.items()},
            **kwargs,  # type: ignore[arg-type]
        )
        for key, scores in BERT_LARGE_GLUE.items()
    ]


def api_systems(client: APIClient, query: str = "") -> list[str]:
    response = client.get(BOARD + query)
    assert response.status_code == 200, response.content
    return [row["method_name"] for row in response.json()["rows"]]


@pytest.fixture(params=["api", "page"])
def systems(request: pytest.FixtureRequest) -> Iterator[Systems]:
    """The board's systems (method names, in order) as an anonymous visitor gets them,
    from the API or from the suite page."""
    if request.param == "api":
        api = APIClient()
        yield lambda: api_systems(api)
    else:
        client = Client()

        def from_page() -> list[str]:
            response = client.get(PAGE)
            assert response.status_code == 200
            page = response.content.decode()
            return [] if "No public results on this suite yet" in page else board_systems(page)

        yield from_page


def test_a_new_run_shows_at_once(alice: User, backbone: Backbone, systems: Systems) -> None:
    submit(alice, "Base", backbone)
    assert systems() == ["Base"]  # now cached
    submit(alice, "Better", backbone, shift=0.01)
    assert systems() == ["Better", "Base"]


def test_a_tracked_run_shows_when_it_succeeds(
    alice: User, backbone: Backbone, systems: Systems
) -> None:
    # Its scores are bulk-created (no signal) before the transition to succeeded.
    submit(alice, "Base", backbone)
    method = MethodFactory.create(key="tracked", name="Tracked", executable=False)
    sst2 = Task.objects.get(benchmark__key="glue", key="sst2", is_current=True)
    run = tracked_run_start(
        owner=alice, method=method, backbone=backbone, task=sst2, config={}, seed=0
    )
    assert systems() == ["Base"]
    tracked_run_finish(
        run_id=run.pk, user=alice, status="succeeded", scores=BERT_LARGE_GLUE["sst2"]
    )
    assert systems() == ["Base", "Tracked"]  # incomplete: after the complete one


def test_visibility_withdrawal_and_deletion_show_at_once(
    alice: User, backbone: Backbone, systems: Systems
) -> None:
    submit(alice, "Base", backbone)
    other = submit(alice, "Other", backbone, shift=-0.01)
    assert systems() == ["Base", "Other"]
    for run in other:
        run_update(run_id=run.pk, actor=alice, visibility=Visibility.PRIVATE)
    assert systems() == ["Base"]
    for run in other:
        run_update(run_id=run.pk, actor=alice, visibility=Visibility.PUBLIC)
    assert systems() == ["Base", "Other"]
    for run in other:
        run_withdraw(run_id=run.pk, actor=alice)
    assert systems() == ["Base"]
    third = submit(alice, "Third", backbone, shift=-0.02)
    assert systems() == ["Base", "Third"]
    for run in third:
        run.delete()  # as the admin deletes: the scores go by cascade
    assert systems() == ["Base"]


def test_an_approval_shows_at_once(alice: User, backbone: Backbone, systems: Systems) -> None:
    Suite.objects.filter(key="glue").update(requires_approval=True)
    staff = UserFactory.create(username="curator", is_staff=True)
    pending = submit(alice, "Pending", backbone)
    assert systems() == []
    for run in pending:
        run_review(run_id=run.pk, actor=staff, approve=True)
    assert systems() == ["Pending"]
    run_review(run_id=pending[0].pk, actor=staff, approve=False)
    for run in pending[1:]:
        run_review(run_id=run.pk, actor=staff, approve=False)
    assert systems() == []


def test_a_changed_score_and_a_renamed_method_show_at_once(
    alice: User, backbone: Backbone, systems: Systems
) -> None:
    submit(alice, "Base", backbone)
    weaker = submit(alice, "Weaker", backbone, shift=-0.01)
    assert systems() == ["Base", "Weaker"]
    for run in weaker:  # as through the admin or a shell: a model save
        for score in Score.objects.filter(run=run):
            score.value += 0.02
            score.save()
    assert systems() == ["Weaker", "Base"]
    method = Method.objects.get(key="weaker")
    method.name = "Renamed"
    method.save()
    assert systems() == ["Renamed", "Base"]


def test_a_new_suite_version_shows_at_once(alice: User, backbone: Backbone) -> None:
    submit(alice, "Base", backbone)
    api = APIClient()
    first = api.get(BOARD).json()
    suite = Suite.objects.get(key="glue")
    draft = suite_version_create_next(suite=suite)
    cola = draft.items.get(task__key="cola")
    cola.weight = 3.0
    cola.save()
    suite_version_publish(suite_version=draft)
    second = api.get(BOARD).json()
    assert second["version"] == first["version"] + 1
    assert {c["task"]: c["weight"] for c in second["columns"]}["glue/cola"] == 3.0


def test_flags_show_change_and_go_at_once(alice: User, backbone: Backbone) -> None:
    runs = submit(alice, "Base", backbone)
    client = Client()

    def page() -> str:
        return client.get(PAGE).content.decode()

    assert "⚑ flagged" not in page()
    flag = Flag.objects.create(run=runs[0], kind=FlagKind.SUSPICIOUS, reason="first reason")
    assert "first reason" in page()
    flag.reason = "second reason"
    flag.save()
    shown = page()
    assert "second reason" in shown
    assert "first reason" not in shown
    flag.delete()
    assert "⚑ flagged" not in page()


def test_the_personal_view_follows_its_owners_private_runs(alice: User, backbone: Backbone) -> None:
    submit(alice, "Public", backbone)
    mine = APIClient()
    mine.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=alice, name='t').key}")
    anonymous = APIClient()
    assert api_systems(mine, "&view=personal") == ["Public"]
    assert api_systems(anonymous) == ["Public"]
    secret = submit(alice, "Secret", backbone, shift=0.01, visibility=Visibility.PRIVATE)
    assert api_systems(mine, "&view=personal") == ["Secret", "Public"]
    assert api_systems(anonymous) == ["Public"]  # a private run never shows publicly
    for run in secret:
        run_withdraw(run_id=run.pk, actor=alice)
    assert api_systems(mine, "&view=personal") == ["Public"]


def revisions() -> dict[int, int]:
    return dict(BoardStamp.objects.values_list("task_id", "revision"))


def test_queued_runs_leave_the_stamps_alone(alice: User, backbone: Backbone) -> None:
    # A run is on a board only once succeeded: requesting jobs invalidates nothing (and
    # takes no stamp locks, which concurrent requests would otherwise queue on).
    submit(alice, "Base", backbone)
    before = revisions()
    method = Method.objects.get(key="lora")  # registered by load_catalog
    sst2 = Task.objects.get(benchmark__key="glue", key="sst2", is_current=True)
    # (The test's transaction never commits, so the jobs are not dispatched.)
    runs_request(owner=alice, method=method, backbone=backbone, config={}, seeds=[0, 1], task=sst2)
    assert revisions() == before


def test_a_stamp_moves_with_its_transaction(alice: User, backbone: Backbone) -> None:
    submit(alice, "Base", backbone)
    before = revisions()

    moved: list[dict[int, int]] = []

    def abandoned_submission() -> None:
        with transaction.atomic():
            submit(alice, "Rolled back", backbone)
            moved.append(revisions())
            raise RuntimeError("abandoned")

    with pytest.raises(RuntimeError, match="abandoned"):
        abandoned_submission()
    assert moved
    assert moved[0] != before
    assert revisions() == before
    assert api_systems(APIClient()) == ["Base"]
