"""Fault injection over HTTP: every kind, rates, scripted sequences, and the call counts."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from novita_manager.simulator.server import SimulatorServer
from tests.simulator.helpers import CREATE, assert_error, create_body

LIST = "GET /gpu/instances"
CREATE_KEY = "POST /gpu/instance/create"


def calls(simulator: SimulatorServer, endpoint: str) -> dict[str, int]:
    return dict(simulator.control.stats()["calls"].get(endpoint, {}))


@pytest.mark.parametrize(("status", "reason"), [(500, "UNKNOWN"), (502, None), (503, None)])
def test_error(
    simulator: SimulatorServer, simulator_http: httpx.Client, status: int, reason: str | None
) -> None:
    simulator.control.set_faults([{"endpoint": LIST, "kind": "error", "status": status}])
    assert_error(simulator_http.get("/gpu/instances"), status, reason)
    assert simulator_http.get("/clusters").status_code == 200  # other endpoints unaffected
    assert calls(simulator, LIST) == {str(status): 1}


def test_error_defaults_to_500_on_any_endpoint(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    simulator.control.set_faults([{"endpoint": "*", "kind": "error"}])
    assert_error(simulator_http.get("/clusters"), 500)
    assert_error(simulator_http.post(CREATE, json=create_body()), 500)
    assert simulator.control.stats()["instancesCreated"] == 0


def test_rate_limit_sends_retry_after(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    simulator.control.set_faults(
        [{"endpoint": "GET /clusters", "kind": "rate_limit", "retryAfter": 3, "times": 1}]
    )
    reply = simulator_http.get("/clusters")
    assert_error(reply, 429, "RATE_LIMIT_EXCEEDED")
    assert reply.headers["Retry-After"] == "3"
    assert simulator_http.get("/clusters").status_code == 200
    assert calls(simulator, "GET /clusters") == {"429": 1, "200": 1}


def test_delay_then_normal_answer(simulator: SimulatorServer, simulator_http: httpx.Client) -> None:
    simulator.control.set_faults([{"endpoint": "GET /clusters", "kind": "delay", "seconds": 0.3}])
    started = time.monotonic()
    assert simulator_http.get("/clusters").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_hang_times_the_client_out(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    simulator.control.set_faults([{"endpoint": LIST, "kind": "hang"}])
    with pytest.raises(httpx.ReadTimeout):
        simulator_http.get("/gpu/instances", timeout=0.3)
    assert calls(simulator, LIST) == {"hang": 1}


def test_drop_closes_the_connection(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    simulator.control.set_faults([{"endpoint": LIST, "kind": "drop", "times": 1}])
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        simulator_http.get("/gpu/instances")
    assert simulator_http.get("/gpu/instances").status_code == 200  # a new connection works
    assert calls(simulator, LIST) == {"drop": 1, "200": 1}


def test_malformed_body(simulator: SimulatorServer, simulator_http: httpx.Client) -> None:
    simulator.control.set_faults([{"endpoint": LIST, "kind": "malformed"}])
    reply = simulator_http.get("/gpu/instances")
    assert reply.status_code == 200
    with pytest.raises(ValueError, match=r".*"):
        reply.json()


@pytest.mark.parametrize("then", ["error", "hang", "drop"])
def test_commit_then_fail(
    simulator: SimulatorServer, simulator_http: httpx.Client, then: str
) -> None:
    simulator.control.set_faults(
        [{"endpoint": "POST /gpu/instance/create", "kind": "commit_then_fail", "then": then,
          "status": 503, "times": 1}]
    )  # fmt: skip
    body = create_body(envs=[{"key": "NM_MARKER", "value": f"m-{then}"}])
    if then == "error":
        assert_error(simulator_http.post(CREATE, json=body), 503)
    else:
        with pytest.raises((httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError)):
            simulator_http.post(CREATE, json=body, timeout=0.3)
    listed = simulator_http.get("/gpu/instances").json()
    assert listed["total"] == 1  # the create happened
    assert {"key": "NM_MARKER", "value": f"m-{then}"} in listed["instances"][0]["envs"]
    assert simulator.control.stats()["instancesCreated"] == 1
    expected = {"error": "503", "hang": "hang", "drop": "drop"}[then]
    assert calls(simulator, "POST /gpu/instance/create") == {expected: 1}


def test_commit_then_fail_shows_real_error_when_nothing_committed(
    simulator: SimulatorServer, simulator_http: httpx.Client
) -> None:
    simulator.control.set_faults(
        [{"endpoint": "POST /gpu/instance/create", "kind": "commit_then_fail"}]
    )
    assert_error(simulator_http.post(CREATE, json={}), 400, "VALIDATOR_PARAM")


def test_scripted_sequence(simulator: SimulatorServer, simulator_http: httpx.Client) -> None:
    simulator.control.set_faults(
        [
            {"endpoint": LIST, "kind": "error", "status": 500, "times": 2},
            {"endpoint": LIST, "kind": "error", "status": 502, "times": 1},
            {"endpoint": LIST, "kind": "rate_limit", "times": 1},
        ]
    )
    statuses = [simulator_http.get("/gpu/instances").status_code for _ in range(6)]
    assert statuses == [500, 500, 502, 429, 200, 200]
    remaining = [fault["times"] for fault in simulator.control.faults()]
    assert remaining == [0, 0, 0]
    assert calls(simulator, LIST) == {"500": 2, "502": 1, "429": 1, "200": 2}


def test_rate_is_seeded(simulator: SimulatorServer, simulator_http: httpx.Client) -> None:
    def run() -> list[int]:
        simulator.control.reset(seed=5)
        simulator.control.set_faults([{"endpoint": LIST, "kind": "error", "rate": 0.5}])
        return [simulator_http.get("/gpu/instances").status_code for _ in range(40)]

    first, again = run(), run()
    assert first == again
    assert 5 < first.count(500) < 35


def test_clear_and_replace(simulator: SimulatorServer, simulator_http: httpx.Client) -> None:
    control = simulator.control
    control.set_faults([{"endpoint": LIST, "kind": "error"}])
    control.set_faults([{"endpoint": "GET /clusters", "kind": "error"}], replace=False)
    assert [f["endpoint"] for f in control.faults()] == [LIST, "GET /clusters"]
    control.clear_faults()
    assert control.faults() == []
    assert simulator_http.get("/gpu/instances").status_code == 200


def test_bad_fault_is_rejected(simulator: SimulatorServer) -> None:
    with pytest.raises(httpx.HTTPStatusError):
        simulator.control.set_faults([{"endpoint": LIST, "kind": "explode"}])


def test_stats_count_every_call(simulator: SimulatorServer, simulator_http: httpx.Client) -> None:
    simulator_http.get("/clusters")
    simulator_http.get("/clusters")
    simulator_http.post(CREATE, json=create_body())
    simulator_http.get("/gpu/instance", params={"instanceId": "ffffffffffffffff"})
    httpx.get(f"{simulator.v1_url}/products")  # no key
    stats = simulator.control.stats()
    assert stats["calls"] == {
        "GET /clusters": {"200": 2},
        "POST /gpu/instance/create": {"200": 1},
        "GET /gpu/instance": {"404": 1},
        "GET /products": {"401": 1},
    }
    assert stats["instancesCreated"] == 1
    simulator.control.reset()
    assert simulator.control.stats() == {"calls": {}, "instancesCreated": 0}


def test_a_caller_that_hangs_up_mid_body_is_counted_not_logged_as_a_crash(
    simulator: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A killed service leaves requests half-sent; a real server just sees the connection go."""
    path = simulator.v1_url.split(str(simulator.port), 1)[1] + "/gpu/instance/create"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {simulator.host}\r\n"
        f"Authorization: Bearer {simulator.api_key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    with socket.create_connection((simulator.host, simulator.port)) as sock:
        sock.sendall(head.encode() + b'{"name": ')
    deadline = time.monotonic() + 10
    while calls(simulator, CREATE_KEY) != {"client_gone": 1} and time.monotonic() < deadline:
        time.sleep(0.02)
    assert calls(simulator, CREATE_KEY) == {"client_gone": 1}
    assert simulator.control.stats()["instancesCreated"] == 0
    assert "Exception in ASGI application" not in caplog.text
