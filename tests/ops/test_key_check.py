"""The start-up key check against a real simulator that accepts one key: a wrong NOVITA_API_KEY is
one log line (`novita_key_refused`, without the key) and /health says "API key refused by Novita";
a right key is accepted; Novita unreachable at start-up neither blocks nor fails start-up."""

from __future__ import annotations

import time
from typing import Any

import httpx

from novita_manager.services.health import KEY_REFUSED_REASON
from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.server import SimulatorServer, free_port

RIGHT = "sk_right_startup_key"
WRONG = "sk_wrong_startup_key_42"


def health(service) -> dict[str, Any]:
    reply = httpx.get(f"{service.base_url}/health", timeout=15)
    assert reply.status_code == 200, reply.text  # degraded, not unhealthy: work is still stored
    body: dict[str, Any] = reply.json()
    return body


def wait_for_key(service, state: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = health(service)
        if body["checks"]["novita"]["key"]["status"] == state:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_wrong_key_is_one_log_line_and_health_says_why(captured_logs, make_service) -> None:
    with SimulatorServer(SimulatorConfig(api_key=RIGHT)) as server:
        service = make_service(server.base_url, NOVITA_API_KEY=WRONG)
        body = wait_for_key(service, "refused")
        novita = body["checks"]["novita"]
        assert body["status"] == "degraded"
        assert novita["status"] == "degraded"
        assert novita["error"] == KEY_REFUSED_REASON == "API key refused by Novita"
        assert novita["reachable"] is True  # Novita answered: it is the key, not the network
        assert novita["key"]["httpStatus"] == 401
        again = health(service)  # stays so while nothing succeeds
        assert again["checks"]["novita"]["error"] == KEY_REFUSED_REASON
        assert WRONG not in str(body) + str(again)

    refused = captured_logs.events("novita_key_refused")
    assert len(refused) == 1, refused
    assert refused[0]["level"] == "error"
    assert refused[0]["status"] == 401
    assert WRONG not in captured_logs.text


def test_right_key_is_accepted(captured_logs, make_service) -> None:
    with SimulatorServer(SimulatorConfig(api_key=RIGHT)) as server:
        service = make_service(server.base_url, NOVITA_API_KEY=RIGHT)
        body = wait_for_key(service, "accepted")
        assert body["status"] == "healthy"
        assert body["checks"]["novita"]["status"] == "ok"
    assert captured_logs.events("novita_key_refused") == []
    assert len(captured_logs.events("novita_key_accepted")) == 1


def test_unreachable_novita_does_not_block_start_up(captured_logs, make_service) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/gpu-instance/openapi"
    started = time.monotonic()
    service = make_service(nowhere)  # returns once the server answers
    assert time.monotonic() - started < 10
    body = wait_for_key(service, "unknown")
    novita = body["checks"]["novita"]
    assert novita["status"] == "degraded"
    assert novita["reachable"] is False
    assert novita.get("error") != KEY_REFUSED_REASON
    assert captured_logs.events("novita_key_refused") == []
    assert len(captured_logs.events("novita_key_unchecked")) == 1
