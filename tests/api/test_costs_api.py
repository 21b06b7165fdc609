"""GET /api/costs refuses what it cannot answer with a 400 naming the parameter."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"groupBy": "week"}, "groupBy"),
        ({"from": "yesterday"}, "from"),
        ({"from": "9999-12-31T23:00:00-05:00"}, "from"),
        ({"to": "0001-01-01T00:00:00+05:00"}, "to"),
        ({"from": "2026-12-02T10:00:00Z", "to": "2026-12-02T09:00:00Z"}, "from"),
    ],
)
def test_a_bad_window_or_grouping_is_a_400(simulator, make_service, params, field) -> None:
    service = make_service(simulator.base_url)
    response = httpx.get(f"{service.base_url}/api/costs", params=params, timeout=5)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert field in {detail["field"] for detail in error["details"]}


def test_an_empty_fleet_costs_nothing(simulator, make_service) -> None:
    service = make_service(simulator.base_url)
    body = httpx.get(f"{service.base_url}/api/costs", timeout=5).json()
    assert (body["groups"], body["total"]["cost"], body["spendRatePerHour"]) == ([], 0.0, 0.0)
    assert body["from"] is None
    assert body["groupBy"] == "day"
