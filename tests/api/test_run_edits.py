"""Owner edits, withdrawal and staff review of runs, each recorded in the run's audit trail,
and what they do to leaderboards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from catalog.models import Suite, Task
from tests.api.conftest import Catalog, assert_field_error, published_suite, record_run
from tests.factories import BackboneFactory, MethodFactory, UserFactory
from tests.published import BERT_LARGE_GLUE
from tracking.models import AuditEvent, ReviewStatus, Run, Visibility
from tracking.services import run_create_external

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs/"
TASK_BOARD = "/api/v1/tasks/bench/sst/leaderboard/"


def url(run: Run, action: str = "") -> str:
    return f"{RUNS}{run.uuid}/{action + '/' if action else ''}"


def board_methods(client: APIClient, query: str = "") -> list[str]:
    response = client.get(TASK_BOARD + query)
    assert response.status_code == 200, response.content
    return [row["method"] for row in response.json()["rows"]]


def listed(client: APIClient) -> set[str]:
    response = client.get(RUNS)
    assert response.status_code == 200, response.content
    return {row["uuid"] for row in response.json()["results"]}


# --- PATCH /runs/<uuid>/ ---------------------------------------------------------------


def test_the_owner_edits_description_tags_and_visibility_and_each_change_is_audited(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    run = record_run(small_catalog, alice, description="draft", tags=["old"])
    client = client_for(alice)
    response = client.patch(
        url(run),
        {"description": "final numbers", "tags": ["Paper", "v2"], "visibility": "private"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["description"] == "final numbers"
    assert sorted(body["tags"]) == ["paper", "v2"]
    assert body["visibility"] == "private"

    audit = client.get(url(run, "audit"))
    assert audit.status_code == 200
    (event,) = audit.json()["results"]
    assert event["actor"] == "alice"
    assert event["action"] == "edit"
    assert event["changes"] == {
        "description": {"before": "draft", "after": "final numbers"},
        "visibility": {"before": "public", "after": "private"},
        "tags": {"before": ["old"], "after": ["paper", "v2"]},
    }
    assert event["at"]

    # A request that changes nothing records nothing.
    assert (
        client.patch(url(run), {"description": "final numbers"}, format="json").status_code == 200
    )
    assert AuditEvent.objects.filter(run=run).count() == 1


def test_only_the_owner_may_edit_and_a_refused_edit_changes_nothing(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    bob: User,
    small_catalog: Catalog,
) -> None:
    public = record_run(small_catalog, alice, description="mine")
    private = record_run(small_catalog, alice, visibility=Visibility.PRIVATE)
    assert api.patch(url(public), {"description": "x"}, format="json").status_code == 401
    refused = client_for(bob).patch(url(public), {"description": "x"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["errors"] == {"non_field_errors": ["Only a run's owner can edit it."]}
    assert (
        client_for(bob).patch(url(private), {"description": "x"}, format="json").status_code == 404
    )
    public.refresh_from_db()
    assert public.description == "mine"
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({}, "non_field_errors", "at least one of description, tags or visibility"),
        ({"visibility": "secret"}, "visibility", "not a valid choice"),
        ({"tags": ["not a slug"]}, "tags.0", "letters"),
        ({"description": "x" * 10_001}, "description", "10000"),
    ],
)
def test_a_bad_edit_is_a_400_naming_the_field(
    client_for: Callable[[User], APIClient],
    alice: User,
    small_catalog: Catalog,
    body: dict[str, Any],
    field: str,
    says: str,
) -> None:
    run = record_run(small_catalog, alice)
    assert_field_error(client_for(alice).patch(url(run), body, format="json"), field, says)
    assert not AuditEvent.objects.exists()


# --- Withdrawal --------------------------------------------------------------------------


def test_a_withdrawn_run_leaves_every_leaderboard_but_is_kept(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    bob: User,
    small_catalog: Catalog,
) -> None:
    run = record_run(small_catalog, alice)
    record_run(
        small_catalog,
        bob,
        method=MethodFactory.create(key="other"),
        scores={"accuracy": 0.6, "loss": 1.0},
    )
    assert board_methods(api) == ["other", "paper"]
    owner = client_for(alice)
    response = owner.post(url(run, "withdraw"), {"reason": "bug in eval"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["withdrawn_at"] is not None

    assert board_methods(api) == ["other"]
    assert board_methods(owner, "?view=personal") == ["other"]  # gone from the owner's too
    assert str(run.uuid) not in listed(client_for(bob))
    assert api.get(url(run)).status_code == 404
    # Kept: its owner still sees it, with its scores, and the reason is in its trail.
    kept = owner.get(url(run))
    assert kept.status_code == 200
    assert len(kept.json()["scores"]) == 2
    (event,) = owner.get(url(run, "audit")).json()["results"]
    assert (event["action"], event["reason"]) == ("withdraw", "bug in eval")
    assert Run.objects.filter(pk=run.pk).exists()


def test_a_withdrawn_run_cannot_change_any_more(
    client_for: Callable[[User], APIClient], alice: User, small_catalog: Catalog
) -> None:
    run = record_run(small_catalog, alice)
    owner = client_for(alice)
    assert owner.post(url(run, "withdraw")).status_code == 200
    again = owner.post(url(run, "withdraw"))
    assert again.status_code == 409
    assert "withdrawn on" in again.json()["errors"]["non_field_errors"][0]
    edit = owner.patch(url(run), {"visibility": "private"}, format="json")
    assert edit.status_code == 409
    run.refresh_from_db()
    assert run.visibility == Visibility.PUBLIC
    assert AuditEvent.objects.filter(run=run).count() == 1


def test_others_cannot_withdraw_a_run_but_staff_can(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    bob: User,
    staff: User,
    small_catalog: Catalog,
) -> None:
    run = record_run(small_catalog, alice)
    assert api.post(url(run, "withdraw")).status_code == 401
    assert client_for(bob).post(url(run, "withdraw")).status_code == 403
    run.refresh_from_db()
    assert run.withdrawn_at is None
    response = client_for(staff).post(url(run, "withdraw"), {"reason": "spam"}, format="json")
    assert response.status_code == 200
    event = AuditEvent.objects.get(run=run)
    assert (event.actor, event.actor_username, event.reason) == (staff, "curator", "spam")


# --- Approval ------------------------------------------------------------------------------


def test_a_run_on_a_suite_requiring_approval_waits_for_staff(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    bob: User,
    staff: User,
    small_catalog: Catalog,
) -> None:
    published_suite(key="moderated", tasks=[small_catalog.task], requires_approval=True)
    run = record_run(small_catalog, alice)
    free = record_run(small_catalog, bob, task=small_catalog.other_task, scores={"accuracy": 1})
    assert run.review_status == ReviewStatus.PENDING
    assert free.review_status == ReviewStatus.NOT_REQUIRED

    assert board_methods(api) == []
    assert str(run.uuid) not in listed(client_for(bob))
    assert board_methods(client_for(alice), "?view=personal") == ["paper"]  # the owner sees it
    queue = client_for(staff).get("/api/v1/reviews/")
    assert [r["uuid"] for r in queue.json()["results"]] == [str(run.uuid)]

    reviewer = client_for(staff)
    approved = reviewer.post(url(run, "review"), {"decision": "approve"}, format="json")
    assert approved.status_code == 200, approved.content
    assert approved.json()["review_status"] == "approved"
    assert board_methods(api) == ["paper"]
    assert client_for(staff).get("/api/v1/reviews/").json()["results"] == []

    again = reviewer.post(url(run, "review"), {"decision": "approve"}, format="json")
    assert again.status_code == 409
    rejected = reviewer.post(
        url(run, "review"), {"decision": "reject", "reason": "test-set leak"}, format="json"
    )
    assert rejected.status_code == 200
    assert board_methods(api) == []
    trail = client_for(alice).get(url(run, "audit")).json()["results"]
    assert [(e["action"], e["actor"], e["changes"]["review_status"]["after"]) for e in trail] == [
        ("approve", "curator", "approved"),
        ("reject", "curator", "rejected"),
    ]
    assert trail[1]["reason"] == "test-set leak"
    assert (
        reviewer.post(url(free, "review"), {"decision": "approve"}, format="json").status_code
        == 409
    )


def test_only_staff_review_runs(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    small_catalog: Catalog,
) -> None:
    published_suite(key="moderated", tasks=[small_catalog.task], requires_approval=True)
    run = record_run(small_catalog, alice)
    body = {"decision": "approve"}
    assert api.post(url(run, "review"), body, format="json").status_code == 401
    assert client_for(alice).post(url(run, "review"), body, format="json").status_code == 403
    assert client_for(alice).get("/api/v1/reviews/").status_code == 403
    run.refresh_from_db()
    assert run.review_status == ReviewStatus.PENDING


def test_a_bad_review_decision_is_a_400(
    client_for: Callable[[User], APIClient], staff: User, alice: User, small_catalog: Catalog
) -> None:
    published_suite(key="moderated", tasks=[small_catalog.task], requires_approval=True)
    run = record_run(small_catalog, alice)
    response = client_for(staff).post(url(run, "review"), {"decision": "maybe"}, format="json")
    assert_field_error(response, "decision", "not a valid choice")


def test_the_suite_board_hides_runs_awaiting_approval(
    api: APIClient, alice: User, client_for: Callable[[User], APIClient], staff: User
) -> None:
    call_command("load_catalog", verbosity=0)
    Suite.objects.filter(key="glue").update(requires_approval=True)
    method = MethodFactory.create(key="ft", name="Fine-tuning", executable=False)
    backbone = BackboneFactory.create(key="bert-large")
    runs = [
        run_create_external(
            owner=alice,
            method=method,
            backbone=backbone,
            task=Task.objects.get(benchmark__key="glue", key=key, is_current=True),
            config={},
            seed=0,
            scores=scores,
        )
        for key, scores in BERT_LARGE_GLUE.items()
    ]
    board = "/api/v1/suites/glue/leaderboard/"
    assert api.get(board).json()["rows"] == []
    for run in runs:
        response = client_for(staff).post(
            url(run, "review"), {"decision": "approve"}, format="json"
        )
        assert response.status_code == 200
    (row,) = api.get(board).json()["rows"]
    assert row["method"] == "ft"
    assert row["rank"] == 1
    assert row["official"]["value"] == pytest.approx(80.5, abs=0.05)


# --- Audit trail access ----------------------------------------------------------------


def test_the_audit_trail_is_for_the_owner_and_staff_only(
    api: APIClient,
    client_for: Callable[[User], APIClient],
    alice: User,
    bob: User,
    staff: User,
    small_catalog: Catalog,
) -> None:
    run = record_run(small_catalog, alice)
    private = record_run(small_catalog, alice, visibility=Visibility.PRIVATE)
    client_for(alice).patch(url(private), {"description": "hidden"}, format="json")
    assert api.get(url(run, "audit")).status_code == 401
    assert client_for(bob).get(url(run, "audit")).status_code == 403
    assert client_for(bob).get(url(private, "audit")).status_code == 404
    staff_view = client_for(staff).get(url(private, "audit"))
    assert staff_view.status_code == 200
    assert [e["action"] for e in staff_view.json()["results"]] == ["edit"]


# --- The admin goes through the same services --------------------------------------------


def test_admin_edits_and_actions_are_audited(alice: User, small_catalog: Catalog) -> None:
    admin_user = UserFactory.create(username="root", is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(admin_user)
    published_suite(key="moderated", tasks=[small_catalog.task], requires_approval=True)
    run = record_run(small_catalog, alice, description="before")
    change_url = f"/admin/tracking/run/{run.pk}/change/"
    page = browser.get(change_url)
    assert page.status_code == 200
    form = {
        "visibility": "public",
        "description": "after",
        "tags": [],
        **{
            f"{prefix}-{key}": value
            for prefix in ("scores", "flags", "transitions", "audit_events")
            for key, value in {"TOTAL_FORMS": "0", "INITIAL_FORMS": "0"}.items()
        },
    }
    response = browser.post(change_url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    run.refresh_from_db()
    assert run.description == "after"
    edit = AuditEvent.objects.get(run=run, action="edit")
    assert edit.actor == admin_user
    assert edit.changes == {"description": {"before": "before", "after": "after"}}

    response = browser.post(
        "/admin/tracking/run/", {"action": "approve", "_selected_action": [run.pk]}
    )
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.review_status == ReviewStatus.APPROVED
    assert AuditEvent.objects.filter(run=run, action="approve", actor=admin_user).exists()
