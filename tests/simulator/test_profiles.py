"""Profiles and readings: naming, validation and switching them (config, control API, CLI)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from novita_manager.simulator.config import (
    DEFAULT_PROFILE,
    PROFILES,
    READINGS,
    ReadingError,
    SimulatorConfig,
    parse_reading,
    readings_for,
)
from novita_manager.simulator.server import SimulatorServer
from tests.simulator.helpers import assert_error


def test_every_profile_sets_every_reading() -> None:
    assert set(PROFILES) == {"adverse", "lenient", "classic"}
    for name in PROFILES:
        assert set(readings_for(name)) == set(READINGS)
        assert SimulatorConfig(profile=name).readings() == readings_for(name)


def test_adverse_and_lenient_differ_on_every_reading() -> None:
    adverse, lenient = readings_for("adverse"), readings_for("lenient")
    # page_zero only means something under base 1, which adverse does not use.
    assert [name for name in READINGS if adverse[name] == lenient[name]] == ["page_zero"]


def test_default_profile_is_one_constant() -> None:
    assert SimulatorConfig().profile == DEFAULT_PROFILE
    assert SimulatorConfig().readings() == readings_for(DEFAULT_PROFILE)


def test_fields_override_the_profile() -> None:
    config = SimulatorConfig(profile="adverse", page_size_cap=None, name_rule="any")
    assert config.page_base == 0
    assert config.page_size_cap is None
    assert config.overrides() == {"page_size_cap": None, "name_rule": "any"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"profile": "hostile"}, "profile"),
        ({"page_base": 2}, "page_base"),
        ({"page_base": True}, "page_base"),
        ({"page_size_cap": 0}, "page_size_cap"),
        ({"tools_required": 1}, "tools_required"),
        ({"list_shape": "tiny"}, "list_shape"),
    ],
)
def test_invalid_profile_or_value_is_a_clear_error(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ReadingError) as caught:
        SimulatorConfig(**fields)
    assert caught.value.field == field
    assert field in str(caught.value)


def test_unknown_reading_is_refused() -> None:
    config = SimulatorConfig()
    with pytest.raises(ReadingError, match="unknown reading"):
        config.use_profile("lenient", {"page_start": 0})
    assert config.profile == DEFAULT_PROFILE  # nothing changed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("page_size_cap=50", ("page_size_cap", 50)),
        ("page-size-cap=none", ("page_size_cap", None)),
        ("tools_required=true", ("tools_required", True)),
        ("page_base=0", ("page_base", 0)),
        ("list_shape=reduced", ("list_shape", "reduced")),
    ],
)
def test_parse_reading_from_the_command_line(text: str, expected: tuple[str, Any]) -> None:
    assert parse_reading(text) == expected


def test_control_api_sets_and_shows_the_profile(simulator: SimulatorServer) -> None:
    control = simulator.control
    shown = control.set_profile("adverse", {"page_size_cap": 50})
    assert shown["profile"] == "adverse"
    assert shown["readings"] == {**readings_for("adverse"), "page_size_cap": 50}
    assert shown["overrides"] == {"page_size_cap": 50}
    assert control.profile() == shown
    # Without a name, overrides apply to the profile in force (and earlier overrides go).
    assert control.set_profile(readings={"name_rule": "any"})["overrides"] == {"name_rule": "any"}
    assert control.set_profile("lenient")["readings"] == readings_for("lenient")


def test_reset_switches_profile_or_keeps_it(simulator: SimulatorServer) -> None:
    control = simulator.control
    assert control.reset(profile="adverse")["profile"] == "adverse"
    assert control.reset()["profile"] == "adverse"  # kept, like the seed
    assert control.profile()["readings"] == readings_for("adverse")
    control.reset(profile="classic", readings={"page_base": 0})
    assert control.profile()["overrides"] == {"page_base": 0}


@pytest.mark.parametrize(
    "body",
    [
        {"profile": "nope"},
        {"profile": 3},
        {"readings": {"page_base": 7}},
        {"readings": {"nonsense": 1}},
        {"readings": []},
    ],
)
def test_control_api_refuses_bad_profiles(simulator: SimulatorServer, body: dict[str, Any]) -> None:
    reply = httpx.post(f"{simulator.root_url}/_simulator/profile", json=body)
    assert_error(reply, 400, "VALIDATOR_PARAM")
    assert simulator.control.profile()["profile"] == "classic"  # tests/simulator/conftest.py
    reset = httpx.post(f"{simulator.root_url}/_simulator/reset", json=body)
    assert_error(reset, 400, "VALIDATOR_PARAM")


@pytest.mark.parametrize("simulator_profile", ["adverse", "lenient"], indirect=True)
def test_fixture_plays_the_chosen_profile(
    simulator: SimulatorServer, simulator_profile: str
) -> None:
    assert simulator.control.profile() == {
        "profile": simulator_profile,
        "readings": readings_for(simulator_profile),
        "overrides": {},
    }
