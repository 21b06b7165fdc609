"""The lean HTTP/1.1 transport against scripted servers on real sockets: reuse, closes, errors."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from novita_manager.http1 import Http1Transport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A TCP server on 127.0.0.1 whose connections run `handler`; counts the connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes] | None:
    """The request line and body of one request, or None at the end of the connection."""
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return None
    lines = head.decode().split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return lines[0], body


def answer(body: bytes, *, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"{extra}\r\n"
    ).encode() + body


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every request on the connection with its request line and body."""
    while True:
        try:
            request = await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        if request is None:
            return
        line, body = request
        writer.write(answer(json.dumps({"line": line, "body": body.decode()}).encode()))
        await writer.drain()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(handler: Handler) -> Server:
        server = Server(handler)
        server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.server is not None
        server.server.close()


def client(base_url: str, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, transport=Http1Transport(), timeout=timeout)


async def test_requests_share_one_kept_alive_connection(serve: Callable[..., Any]) -> None:
    server = await serve(echo)
    async with client(server.url) as http:
        first = await http.get("/gpu/instances", params={"pageSize": 20, "pageNum": 1})
        second = await http.post("/gpu/instance/create", json={"name": "a"})
    assert first.status_code == 200
    assert first.json() == {"line": "GET /gpu/instances?pageSize=20&pageNum=1 HTTP/1.1", "body": ""}
    assert second.json() == {"line": "POST /gpu/instance/create HTTP/1.1", "body": '{"name":"a"}'}
    assert server.connections == 1


async def test_a_chunked_answer_is_read_whole(serve: Callable[..., Any]) -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for part in (b'{"a": ', b"[1, 2]", b"}"):
            writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    server = await serve(chunked)
    async with client(server.url) as http:
        response = await http.get("/x")
    assert response.json() == {"a": [1, 2]}


async def test_closed_connections_are_not_reused(serve: Callable[..., Any]) -> None:
    async def once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}", extra="connection: close\r\n"))
        await writer.drain()

    async def once_then_idle_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        writer.write(answer(b"{}"))  # keep-alive offered, then closed while idle
        await writer.drain()

    for handler in (once_then_close, once_then_idle_close):
        server = await serve(handler)
        async with client(server.url) as http:
            for _ in range(3):
                assert (await http.get("/x")).json() == {}
                await asyncio.sleep(0.05)  # the close reaches the client's loop
        assert server.connections == 3


async def test_a_server_that_drops_the_answer_is_a_protocol_error(
    serve: Callable[..., Any],
) -> None:
    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")
        await writer.drain()

    server = await serve(half)
    async with client(server.url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/x")


async def test_a_silent_server_times_out_reading(serve: Callable[..., Any]) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    server = await serve(silent)
    async with client(server.url, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/x")
        # The timed-out connection is not reused: a second request opens another.
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/x")
    assert server.connections == 2


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        async with client(f"http://127.0.0.1:{port}") as http:
            with pytest.raises(httpx.ConnectError):
                await http.get("/x")


def test_it_runs_under_uvloop_as_the_service_does() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> tuple[list[Any], int]:
        server = Server(echo)
        server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        try:
            async with client(server.url) as http:
                answers = [(await http.get(f"/n/{i}")).json()["line"] for i in range(3)]
        finally:
            server.server.close()
        return answers, server.connections

    answers, connections = uvloop.run(scenario())
    assert answers == [f"GET /n/{i} HTTP/1.1" for i in range(3)]
    assert connections == 1


async def test_an_expired_idle_connection_is_not_reused(serve: Callable[..., Any]) -> None:
    server = await serve(echo)
    transport = Http1Transport(keepalive_expiry=0.0)
    async with httpx.AsyncClient(base_url=server.url, transport=transport) as http:
        for _ in range(2):
            assert (await http.get("/x")).status_code == 200
    assert server.connections == 2


async def test_the_addresses_hook_picks_where_to_connect(serve: Callable[..., Any]) -> None:
    server = await serve(echo)
    port = int(server.url.rsplit(":", 1)[1])
    asked: list[tuple[str, int]] = []

    async def addresses(host: str, port: int, timeout: float | None) -> list[str]:
        asked.append((host, port))
        return ["127.0.0.2", "127.0.0.1"]  # the first refuses (nothing listens there)

    transport = Http1Transport(addresses=addresses)
    async with httpx.AsyncClient(transport=transport) as http:
        response = await http.get(f"http://hooks.example:{port}/x")
    assert response.json()["line"] == "GET /x HTTP/1.1"
    assert asked == [("hooks.example", port)]


async def test_a_close_the_loop_has_not_seen_yet_is_not_reused() -> None:
    """The server closes an idle connection while the client's loop is busy (blocked here), so
    the protocol has not been told yet; the socket is readable, and a new connection is used."""
    import threading
    import time

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[int] = []

    def serve_two() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            accepted.append(1)
            conn.recv(65536)
            conn.sendall(answer(b"{}"))  # keep-alive offered
            time.sleep(0.05)
            conn.close()  # then closed while idle

    thread = threading.Thread(target=serve_two, daemon=True)
    thread.start()
    try:
        async with client(f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/x")).json() == {}
            time.sleep(0.3)  # blocks the loop: the close arrives unseen by the protocol
            assert (await http.get("/x")).json() == {}
    finally:
        thread.join(timeout=5)
        listener.close()
    assert len(accepted) == 2
