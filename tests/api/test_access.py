"""Access: another user's private runs, hidden gold labels and tokens are out of reach
through every endpoint and page.

Every route of the URL resolver (the admin's aside, tested below by its own rule) must have
an entry in CASES, so a new endpoint fails here until someone says how it is protected:
- PRIVATE routes name one of alice's private things; for anonymous callers and for bob,
  every method must be refused exactly as for a thing that does not exist (so not even its
  existence shows), and nothing of alice's may change;
- READ routes are read with filters and formats that could pull private rows in (`owner=`,
  `status=`, search, `view=personal`, exports, compare lists); no answer may contain any of
  alice's secrets, which `test_the_secrets_are_visible_to_their_owner` shows are findable.
"""

from __future__ import annotations

import hashlib
import json
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.sites import site as admin_site
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from pytest_django.fixtures import Settings
from rest_framework.authentication import SessionAuthentication
from rest_framework.test import APIClient

from api.models import ApiToken
from api.services import token_create
from catalog.models import Backbone, GoldSplit, Method, Suite, Task
from catalog.selectors import suite_version_latest
from dashboard.selectors import suite_leaderboard
from dashboard.snapshots import snapshot_freeze
from runners.spec import InlineArtifact
from tests.factories import UserFactory
from tracking.artifacts import artifact_store_inline
from tracking.jobs import runs_request
from tracking.models import (
    Artifact,
    AuditEvent,
    Job,
    LeaderboardSnapshot,
    MetricPoint,
    Run,
    Visibility,
)
from tracking.rescoring import gold_split_upload
from tracking.services import run_create_external

pytestmark = pytest.mark.django_db

DESCRIPTION_MARKER = "zqprivatedescriptionmarker"
TAG_MARKER = "zqprivatetagmarker"
CONFIG_MARKER = "zqprivateconfigmarker"
METRIC_MARKER = "zqprivatemetricmarker"
ARTIFACT_MARKER = "zqprivateartifactmarker"
GOLD_MARKER = "zqgoldlabelmarker"

PRIVATE = "private"
READ = "read"
STATIC = "static"  # read once: no user data at all

