"""Connection hygiene (http_server.py) against the real server: slow heads are cut off, huge
heads refused, idle keep-alive connections closed, connections beyond the cap refused."""

from __future__ import annotations

import select
import socket
import time

import httpx
import pytest

from novita_manager.config import load_settings
from novita_manager.http_server import MAX_HEADER_BYTES, GuardedHttpToolsProtocol, uvicorn_options
from tests.fixtures.raw_http import (
    connect,
    exchange,
    parse,
    read_response,
    read_until_closed,
    request_head,
)

HEADER_TIMEOUT = 1.0
MARGIN = 1.5


def is_closed(sock: socket.socket) -> bool:
    """True once the server has closed the connection (FIN or RST seen)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(65536) == b""
    except (ConnectionResetError, BlockingIOError):
        return True


def test_uvicorn_options_carry_the_settings() -> None:
    settings = load_settings(
        novita_api_base_url="http://127.0.0.1:1/gpu-instance/openapi",
        http_header_timeout=3.5,
        http_keepalive_timeout=7,
        http_max_connections=42,
    )
    options = uvicorn_options(settings)
    protocol = options["http"]
    assert issubclass(protocol, GuardedHttpToolsProtocol)
    assert (protocol.header_timeout, protocol.max_connections) == (3.5, 42)
    assert options["timeout_keep_alive"] == 7
    assert GuardedHttpToolsProtocol.header_timeout == 10.0  # the base class is not changed


def test_slow_headers_are_cut_off_while_normal_requests_still_work(simulator, make_service) -> None:
    service = make_service(simulator.base_url, HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT))
    started = time.monotonic()
    slow = []
    for _ in range(50):
        sock = connect(service.base_url)
        sock.sendall(b"GET /api/instances HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        slow.append(sock)
    closed_after: dict[int, float] = {}
    normal = []
    n = 0
    while len(closed_after) < len(slow) and time.monotonic() - started < HEADER_TIMEOUT + 5:
        for index, sock in enumerate(slow):
            if index in closed_after:
                continue
            if is_closed(sock):
                closed_after[index] = time.monotonic() - started
                continue
            try:
                sock.sendall(f"X-Slow-{n}: {n}\r\n".encode())  # one header line at a time
            except OSError:
                closed_after[index] = time.monotonic() - started
        normal.append(httpx.get(f"{service.base_url}/api/instances", timeout=5).status_code)
        n += 1
        time.sleep(0.2)
    for sock in slow:
        sock.close()
    assert len(closed_after) == 50, f"only {len(closed_after)} of 50 slow connections closed"
    assert min(closed_after.values()) >= HEADER_TIMEOUT * 0.9
    assert max(closed_after.values()) <= HEADER_TIMEOUT + MARGIN, max(closed_after.values())
    assert normal
    assert set(normal) == {200}


def test_a_connection_that_sends_nothing_is_closed(simulator, make_service) -> None:
    service = make_service(simulator.base_url, HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT))
    with connect(service.base_url, timeout=HEADER_TIMEOUT + MARGIN) as sock:
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert HEADER_TIMEOUT * 0.9 <= time.monotonic() - started <= HEADER_TIMEOUT + MARGIN


def test_keep_alive_idle_is_closed_and_a_slow_next_head_too(simulator, make_service) -> None:
    service = make_service(
        simulator.base_url, HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT), HTTP_KEEPALIVE_TIMEOUT="0.5"
    )
    request = request_head("GET", "/health/live", {})
    with connect(service.base_url, timeout=5) as sock:
        sock.sendall(request)
        assert read_response(sock).status == 200
        started = time.monotonic()
        assert read_until_closed(sock) == b""  # idle keep-alive: closed after 0.5 s
        assert time.monotonic() - started < 0.5 + MARGIN
    with connect(service.base_url, timeout=5) as sock:
        sock.sendall(request)
        assert read_response(sock).status == 200
        sock.sendall(b"GET /health/live HTTP/1.1\r\n")  # the next head starts, never ends
        started = time.monotonic()
        while not is_closed(sock):
            assert time.monotonic() - started < HEADER_TIMEOUT + MARGIN, "not cut off"
            sock.sendall(b"X-Slow: 1\r\n")  # keeps the keep-alive timer from firing
            time.sleep(0.2)


def test_over_long_headers_are_refused_431(simulator, make_service) -> None:
    service = make_service(simulator.base_url)
    huge = request_head("GET", "/api/instances", {"X-Big": "a" * (MAX_HEADER_BYTES + 100)})
    response = exchange(service.base_url, huge)
    assert response.status == 431
    assert response.headers["connection"] == "close"
    error = response.json()["error"]
    assert error["code"] == "PAYLOAD_TOO_LARGE"
    assert error["requestId"] == response.headers["x-request-id"]
    # Endless headers in small pieces are stopped at the limit too, not buffered.
    with connect(service.base_url) as sock:
        sock.sendall(b"GET /api/instances HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sent = 0
        try:
            while sent < 10 * MAX_HEADER_BYTES:
                sock.sendall(b"X-More: " + b"b" * 1000 + b"\r\n")
                sent += 1010
        except OSError:
            pass
        answer = read_until_closed(sock)
        assert sent < 10 * MAX_HEADER_BYTES or answer.startswith(b"HTTP/1.1 431")
    # Headers just under the limit are fine.
    fine = request_head("GET", "/health/live", {"X-Big": "a" * 8000, "Connection": "close"})
    assert exchange(service.base_url, fine).status == 200


def test_connections_beyond_the_cap_are_refused_503_at_once(simulator, make_service) -> None:
    service = make_service(simulator.base_url, HTTP_MAX_CONNECTIONS="10", HTTP_HEADER_TIMEOUT="30")
    idle = [connect(service.base_url) for _ in range(10)]
    try:
        time.sleep(0.2)
        with connect(service.base_url) as extra:
            started = time.monotonic()
            response = parse(read_until_closed(extra), time.monotonic() - started)
        assert response.status == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert response.seconds < 1
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(f"{service.base_url}/api/instances").status_code == 200


@pytest.mark.parametrize("variable", ["HTTP_HEADER_TIMEOUT", "HTTP_KEEPALIVE_TIMEOUT"])
def test_timeouts_must_be_positive(variable: str) -> None:
    from novita_manager.config import ConfigurationError

    with pytest.raises(ConfigurationError, match=variable):
        load_settings(
            novita_api_base_url="http://127.0.0.1:1/gpu-instance/openapi", **{variable.lower(): 0}
        )
