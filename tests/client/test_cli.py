"""The `podium` command, run in-process (`main([...])`) against a live Podium."""

from __future__ import annotations

import csv
import io
import json
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from api.services import token_create
from catalog.models import Backbone, Method, Task
from podium import cli as cli_module
from podium.cli import main
from tests.api.test_predictions import sst2_lines
from tests.client.conftest import Server
from tests.conftest import CeleryWorker
from tests.factories import BackboneFactory, MethodFactory, UserFactory
from tests.jobs import conftest as job_fixtures
from tests.jobs.conftest import GpuWorker
from tests.published import BERT_LARGE_GLUE
from tracking.models import Run, Score
from tracking.services import config_fingerprint, run_create_external

pytestmark = pytest.mark.django_db(transaction=True)

# The job tests' GPU-worker processes and test method, reused rather than copied.
start_gpu_worker = job_fixtures.start_gpu_worker
stepper_method = job_fixtures.stepper_method
no_backbone = job_fixtures.no_backbone


@dataclass(frozen=True, kw_only=True)
class Cli:
    out: io.StringIO
    err: pytest.CaptureFixture[str]

    def __call__(self, *argv: str) -> int:
        self.out.seek(0)
        self.out.truncate()
        return main(list(argv), out=self.out)

    @property
    def printed(self) -> str:
        return self.out.getvalue()

    def error(self) -> str:
        """What the last failing command said on stderr: exactly one line."""
        lines = self.err.readouterr().err.splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("podium: error: ")
        return lines[0]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(out=io.StringIO(), err=capsys)


