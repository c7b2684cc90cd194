"""The client package on its own: no Django or torch behind `import podium`, a working
`python -m podium`, and where it finds its server and token."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podium.config import Credentials, load_credentials, save_credentials
from podium.errors import PodiumError
from tests.conftest import REPO_ROOT

SERVER_SIDE = {"django", "rest_framework", "config", "catalog", "tracking", "dashboard", "api"}


def bare_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "platform"), str(REPO_ROOT)])
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_client_imports_neither_django_nor_torch() -> None:
    result = bare_python(
        "import sys, podium, podium.cli, podium.lm_eval, podium.transport\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    assert result.returncode == 0, result.stderr
    loaded = set(ast.literal_eval(result.stdout))
    assert not loaded & (SERVER_SIDE | {"torch", "transformers", "requests"})


def test_python_m_podium_lists_the_commands() -> None:
    result = bare_python(
        "import runpy, sys; sys.argv = ['podium', '--help']; "
        "runpy.run_module('podium', run_name='__main__')"
    )
    assert result.returncode == 0, result.stderr
    for command in ("login", "submit", "run", "leaderboard", "export", "import-lm-eval", "sync"):
        assert command in result.stdout


def test_environment_overrides_the_file_and_a_stored_token_stays_with_its_server(
    client_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_credentials(Credentials(url="https://podium.example.org", token="pdm_stored"))
    assert load_credentials() == Credentials(url="https://podium.example.org", token="pdm_stored")
    monkeypatch.setenv("PODIUM_TOKEN", "pdm_env")
    assert load_credentials().token == "pdm_env"
    monkeypatch.delenv("PODIUM_TOKEN")
    monkeypatch.setenv("PODIUM_URL", "https://elsewhere.example.org/")
    with pytest.raises(PodiumError, match="no API token for https://elsewhere"):
        load_credentials()
    with pytest.raises(PodiumError, match="not a server URL"):
        load_credentials(url="podium.example.org", token="t")
