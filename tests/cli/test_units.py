"""Pure parts of the command line: the exit-code mapping, error parsing and the wait decision."""

from __future__ import annotations

import pytest

from novita_manager.cli.exit_codes import ExitCode, exit_code_for
from novita_manager.cli.watch import _decide
from novita_manager.sdk import ApiResponseError, InstanceView, ServiceUnreachable


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, ExitCode.INVALID),
        (422, ExitCode.INVALID),
        (401, ExitCode.UNAUTHORIZED),
        (404, ExitCode.NOT_FOUND),
        (409, ExitCode.CONFLICT),
        (429, ExitCode.UNAVAILABLE),
        (502, ExitCode.UNAVAILABLE),
        (503, ExitCode.UNAVAILABLE),
    ],
)
def test_http_status_maps_to_exit_code(status: int, code: ExitCode) -> None:
    assert exit_code_for(ApiResponseError(status, None, "")) is code


def test_unreachable_maps_to_6() -> None:
    assert exit_code_for(ServiceUnreachable("http://x", "refused")) == 6


def test_error_envelope_is_parsed_and_non_json_kept() -> None:
    body = {"error": {"code": "INVALID_STATE", "message": "no", "details": {"status": "stopped"}}}
    error = ApiResponseError(409, body, "")
    assert (error.code, error.message) == ("INVALID_STATE", "no")
    assert error.details == {"status": "stopped"}
    proxy = ApiResponseError(502, None, "<html>Bad Gateway</html>")
    assert proxy.code == "HTTP_502"
    assert "Bad Gateway" in proxy.message


def view(status: str, failed_at: str | None = None) -> InstanceView:
    """An instance view as the API sends it (JSON), validated like the SDK does."""
    return InstanceView.model_validate(
        {
            "id": "i-1",
            "name": "unit",
            "status": status,
            "novitaStatus": None,
            "novitaInstanceId": None,
            "productId": None,
            "productName": "RTX 4090 24GB",
            "templateId": "1",
            "gpuNum": 1,
            "rootfsSize": 60,
            "region": "CN-HK-01",
            "clusterId": None,
            "billingMode": "spot",
            "pricePerHour": None,
            "portMappings": [],
            "connectionDetails": {"ssh": None, "jupyter": None, "webTerminal": None},
            "createdAt": "2025-01-01T00:00:00Z",
            "failedAt": failed_at,
            "stale": False,
        }
    )


def test_start_of_a_failed_instance_waits_until_it_moves() -> None:
    before = view("failed", "t1")
    assert _decide(view("failed", "t1"), "running", before, left_before=False) is None
    assert _decide(view("failed", "t2"), "running", before, left_before=False) == "failed"
    assert _decide(view("starting"), "running", before, left_before=True) is None
    assert _decide(view("running"), "running", before, left_before=True) == "reached"
    assert _decide(view("failed", "t1"), "running", before, left_before=True) == "failed"


def test_create_settles_on_running_or_failed() -> None:
    assert _decide(view("creating"), "running", None, left_before=True) is None
    assert _decide(view("failed", "t"), "running", None, left_before=True) == "failed"
    assert _decide(view("stopped"), "stopped", view("running"), left_before=True) == "reached"
    assert _decide(view("deleted"), "running", None, left_before=True) == "failed"