Kwargs = Callable[["Secrets"], dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Secrets:
    alice: User
    bob: User
    private_run: Run  # scored, with tags, description, metrics and an artifact
    queued_run: Run  # a private job waiting in the queue
    artifact: Artifact
    alice_token: ApiToken
    alice_key: str
    snapshot: LeaderboardSnapshot

    @property
    def markers(self) -> list[str]:
        return [
            DESCRIPTION_MARKER,
            TAG_MARKER,
            CONFIG_MARKER,
            METRIC_MARKER,
            ARTIFACT_MARKER,
            GOLD_MARKER,
            str(self.private_run.uuid),
            str(self.queued_run.uuid),
            self.private_run.config_hash,
            self.private_run.config_hash[:7],  # as in a system's label
            self.alice_key,
            self.alice_token.prefix,
        ]

    def leaks(self, content: bytes, *, asked: str = "") -> list[str]:
        """The markers in `content`, but those the request itself named (a page may echo
        its query): a leak of that thing still shows through its other markers."""
        text = content.decode("utf-8", errors="replace")
        return [marker for marker in self.markers if marker in text and marker not in asked]


@pytest.fixture
def secrets(settings: Settings, tmp_path: Path) -> Secrets:
    settings.PODIUM_PRIVATE_DIR = tmp_path / "private"
    call_command("load_catalog", verbosity=0)
    alice = UserFactory.create(username="alice")
    bob = UserFactory.create(username="bob")
    sst2 = Task.objects.get(benchmark__key="glue", key="sst2", is_current=True)
    paper = Method.objects.create(key="paper", name="Paper", executable=False)
    minilm = Backbone.objects.create(key="minilm", name="MiniLM", source="hub", hub_id="o/m")
    # bob's public run, so that boards and lists have something to show.
    run_create_external(
        owner=bob, method=paper, backbone=minilm, task=sst2, config={"lr": 1}, seed=1,
        scores={"accuracy": 0.8},
    )  # fmt: skip
    private_run = run_create_external(
        owner=alice,
        method=paper,
        backbone=minilm,
        task=sst2,
        config={"note": CONFIG_MARKER},
        seed=7,
        scores={"accuracy": 0.95},
        visibility=Visibility.PRIVATE,
        tags=[TAG_MARKER],
        description=DESCRIPTION_MARKER,
    )
    MetricPoint.objects.create(
        run=private_run, key=METRIC_MARKER, step=1, value=0.5, recorded_at=timezone.now()
    )
    artifact = artifact_store_inline(
        run=private_run,
        artifact=InlineArtifact(
            name="notes.txt", kind="other", content=ARTIFACT_MARKER, sha256=_sha(ARTIFACT_MARKER)
        ),
    )
    (queued_run,) = runs_request(
        owner=alice,
        method=Method.objects.get(key="majority"),
        backbone=minilm,
        config={},
        seeds=[11],
        task=sst2,
        visibility=Visibility.PRIVATE,
    )
    ax = Task.objects.get(benchmark__key="glue", key="ax", is_current=True)
    gold = "".join(
        json.dumps({"premise": f"{GOLD_MARKER} {i}", "hypothesis": "h", "label": i % 3, "idx": i})
        + "\n"
        for i in range(6)
    )
    gold_split_upload(task=ax, split="test", content=gold.encode(), uploaded_by=None)
    version = suite_version_latest(suite=Suite.objects.get(key="glue"))
    assert version is not None
    board = suite_leaderboard(suite_version=version, viewer=None, rule="official", missing="")
    created = token_create(user=alice, name="alice's")
    return Secrets(
        alice=alice,
        bob=bob,
        private_run=private_run,
        queued_run=queued_run,
        artifact=artifact,
        alice_token=created.token,
        alice_key=created.key,
        snapshot=snapshot_freeze(board=board, suite_version=version, created_by=bob),
    )


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def body(response: Any) -> bytes:
    """A response's bytes, streamed (a download) or not."""
    return bytes(response.getvalue())


def none(s: Secrets) -> dict[str, Any]:
    return {}


def private_run(s: Secrets) -> dict[str, Any]:
    return {"uuid": s.private_run.uuid}


def glue(s: Secrets) -> dict[str, Any]:
    return {"key": "glue"}


def snapshot(s: Secrets) -> dict[str, Any]:
    return {"uuid": s.snapshot.uuid}


CASES: dict[str, tuple[str, Kwargs]] = {
    "healthz": (STATIC, none),
    "signup": (READ, none),
    "login": (READ, none),
    "logout": (READ, none),
    "password_reset": (READ, none),
    "password_reset_done": (READ, none),
    "password_reset_confirm": (
        READ,
        lambda s: {"uidb64": urlsafe_base64_encode(force_bytes(s.alice.pk)), "token": "x-y"},
    ),
    "password_reset_complete": (READ, none),
    "api:tokens": (READ, none),
    "api:token": (PRIVATE, lambda s: {"pk": s.alice_token.pk}),
    "api:benchmarks": (READ, none),
    "api:benchmark": (READ, glue),
    "api:suites": (READ, none),
    "api:suite": (READ, glue),
    "api:suite-leaderboard": (READ, glue),
    "api:suite-snapshots": (READ, glue),
    "api:snapshot": (READ, snapshot),
    "api:task-leaderboard": (READ, lambda s: {"benchmark": "glue", "task": "sst2"}),
    "api:methods": (READ, none),
    "api:backbones": (READ, none),
    "api:runs": (READ, none),
    "api:run": (PRIVATE, private_run),
    "api:run-cancel": (PRIVATE, lambda s: {"uuid": s.queued_run.uuid}),
    "api:run-withdraw": (PRIVATE, private_run),
    "api:run-review": (PRIVATE, private_run),
    "api:run-audit": (PRIVATE, private_run),
    "api:reviews": (READ, none),
    "api:run-track": (READ, none),
    "api:run-metrics": (PRIVATE, private_run),
    "api:run-finish": (PRIVATE, private_run),
    "api:run-progress": (PRIVATE, private_run),
    "api:run-artifacts": (PRIVATE, private_run),
    "api:run-artifact": (PRIVATE, lambda s: {"uuid": s.private_run.uuid, "name": "notes.txt"}),
    "api:jobs": (READ, none),
    "api:job-queue": (READ, none),
    "api:signup": (READ, none),
    "api:password-reset": (READ, none),
    "api:password-reset-confirm": (READ, none),
    "api:me": (READ, none),
    "api-schema": (STATIC, none),
    "api-docs": (STATIC, none),
    "dashboard:home": (READ, none),
    "dashboard:benchmark": (READ, glue),
    "dashboard:task": (READ, lambda s: {"benchmark": "glue", "key": "sst2"}),
    "dashboard:suite": (READ, glue),
    "dashboard:suite-rules": (READ, glue),
    "dashboard:suite-efficiency": (READ, glue),
    "dashboard:suite-freeze": (READ, glue),
    "dashboard:snapshot": (READ, snapshot),
    "dashboard:jobs": (READ, none),
    "dashboard:run": (PRIVATE, private_run),
    "dashboard:run-live": (PRIVATE, private_run),
    "dashboard:run-reproduce": (PRIVATE, private_run),
    "dashboard:compare": (READ, none),
    "dashboard:methods": (READ, none),
    "dashboard:method": (READ, lambda s: {"key": "paper"}),
    "dashboard:backbones": (READ, none),
    "dashboard:backbone": (READ, lambda s: {"key": "minilm"}),
    "dashboard:submit": (READ, none),
    "dashboard:plotly-js": (STATIC, none),
}

# Nonexistent things of the same kinds: a private thing must be refused as these are.
GHOSTS: dict[str, Any] = {"uuid": uuid_module.UUID(int=1), "pk": 999_999, "name": "nothing.txt"}


def routes() -> dict[str, str]:
    """Every named route outside the admin, by name: name -> route."""
    found: dict[str, str] = {}

    def walk(patterns: list[Any], prefix: str, namespace: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if pattern.app_name == "admin":
                    continue
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, route, inner)
            elif isinstance(pattern, URLPattern):
                assert pattern.name, f"route {route!r} has no name: give it one and a case here"
                found[namespace + pattern.name] = route

    walk(get_resolver().url_patterns, "/", "")
    return found


def test_every_route_has_an_access_case() -> None:
    found = set(routes())
    assert not found - set(CASES), f"routes without an access case: {sorted(found - set(CASES))}"
    assert not set(CASES) - found, f"cases of routes that are gone: {sorted(set(CASES) - found)}"


def callers(s: Secrets, path: str) -> dict[str, Client]:
    """Anonymous, and bob: signed in (session) everywhere, by token on the API as well."""
    anonymous = APIClient()
    session = APIClient()
    session.force_login(s.bob)
    found: dict[str, Client] = {"anonymous": anonymous, "bob (session)": session}
    if path.startswith("/api/"):
        token = APIClient()
        token.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=s.bob, name='b').key}")
        found["bob (token)"] = token
    return found