@pytest.fixture
def logged_in(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    monkeypatch.setenv("PODIUM_URL", server.url)
    monkeypatch.setenv("PODIUM_TOKEN", server.token)
    return server


@dataclass(frozen=True, kw_only=True)
class Glue:
    url: str
    token: str
    user: User
    method: Method
    backbone: Backbone


@pytest.fixture
def glue(
    live_server: LiveServer,
    settings: Settings,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Glue:
    """A live Podium with the real catalog (GLUE, ...) and its data, and a logged-in user."""
    settings.PODIUM_DATA_DIR = str(data_dir)
    settings.PODIUM_PRIVATE_DIR = tmp_path / "private"
    call_command("load_catalog", verbosity=0)
    user = UserFactory.create(username="carol")
    token = token_create(user=user, name="cli").key
    monkeypatch.setenv("PODIUM_URL", live_server.url)
    monkeypatch.setenv("PODIUM_TOKEN", token)
    return Glue(
        url=live_server.url,
        token=token,
        user=user,
        method=MethodFactory.create(key="paper", name="Paper", executable=False),
        backbone=BackboneFactory.create(key="bert-large", name="BERT-large"),
    )


# --- login --------------------------------------------------------------------------------


def test_login_verifies_the_token_and_stores_it_for_the_owner_only(
    server: Server, cli: Cli, client_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt: server.url + "/")
    monkeypatch.setattr("getpass.getpass", lambda prompt: server.token)
    assert cli("login") == 0
    assert f"Logged in to {server.url} as alice" in cli.printed
    path = client_home / "config/podium/credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": server.url, "token": server.token}
    # The stored credentials serve later commands.
    assert (
        cli(
            "submit",
            "--task",
            "bench/sst",
            "--method",
            "paper",
            "--backbone",
            "minilm",
            "--score",
            "accuracy=0.9",
            "--score",
            "loss=0.3",
        )
        == 0
    )


def test_login_with_a_bad_token_says_so_and_stores_nothing(
    server: Server, cli: Cli, client_home: Path
) -> None:
    assert cli("--url", server.url, "--token", "pdm_nope", "login") == 1
    assert "refused the token" in cli.error()
    assert not (client_home / "config/podium/credentials").exists()


def test_commands_without_a_server_say_how_to_configure_one(cli: Cli) -> None:
    assert cli("leaderboard", "glue") == 1
    assert "run `podium login`" in cli.error()


# --- submit -------------------------------------------------------------------------------


def test_submit_records_scores_and_a_bad_one_is_a_one_line_error(
    logged_in: Server, cli: Cli
) -> None:
    argv = ["submit", "--task", "bench/sst", "--method", "paper", "--backbone", "minilm"]
    argv += ["--seed", "4", "--config", '{"lr": 0.01}', "--tag", "paper"]
    assert cli(*argv, "--score", "accuracy=0.91", "--score", "loss=0.25") == 0
    run = Run.objects.get()
    assert f"Recorded run {run.uuid} (self_reported): accuracy=0.9100, loss=0.2500" in cli.printed
    assert (run.seed, run.config, run.owner.username) == (4, {"lr": 0.01}, "alice")
    assert cli(*argv, "--score", "accuracy=0.91") == 1
    assert "scores: missing loss" in cli.error()
    assert cli(*argv, "--score", "accuracy=high", "--score", "loss=1") == 1
    assert "score accuracy: 'high' is not a number" in cli.error()
    assert Run.objects.count() == 1


def test_submit_predictions_are_scored_by_podium(
    glue: Glue, cli: Cli, tmp_path: Path, data_dir: Path
) -> None:
    lines = sst2_lines(data_dir, flip=10)
    predictions = tmp_path / "sst2.jsonl"
    predictions.write_text("\n".join(lines) + "\n")
    argv = ["submit", "--task", "glue/sst2", "--method", "paper", "--backbone", "bert-large"]
    assert cli(*argv, "--predictions", str(predictions), "--split", "validation") == 0
    run = Run.objects.get()
    assert run.provenance_tier == "rescored"
    accuracy = Score.objects.get(run=run).value
    assert accuracy == pytest.approx((len(lines) - 10) / len(lines))
    assert cli(*argv, "--predictions", str(predictions)) == 1
    assert "--predictions needs --split" in cli.error()


# --- leaderboards -------------------------------------------------------------------------


@pytest.fixture
def glue_board(glue: Glue) -> list[str]:
    """Three systems on GLUE: BERT-large's published results, and two weaker copies."""
    names = []
    for name, shift in (("ft", 0.0), ("weak", 0.05), ("weaker", 0.1)):
        method = MethodFactory.create(key=name, name=name.title(), executable=False)
        names.append(name.title())
        for key, scores in BERT_LARGE_GLUE.items():
            run_create_external(
                owner=glue.user,
                method=method,
                backbone=glue.backbone,
                task=Task.objects.get(benchmark__key="glue", key=key, is_current=True),
                config={},
                seed=0,
                scores={metric: value - shift for metric, value in scores.items()},
            )
    return names


def test_leaderboard_prints_a_readable_ranked_table(glue_board: list[str], cli: Cli) -> None:
    assert cli("leaderboard", "glue", "--rule", "kemeny") == 0
    title, header, rule, *rows = cli.printed.splitlines()
    assert title.startswith("glue v1 · rule kemeny")
    assert header.split()[:3] == ["#", "system", "kemeny"]
    assert "cola/mcc" in header
    assert set(rule) <= {"-", " "}
    ranked = [r for r in rows if r[:1].strip().isdigit()]
    assert [r.split()[0] for r in ranked] == ["1", "2", "3"]
    assert [r.split()[1] for r in ranked] == ["Ft", "Weak", "Weaker"]
    assert "0.6050" in ranked[0]  # BERT-large's CoLA MCC, as a cell
    assert rows[-1] == f"winner(s): Ft · BERT-large · {config_fingerprint({})[:7]}"
    assert cli("leaderboard", "glue") == 0
    assert cli.printed.splitlines()[1].split()[:4] == ["#", "system", "GLUE", "score"]
    assert cli("leaderboard", "glue", "--rule", "nonsense") == 1
    assert "Unknown rule 'nonsense'" in cli.error()


@pytest.mark.parametrize("fmt", ["csv", "json", "latex"])
def test_export_writes_the_leaderboard_file(
    glue_board: list[str], cli: Cli, tmp_path: Path, fmt: str
) -> None:
    target = tmp_path / f"glue.{fmt}"
    assert cli("export", "glue", "--rule", "borda", "--format", fmt, "-o", str(target)) == 0
    assert f"Wrote glue ({fmt}, rule borda) to {target}" in cli.printed
    content = target.read_text()
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(content)))
        assert any(f"Ft · BERT-large · {config_fingerprint({})[:7]}" in c for c in rows[1])
        assert len(rows) >= 4
    elif fmt == "json":
        board = json.loads(content)
        assert board["rule"] == "borda"
        assert [row["method"] for row in board["rows"]] == ["ft", "weak", "weaker"]
    else:
        assert "\\begin{tabular}" in content
        assert "Weaker" in content


