"""`novita-manager serve` runs with the connection limits of its settings (http_server.py)."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.raw_http import connect, exchange, read_until_closed, request_head

pytestmark = pytest.mark.slow


def test_serve_applies_header_timeout_and_body_limit(simulator, make_service_process) -> None:
    service = make_service_process(
        simulator.base_url, HTTP_HEADER_TIMEOUT="0.5", MAX_REQUEST_BYTES="100", API_KEYS="k-1"
    ).start()
    with connect(service.base_url, timeout=5) as sock:
        sock.sendall(b"GET /api/instances HTTP/1.1\r\n")  # and nothing more
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert time.monotonic() - started < 2.5
    head = request_head(
        "POST", "/api/instances", {"Authorization": "Bearer k-1", "Content-Length": "101"}
    )
    assert exchange(service.base_url, head).status == 413
    unauthenticated = exchange(
        service.base_url, request_head("GET", "/api/instances", {"Connection": "close"})
    )
    assert unauthenticated.status == 401
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
