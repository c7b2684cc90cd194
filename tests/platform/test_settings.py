"""The one settings module: embedded defaults in development, strict in production."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "PODIUM_ENV": "production",
    "SECRET_KEY": "x" * 64 + "-a-long-random-production-secret",
    "DATABASE_URL": "postgres://podium:secret@db.internal:5432/podium",
    "CELERY_BROKER_URL": "redis://:secret@redis.internal:6379/0",
    "ALLOWED_HOSTS": "podium.example.org",
    "PODIUM_WORKER_KEY": "w" * 48 + "-the-workers-shared-signing-key",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "PODIUM_WORKER_KEY"}
        and not k.startswith(("PODIUM_ARTIFACT_", "PODIUM_S3_"))
    }
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "missing",
    ["SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS", "PODIUM_WORKER_KEY"],
)
def test_production_refuses_to_start_without_a_value_and_names_it(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    env[missing] = ""
    result = manage("check", env=env)
    assert result.returncode != 0
    assert f"{missing} must be set when PODIUM_ENV=production" in result.stderr


def test_production_refuses_the_development_worker_key() -> None:
    from runners.spec import DEV_WORKER_KEY

    result = manage("check", env=PRODUCTION_ENV | {"PODIUM_WORKER_KEY": DEV_WORKER_KEY})
    assert result.returncode != 0
    assert "PODIUM_WORKER_KEY is the development key" in result.stderr


@pytest.mark.parametrize(
    "broker", ["redis://redis.internal:6379/0", "rediss://podium@redis.internal:6380/0"]
)
def test_production_refuses_a_redis_broker_without_a_password(broker: str) -> None:
    result = manage("check", env=PRODUCTION_ENV | {"CELERY_BROKER_URL": broker})
    assert result.returncode != 0
    assert "CELERY_BROKER_URL names a Redis broker without a password" in result.stderr


def test_a_malformed_artifact_url_is_refused(tmp_path: Path) -> None:
    env = {"PODIUM_ENV": "development", "PODIUM_VAR_DIR": str(tmp_path)}
    result = manage("check", env=env | {"PODIUM_ARTIFACT_URL": "https://bucket.example.org/x"})
    assert result.returncode != 0
    assert "PODIUM_ARTIFACT_URL='https://bucket.example.org/x': expected s3://bucket" in (
        result.stderr
    )


def test_the_artifact_store_is_read_from_the_workers_variables(tmp_path: Path) -> None:
    env = {
        "PODIUM_ENV": "development",
        "PODIUM_VAR_DIR": str(tmp_path),
        "PODIUM_ARTIFACT_URL": "s3://podium-artifacts/prod",
        "PODIUM_S3_ENDPOINT_URL": "http://minio.internal:9000",
        "PODIUM_ARTIFACT_DIR": str(tmp_path / "shared"),
        "PODIUM_MAX_ARTIFACT_BYTES": "12345",
    }
    script = (
        "from django.conf import settings as s; from runners.spec import DEV_WORKER_KEY; "
        "print(s.PODIUM_ARTIFACT_URL, s.PODIUM_S3_ENDPOINT_URL, s.MEDIA_ROOT, "
        "s.PODIUM_MAX_ARTIFACT_BYTES, s.PODIUM_WORKER_KEY == DEV_WORKER_KEY)"
    )
    result = manage("shell", "--verbosity", "0", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "s3://podium-artifacts/prod",
        "http://minio.internal:9000",
        str(tmp_path / "shared"),
        "12345",
        "True",  # outside production the development worker key is the default
    ]


def test_production_settings_pass_the_deploy_check() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_unknown_mode_is_refused() -> None:
    result = manage("check", env={"PODIUM_ENV": "staging"})
    assert result.returncode != 0
    assert "PODIUM_ENV must be development, test or production" in result.stderr


def test_embedded_defaults_need_no_service(tmp_path: Path) -> None:
    env = {"PODIUM_ENV": "development", "PODIUM_VAR_DIR": str(tmp_path)}
    result = manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        (
            "from django.conf import settings; from django.db import connection; "
            "c = connection.cursor(); c.execute('PRAGMA journal_mode'); "
            "print(settings.DATABASES['default']['ENGINE'], c.fetchone()[0], "
            "settings.CELERY_BROKER_URL)"
        ),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "wal", "filesystem://"]
    assert (tmp_path / "queue").is_dir()


def test_the_embedded_defaults_serve_a_leaderboard(tmp_path: Path) -> None:
    """The demo's own stack, SQLite included: a single-seed system on a suite page."""
    env = {"PODIUM_ENV": "development", "PODIUM_VAR_DIR": str(tmp_path)}
    for command in (("migrate", "--noinput", "-v0"), ("load_catalog", "-v0")):
        result = manage(*command, env=env)
        assert result.returncode == 0, result.stderr
    script = (
        "from django.contrib.auth.models import User; from django.test import Client; "
        "from catalog.models import Backbone, Method, Task; "
        "from tracking.services import run_create_external; "
        "task = Task.objects.get(benchmark__key='glue', key='sst2'); "
        "run_create_external(owner=User.objects.create(username='u'), "
        "method=Method.objects.get(key='majority'), backbone=Backbone.objects.create("
        "key='b', name='B', source='package', package='p'), task=task, config={}, seed=1, "
        "scores={'accuracy': 0.5}); "
        "page = Client(HTTP_HOST='localhost').get('/suites/glue/?rule=borda&missing=impute'); "
        "print(page.status_code, b'Winner under borda' in page.content)"
    )
    result = manage("shell", "--verbosity", "0", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "True"]