def state(s: Secrets) -> dict[str, Any]:
    """Everything of alice's that a refused request must leave as it was."""
    run = Run.objects.get(pk=s.private_run.pk)
    queued = Run.objects.get(pk=s.queued_run.pk)
    alice = User.objects.get(pk=s.alice.pk)
    return {
        "run": (run.status, run.visibility, run.description, run.withdrawn_at, run.review_status),
        "tags": sorted(run.tags.values_list("name", flat=True)),
        "queued": (queued.status, queued.visibility),
        "token": ApiToken.objects.get(pk=s.alice_token.pk).revoked_at,
        "alice": (alice.password, alice.email, alice.is_active),
        "counts": [
            model.objects.count()
            for model in (Run, Job, MetricPoint, Artifact, AuditEvent, LeaderboardSnapshot)
        ],
    }


def refusal(response: Any) -> tuple[int, str]:
    """What a refusal reveals: its status and, for a redirect, where it leads (the login page,
    with the asked path as its `next`)."""
    return response.status_code, response.get("Location", "").split("?")[0]


@pytest.mark.parametrize("name", sorted(n for n, (kind, _) in CASES.items() if kind == PRIVATE))
def test_private_things_are_refused_as_if_they_did_not_exist(secrets: Secrets, name: str) -> None:
    _, kwargs = CASES[name]
    given = kwargs(secrets)
    path = reverse(name, kwargs=given)
    ghost = reverse(name, kwargs={key: GHOSTS.get(key, value) for key, value in given.items()})
    before = state(secrets)
    for who, client in callers(secrets, path).items():
        for method in ("get", "post", "put", "patch", "delete"):
            response = getattr(client, method)(path, {}, format="json")
            expected = getattr(client, method)(ghost, {}, format="json")
            assert response.status_code >= 300, f"{who} {method.upper()} {path}: {response}"
            assert refusal(response) == refusal(expected), (
                f"{who} {method.upper()} {path} is refused otherwise than a thing that does "
                f"not exist: {refusal(response)} vs {refusal(expected)}"
            )
            assert not secrets.leaks(body(response)), (who, method, path)
    assert state(secrets) == before, f"{name} changed alice's data"


