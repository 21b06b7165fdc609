"""The limits of a create request: its fields, else the DEFAULT_* settings, in seconds and USD."""

from __future__ import annotations

import pytest

from novita_manager.config import ConfigurationError, load_settings
from novita_manager.services.inputs import CreateInstanceBody
from novita_manager.services.limits import limit_columns

SIMULATOR = "http://127.0.0.1:9/gpu-instance/openapi"


def body(**fields: object) -> CreateInstanceBody:
    return CreateInstanceBody.model_validate(
        {"name": "n", "productName": "RTX 4090 24GB", "templateId": "1", **fields}
    )


def test_request_fields_win_over_defaults_which_fill_the_rest() -> None:
    settings = load_settings(
        novita_api_base_url=SIMULATOR,
        default_auto_stop_after="8h",
        default_auto_delete_after="2d",
        default_max_cost="5",
    )
    assert (settings.default_auto_stop_after, settings.default_auto_delete_after) == (
        28800.0,
        172800.0,
    )
    columns = limit_columns(body(autoStopAfter="30m", idleStopAfter=600), settings)
    assert columns == {
        "auto_stop_after": 1800.0,
        "auto_delete_after": 172800.0,
        "idle_stop_after": 600.0,
        "max_cost": 5.0,
    }
    none = limit_columns(body(), load_settings(novita_api_base_url=SIMULATOR))
    assert set(none.values()) == {None}  # no limit unless asked for


@pytest.mark.parametrize(
    "fields",
    [{"autoStopAfter": "1w"}, {"autoStopAfter": 0}, {"idleStopAfter": "5 s"}, {"maxCost": 0},
     {"autoDeleteAfter": True}, {"autoDeleteAfter": 2.5}, {"maxCost": "1"}],
)  # fmt: skip
def test_invalid_limits_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(fields))):
        body(**fields)


def test_a_bad_default_stops_start_up_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="DEFAULT_IDLE_STOP_AFTER"):
        load_settings(novita_api_base_url=SIMULATOR, default_idle_stop_after="soon")
