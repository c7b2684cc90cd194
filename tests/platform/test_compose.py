"""docker-compose.yml has the production shape; checked statically (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_services_of_the_production_shape(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "postgres",
        "redis",
        "migrate",
        "web",
        "worker",
        "beat",
        "flower",
        "gpu-worker",
    }


def test_stateful_services_have_healthchecks_and_persistence(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "--appendonly" in services["redis"]["command"]
    assert "--requirepass" in services["redis"]["command"]
    for name in ("postgres", "redis"):
        assert services[name]["volumes"], name


def test_platform_services_wait_for_migrations_and_healthy_services(
    compose: dict[str, Any],
) -> None:
    for name in ("web", "worker", "beat", "flower"):
        depends = compose["services"][name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert compose["services"][name]["environment"]["PODIUM_ENV"] == "production"
    assert "migrate" in " ".join(compose["services"]["migrate"]["command"])


def test_gpu_worker_is_a_profile_with_a_gpu_and_no_database(compose: dict[str, Any]) -> None:
    gpu = compose["services"]["gpu-worker"]
    assert gpu["profiles"] == ["gpu"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert "DATABASE_URL" not in gpu["environment"]
    assert "CELERY_BROKER_URL" in gpu["environment"]


def test_every_secret_comes_from_the_environment(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for name in ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert re.search(rf"\$\{{{name}:\?", text), name
    example = (ROOT / ".env.example").read_text()
    for name in ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "ALLOWED_HOSTS"):
        assert f"{name}=" in example


def test_images_build_from_the_repository_dockerfile(compose: dict[str, Any]) -> None:
    dockerfile = ROOT / compose["services"]["web"]["build"]["dockerfile"]
    stages = re.findall(r"^FROM \S+ AS (\w+)$", dockerfile.read_text(), flags=re.MULTILINE)
    assert {"web", "gpu"} <= set(stages)
    assert compose["services"]["gpu-worker"]["build"]["target"] == "gpu"