QUERIES = [
    "",
    "owner=alice",
    "status=succeeded",
    "status=queued",
    f"search={DESCRIPTION_MARKER}",
    f"q={DESCRIPTION_MARKER}",
    f"tag={TAG_MARKER}",
    "view=personal",
    "format=csv",
    "format=latex",
    "format=json",
    "limit=1000",
    "runs={private},{queued}",
]


@pytest.mark.parametrize("name", sorted(n for n, (kind, _) in CASES.items() if kind != PRIVATE))
def test_readable_routes_never_show_anothers_secrets(secrets: Secrets, name: str) -> None:
    kind, kwargs = CASES[name]
    path = reverse(name, kwargs=kwargs(secrets))
    queries = QUERIES if kind == READ else [""]
    for who, client in callers(secrets, path).items():
        for query in queries:
            filled = query.format(private=secrets.private_run.uuid, queued=secrets.queued_run.uuid)
            response = client.get(f"{path}?{filled}" if filled else path)
            assert response.status_code < 500, (who, path, filled, response)
            leaked = secrets.leaks(body(response), asked=filled)
            assert not leaked, f"{who} GET {path}?{filled} shows {leaked}"


def test_the_secrets_are_visible_to_their_owner(secrets: Secrets) -> None:
    """The markers the tests above look for are really shown where alice may see them."""
    alice = APIClient()
    alice.credentials(HTTP_AUTHORIZATION=f"Token {secrets.alice_key}")
    page = Client()
    page.force_login(secrets.alice)
    uuid = secrets.private_run.uuid
    seen = {
        "runs": body(alice.get("/api/v1/runs/?owner=alice")),
        "run": body(alice.get(f"/api/v1/runs/{uuid}/")),
        "board": body(alice.get("/api/v1/suites/glue/leaderboard/?view=personal")),
        "artifact": body(alice.get(f"/api/v1/runs/{uuid}/artifacts/notes.txt/")),
        "tokens": body(alice.get("/api/v1/tokens/")),
        "page": body(page.get(f"/runs/{uuid}/")),
        "queue": body(page.get("/jobs/")),
    }
    shown = {marker for content in seen.values() for marker in secrets.leaks(content)}
    hidden_from_everyone = {GOLD_MARKER, secrets.alice_key}
    assert shown == set(secrets.markers) - hidden_from_everyone, seen


