"""The whole API fuzzed against its own OpenAPI schema (/api/schema/) with Schemathesis.

Every operation gets generated requests, valid and invalid, anonymously and with an API
token, through Django's WSGI application on the test database. Path parameters are often
swapped for objects the fixtures created (suites, tasks, runs, snapshots, tokens, artifacts),
so detail endpoints reach real objects instead of 404s. Every response must be free of
server errors and conform to the schema: documented status code, content type, headers and
body shape. All failures are collected and reported together.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pytest_django.fixtures import Settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.models import ApiToken
from api.services import token_create
from catalog.models import Benchmark, Suite, Task
from catalog.selectors import suite_version_latest
from config.wsgi import application
from dashboard.selectors import suite_leaderboard
from dashboard.snapshots import snapshot_freeze
from runners.spec import InlineArtifact
from tests.factories import BackboneFactory, MethodFactory, RunFactory, UserFactory
from tracking.artifacts import artifact_store_inline
from tracking.models import Artifact, Run, Visibility
from tracking.services import run_create_external

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(600)]

# Requests in total, over every operation, both generation modes and both callers.
TOTAL_REQUESTS = 2400
MIN_REQUESTS = 2000
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@dataclass(frozen=True, kw_only=True)
class World:
    """What the fixtures created: values real path parameters may take."""

    token: ApiToken
    key: str
    path_values: dict[str, list[Any]]

    def values_for(self, path: str, parameter: str) -> list[Any]:
        if parameter == "key":
            return self.path_values["suite" if path.startswith("/api/v1/suites/") else "benchmark"]
        return self.path_values.get(parameter, [])


def _run(owner: User, task: Task, *, visibility: str, seed: int) -> Run:
    return run_create_external(
        owner=owner,
        method=MethodFactory.create(executable=False),
        backbone=BackboneFactory.create(),
        task=task,
        config={"lr": 0.001 * (seed + 1)},
        seed=seed,
        scores={metric.key: 0.5 + seed / 100 for metric in task.metrics.all()},
        visibility=visibility,
        tags=["fuzz"],
        description="fuzzed",
    )


@pytest.fixture
def world(settings: Settings, tmp_path: Any) -> World:
    settings.PODIUM_PRIVATE_DIR = tmp_path / "private"
    call_command("load_catalog", verbosity=0)
    fuzzer = UserFactory.create(username="fuzzer")
    other = UserFactory.create(username="other")
    sst2 = Task.objects.get(benchmark__key="glue", key="sst2", is_current=True)
    rte = Task.objects.get(benchmark__key="glue", key="rte", is_current=True)
    runs = [
        _run(fuzzer, sst2, visibility=Visibility.PUBLIC, seed=0),
        _run(fuzzer, rte, visibility=Visibility.PRIVATE, seed=1),
        _run(other, sst2, visibility=Visibility.PUBLIC, seed=2),
        _run(other, rte, visibility=Visibility.PRIVATE, seed=3),
        RunFactory.create(owner=fuzzer, task=sst2),  # queued, executed by Podium
    ]
    artifact_store_inline(
        run=runs[0],
        artifact=InlineArtifact(
            name="notes.txt", kind="other", content="notes\n", sha256=_sha256("notes\n")
        ),
    )
    version = suite_version_latest(suite=Suite.objects.get(key="glue"))
    assert version is not None
    board = suite_leaderboard(suite_version=version, viewer=None, rule="official", missing="")
    snapshot = snapshot_freeze(board=board, suite_version=version, created_by=fuzzer)
    created = token_create(user=fuzzer, name="fuzz")
    other_token = token_create(user=other, name="other").token
    return World(
        token=created.token,
        key=created.key,
        path_values={
            "suite": list(Suite.objects.values_list("key", flat=True)),
            "benchmark": list(Benchmark.objects.values_list("key", flat=True)),
            "task": ["sst2", "rte", "cola", "boolq"],
            "uuid": [run.uuid for run in runs] + [snapshot.uuid],
            "id": [created.token.pk, other_token.pk],
            "name": list(Artifact.objects.values_list("name", flat=True)),
        },
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Findings:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # first failure per operation

    def report(self) -> str:
        return "\n\n".join(f"{label}:\n{text}" for label, text in self.failures.items())


def fuzz_operation(
    operation: Any,
    *,
    mode: GenerationMode,
    examples: int,
    headers: dict[str, str],
    world: World,
    findings: Findings,
) -> None:
    strategy = operation.as_strategy(generation_mode=mode)
    label = f"{operation.label} [{mode.value}, {'token' if headers else 'anonymous'}]"

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, data=st.data())
    def fuzz(case: Any, data: st.DataObject) -> None:
        for name in list(case.path_parameters or {}):
            real = world.values_for(operation.path, name)
            if not real:
                continue
            if data.draw(st.booleans()):
                case.path_parameters[name] = str(data.draw(st.sampled_from(real)))
        # Each request in a savepoint rolled back afterwards: the fixtures stay as they were
        # (a revoked fuzzing token, say), and a request whose SQL failed cannot poison the
        # test's transaction for the requests after it.
        savepoint = transaction.savepoint()
        try:
            response = case.call(headers=headers)
        finally:
            transaction.savepoint_rollback(savepoint)
        findings.requests += 1
        findings.statuses[response.status_code] = findings.statuses.get(response.status_code, 0) + 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as failure:
            failures = failure.exceptions if isinstance(failure, FailureGroup) else [failure]
            for each in failures:
                findings.failures.setdefault(
                    f"{label}: {getattr(each, 'title', type(each).__name__)}",
                    f"{response.status_code} {response.text[:300]}\n"
                    f"{str(each)[:1000]}\n{case.as_curl_command()[:1000]}",
                )

    # Unsatisfiable: nothing negative to generate (no parameters, no body); positive covers it.
    with contextlib.suppress(Unsatisfiable):
        fuzz()


@pytest.fixture
def wsgi_in_test_transaction() -> Iterator[None]:
    """Requests through the raw WSGI app keep the test's connection, as the test Client does:
    Django would otherwise close it at each request's start and end (losing the fixtures'
    uncommitted transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_the_api_answers_every_generated_request_by_its_schema(
    world: World, settings: Settings, wsgi_in_test_transaction: None
) -> None:
    # Throttling would turn the fuzzing into 429s; it has its own tests.
    settings.PODIUM_THROTTLE_RATES = {}
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the schema has an invalid operation: {result.err()}"
        operations.append(result.ok())
    assert len(operations) >= 20, [op.label for op in operations]
    callers: list[dict[str, str]] = [{}, {"Authorization": f"Token {world.key}"}]
    examples = math.ceil(TOTAL_REQUESTS / (len(operations) * len(MODES) * len(callers)))

    findings = Findings()
    for operation in operations:
        for mode in MODES:
            for headers in callers:
                fuzz_operation(
                    operation,
                    mode=mode,
                    examples=examples,
                    headers=headers,
                    world=world,
                    findings=findings,
                )
    assert not findings.failures, findings.report()
    assert findings.requests >= MIN_REQUESTS, findings.statuses
    # Both callers reached the API's real behaviour, not only its refusals.
    assert findings.statuses.get(200, 0) > 200, findings.statuses
    assert findings.statuses.get(400, 0) > 100, findings.statuses