def test_leaderboard_and_json_export_follow_every_page(
    glue_board: list[str], cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One row a page: the three systems come back only if every page is fetched.
    monkeypatch.setattr(cli_module, "BOARD_PAGE_SIZE", 1)
    assert cli("leaderboard", "glue", "--rule", "borda") == 0
    ranked = [r for r in cli.printed.splitlines()[3:] if r[:1].strip().isdigit()]
    assert [r.split()[:2] for r in ranked] == [["1", "Ft"], ["2", "Weak"], ["3", "Weaker"]]
    target = tmp_path / "glue.json"
    assert cli("export", "glue", "--rule", "borda", "--format", "json", "-o", str(target)) == 0
    board = json.loads(target.read_text())
    assert [row["method"] for row in board["rows"]] == ["ft", "weak", "weaker"]
    assert (board["count"], board["page_size"], board["next"]) == (3, 3, None)


def test_export_of_an_unknown_suite_fails_cleanly(glue: Glue, cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "nope.csv"
    assert cli("export", "nope", "--format", "csv", "-o", str(target)) == 1
    assert "HTTP 404" in cli.error()
    assert not target.exists()


# --- sync ---------------------------------------------------------------------------------


def test_sync_with_nothing_spooled_says_so(logged_in: Server, cli: Cli) -> None:
    assert cli("sync") == 0
    assert "Nothing to upload" in cli.printed


# --- run ----------------------------------------------------------------------------------


@pytest.fixture
def workers(platform_worker: CeleryWorker, start_gpu_worker: object, glue: Glue) -> GpuWorker:
    gpu: GpuWorker = start_gpu_worker()  # type: ignore[operator]
    return gpu


@pytest.mark.worker
def test_run_follows_a_job_to_its_scores_and_exits_0_only_on_success(
    workers: GpuWorker, stepper_method: Method, no_backbone: Backbone, cli: Cli
) -> None:
    argv = ["run", "--method", "test-stepper", "--backbone", "none", "--task", "glue/sst2"]
    argv += ["--interval", "0.2"]
    assert cli(*argv, "--config", '{"steps": 3, "step_seconds": 0.3}', "--seed", "1") == 0, (
        cli.printed + workers.output()
    )
    printed = cli.printed
    assert "Requested 1 run(s)" in printed
    assert "(glue/sst2 seed 1): running on gpu0@" in printed
    assert "  | step 3/3" in printed
    assert "(glue/sst2 seed 1): succeeded" in printed
    assert "  scores: accuracy=" in printed
    assert Run.objects.get().status == "succeeded"

    failing = '{"steps": 3, "fail_at_step": 2}'
    assert cli(*argv, "--config", failing, "--seed", "2") == 1
    assert "(glue/sst2 seed 2): failed (" in cli.printed
    assert "diverged at step 2" in cli.printed
    assert "1 of 1 run(s) did not succeed" in cli.error()
