"""The Compose files parse and name only variables the service knows (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from novita_manager.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.replicas.yml"]
SETTINGS = {name.upper() for name in Settings.model_fields}
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


def compose(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(data, dict)
    return data


def environment_names(service: dict[str, Any]) -> set[str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {item.split("=", 1)[0] for item in env}
    return set(env)


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_names_only_known_variables(name: str) -> None:
    data = compose(name)
    for service_name, service in data["services"].items():
        allowed = SETTINGS | ({"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"})
        unknown = environment_names(service) - allowed
        assert not unknown, f"{name}: {service_name} sets unknown variables {unknown}"
        if service_name != "postgres":
            assert not environment_names(service) & {"POSTGRES_USER", "POSTGRES_PASSWORD"}
    interpolated = set(INTERPOLATION.findall((ROOT / name).read_text()))
    assert interpolated <= SETTINGS | {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_services_restart_check_health_and_read_env_file(name: str) -> None:
    for service_name, service in compose(name)["services"].items():
        assert service.get("restart") == "unless-stopped", service_name
        if service_name.startswith("novita-manager"):
            assert service["env_file"] == [{"path": ".env", "required": False}]
            assert "/health/" in " ".join(service["healthcheck"]["test"])
            assert service["environment"]["HOST"] == "0.0.0.0"


def test_single_machine_keeps_sqlite_in_a_named_volume() -> None:
    data = compose("docker-compose.yml")
    service = data["services"]["novita-manager"]
    assert service["environment"]["DATABASE_URL"].startswith("sqlite+aiosqlite:////data/")
    assert "novita-data:/data" in service["volumes"]
    assert "novita-data" in data["volumes"]
    assert "profiles" not in service  # the default service


def test_simulator_profile_runs_the_simulator_and_points_a_service_at_it() -> None:
    services = compose("docker-compose.yml")["services"]
    simulator = services["simulator"]
    assert simulator["profiles"] == ["simulator"]
    assert simulator["command"][:4] == ["novita-manager", "simulator", "--host", "0.0.0.0"]
    service = services["novita-manager-sim"]
    assert service["profiles"] == ["simulator"]
    port = simulator["command"][simulator["command"].index("--port") + 1]
    url = f"http://simulator:{port}/gpu-instance/openapi"
    assert service["environment"]["NOVITA_API_BASE_URL"] == url
    assert service["depends_on"]["simulator"]["condition"] == "service_healthy"


def test_replicas_share_postgresql() -> None:
    services = compose("docker-compose.replicas.yml")["services"]
    replicas = [s for name, s in services.items() if name.startswith("novita-manager")]
    assert len(replicas) >= 2
    for replica in replicas:
        assert replica["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in replica["environment"]["DATABASE_URL"]
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["postgres"]["image"].startswith("postgres:")


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.MULTILINE)) == 2
    assert "-slim" in text
    assert re.search(r"^USER novita$", text, flags=re.MULTILINE)
    assert "HEALTHCHECK" in text
    assert "/health/live" in text
    assert 'CMD ["novita-manager", "serve", "--host", "0.0.0.0"]' in text
    assert "DATABASE_URL=sqlite+aiosqlite:////data/" in text
    env_names = set(re.findall(r"\b([A-Z][A-Z_]+)=", text))
    python_env = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
    pip_env = {"PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK", "PYTHON_VERSION"}
    assert env_names - python_env - pip_env <= SETTINGS