def test_gold_labels_are_shown_to_no_one_not_even_staff(secrets: Secrets) -> None:
    staff = Client()
    staff.force_login(UserFactory.create(username="curator", is_staff=True, is_superuser=True))
    for path in (
        "/admin/catalog/goldsplit/",
        f"/admin/catalog/goldsplit/{GoldSplit.objects.get().pk}/change/",
        "/api/v1/benchmarks/glue/",
        "/benchmarks/glue/ax/",
    ):
        response = staff.get(path)
        assert response.status_code == 200, path
        assert GOLD_MARKER.encode() not in response.content, path


def test_the_admin_is_for_staff_only(secrets: Secrets) -> None:
    bob = Client()
    bob.force_login(secrets.bob)
    for model in admin_site._registry:
        opts = model._meta
        for view in ("changelist", "add"):
            path = reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}")
            for client in (Client(), bob):
                response = client.get(path)
                assert response.status_code == 302, path
                assert response["Location"].startswith("/admin/login/"), path


# --- Tokens -----------------------------------------------------------------------------


def test_a_revoked_token_stops_working_at_once(secrets: Secrets) -> None:
    first, second = APIClient(), APIClient()
    first.credentials(HTTP_AUTHORIZATION=f"Token {secrets.alice_key}")
    created = token_create(user=secrets.alice, name="second")
    second.credentials(HTTP_AUTHORIZATION=f"Token {created.key}")
    assert second.get("/api/v1/tokens/").status_code == 200
    assert first.delete(f"/api/v1/tokens/{created.token.pk}/").status_code == 204
    assert second.get("/api/v1/tokens/").status_code == 401
    assert second.get("/api/v1/runs/").status_code == 401  # even where anonymous may read
    # A token revoking itself: that very request succeeds, the next one does not.
    assert first.delete(f"/api/v1/tokens/{secrets.alice_token.pk}/").status_code == 204
    assert first.get("/api/v1/tokens/").status_code == 401


def test_another_users_token_can_be_neither_listed_nor_revoked(secrets: Secrets) -> None:
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=secrets.bob, name='b').key}")
    listed = bob.get("/api/v1/tokens/")
    assert listed.status_code == 200
    assert secrets.alice_token.prefix not in listed.content.decode()
    assert bob.delete(f"/api/v1/tokens/{secrets.alice_token.pk}/").status_code == 404
    alice = APIClient()
    alice.credentials(HTTP_AUTHORIZATION=f"Token {secrets.alice_key}")
    assert alice.get("/api/v1/tokens/").status_code == 200


# --- CSRF -------------------------------------------------------------------------------


def _uses_session(view: Any) -> bool:
    view_class = getattr(view, "cls", None)
    if view_class is None:
        return True  # a Django view: CsrfViewMiddleware guards it
    return any(
        issubclass(auth, SessionAuthentication)
        for auth in getattr(view_class, "authentication_classes", [])
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_post_without_a_csrf_token_is_refused(secrets: Secrets, name: str) -> None:
    """Every page and every API view that accepts a session refuses a signed-in POST that
    carries no CSRF token; only token-authenticated API calls need none."""
    path = reverse(name, kwargs=CASES[name][1](secrets))
    view = get_resolver().resolve(path).func
    if not _uses_session(view):
        pytest.skip(f"{name} does not authenticate by session, so CSRF cannot apply")
    client = Client(enforce_csrf_checks=True)
    client.force_login(secrets.bob)
    response = client.post(path, {"name": "x"})
    assert response.status_code == 403, (path, response.content[:300])
    renderer = getattr(response, "accepted_renderer", None)
    if renderer is None or renderer.format == "json":  # the HTML docs page says only 403
        assert b"CSRF" in response.content, (path, response.content[:300])


def test_the_dashboards_forms_work_with_their_csrf_token(secrets: Secrets) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(secrets.bob)
    page = client.get("/suites/glue/")
    token = page.context["csrf_token"]
    assert f'value="{token}"'.encode() in page.content  # the freeze form carries it
    frozen = client.post("/suites/glue/freeze/", {"csrfmiddlewaretoken": token})
    assert frozen.status_code == 302, frozen.content[:300]
