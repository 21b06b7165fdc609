"""`novita-manager simulator` runs as its own process and serves the v1 surface."""

from __future__ import annotations

import httpx
from typer.testing import CliRunner

from novita_manager.cli import app
from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.server import SimulatorProcess


def test_help_explains_the_command() -> None:
    result = CliRunner().invoke(app, ["simulator", "--help"])
    assert result.exit_code == 0
    for option in ("--port", "--seed", "--time-scale", "--api-key", "--no-autostart", "--profile"):
        assert option in result.output
    assert "NOVITA_API_BASE_URL" in result.output


def test_process_serves_with_options() -> None:
    config = SimulatorConfig(seed=3, time_scale=0.01, api_key="sk_proc", autostart=False)
    with SimulatorProcess(config) as process:
        assert process.base_url.endswith("/gpu-instance/openapi")
        reply = httpx.get(f"{process.v1_url}/gpu/instances", headers=process.auth_headers)
        assert reply.json() == {"instances": [], "total": 0}
        bad = httpx.get(f"{process.v1_url}/gpu/instances", headers={"Authorization": "Bearer x"})
        assert bad.status_code == 401
        config_seen = process.control.reset()
        assert config_seen["seed"] == 3
        assert config_seen["autostart"] is False
    assert process.process is None


def test_process_plays_the_profile_and_readings() -> None:
    config = SimulatorConfig(time_scale=0.01, profile="adverse", page_size_cap=50)
    with SimulatorProcess(config) as process:
        shown = process.control.profile()
        assert shown["profile"] == "adverse"
        assert shown["overrides"] == {"page_size_cap": 50}


def test_unknown_profile_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["simulator", "--profile", "hostile"])
    assert result.exit_code == 2
    assert "unknown profile" in result.output
    result = CliRunner().invoke(app, ["simulator", "--reading", "page_base=9"])
    assert result.exit_code == 2
