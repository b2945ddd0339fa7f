"""docker-compose.yml cannot run here (no Docker engine), so parse and check its shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_services_and_dependencies() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "mongo", "worker", "migrate"} <= set(services)
    assert "pgvector" in services["postgres"]["image"]
    assert "--appendonly" in services["redis"]["command"]
    worker = services["worker"]
    for dep in ("postgres", "redis", "mongo"):
        assert worker["depends_on"][dep]["condition"] == "service_healthy"
        assert "healthcheck" in services[dep]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_worker_environment_points_at_compose_services() -> None:
    env = _compose()["services"]["worker"]["environment"]
    assert "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert env["MONGO_URL"].startswith("mongodb://mongo:27017")


def test_dockerfile_installs_the_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "pip install" in text
    assert "dualsync" in text


def test_migrations_and_mapping_belong_to_one_app_that_exists() -> None:
    services = _compose()["services"]
    env = services["worker"]["environment"]
    mapping = ROOT / env["DUALSYNC_MAPPING"]
    assert mapping.is_file()
    command = services["migrate"]["command"]
    migrations = ROOT / command[command.index("--dir") + 1]
    assert migrations.is_dir()
    assert migrations.parent == mapping.parent  # the worker applies what migrate created
    assert "COPY examples" in (ROOT / "Dockerfile").read_text()
