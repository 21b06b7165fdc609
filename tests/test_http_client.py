"""The HTTP client (aiohttp under `http_client.HttpTransport`) against scripted servers on real
sockets: reuse, closes, and above all which failures count as "never sent" (only those before any
byte of the request was written) and that a POST is never sent twice by the client itself."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from yarl import URL

from novita_manager.http_client import (
    ConnectError,
    ConnectTimeout,
    ExchangeError,
    HttpTransport,
    ReadTimeout,
    Request,
    Response,
    TransportError,
)
from novita_manager.webhooks.transport import guarded_transport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A TCP server on 127.0.0.1 whose connections run `handler`; counts connections and
    request lines."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.lines: list[str] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    """The request line, the head and the body of one request, or None at the end."""
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
    return lines[0], head.decode(), body


def answer(body: bytes, *, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"{extra}\r\n"
    ).encode() + body


def serving(server_of: Callable[[], Server], reply: Callable[[int], bytes | None]) -> Handler:
    """Reads requests; answers the n-th (1-based, over all connections) with `reply(n)`, or
    closes the connection without answering when it gives None."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = server_of()
        while (request := await read_request(reader)) is not None:
            server.lines.append(request[0])
            data = reply(len(server.lines))
            if data is None:
                return
            writer.write(data)
            await writer.drain()

    return handler


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every request on the connection with its request line, head and body."""
    while (request := await read_request(reader)) is not None:
        line, head, body = request
        document = {"line": line, "head": head, "body": body.decode()}
        writer.write(answer(json.dumps(document).encode()))
        await writer.drain()


Serve = Callable[..., Awaitable[Server]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[Server] = []

    async def start(handler: Handler | None = None, reply: Any = None) -> Server:
        server = Server(echo)
        if reply is not None:
            server.handler = serving(lambda: server, reply)
        elif handler is not None:
            server.handler = handler
        server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        assert server.server is not None
        server.server.close()


def request(base: str, path: str = "/x", method: str = "GET", **options: Any) -> Request:
    body = options.pop("body", b"{}" if method == "POST" else None)
    return Request(method, URL(base + path), {"Accept": "application/json"}, body, **options)


async def failure(transport: HttpTransport, sent: Request) -> TransportError:
    with pytest.raises(TransportError) as caught:
        await transport.send(sent)
    return caught.value


async def test_requests_share_one_kept_alive_connection(serve: Serve) -> None:
    server = await serve(echo)
    transport = HttpTransport(timeout=5)
    try:
        query = URL(server.url + "/gpu/instances").with_query({"pageSize": 20, "pageNum": 1})
        first = await transport.send(Request("GET", query, {}))
        second = await transport.send(request(server.url, "/gpu/instance/create", "POST"))
    finally:
        await transport.aclose()
    assert first.status_code == 200
    assert first.json()["line"] == "GET /gpu/instances?pageSize=20&pageNum=1 HTTP/1.1"
    assert second.json()["line"] == "POST /gpu/instance/create HTTP/1.1"
    assert second.json()["body"] == "{}"
    assert server.connections == 1


async def test_a_chunked_answer_is_read_whole(serve: Serve) -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for part in (b'{"a": ', b"[1, 2]", b"}"):
            writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    server = await serve(chunked)
    transport = HttpTransport(timeout=5)
    try:
        assert (await transport.send(request(server.url))).json() == {"a": [1, 2]}
    finally:
        await transport.aclose()


@pytest.mark.parametrize("extra", ["connection: close\r\n", ""])
async def test_closed_connections_are_not_reused(serve: Serve, extra: str) -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"{}", extra=extra))  # "" : keep-alive offered, then closed idle
        await writer.drain()

    server = await serve(once)
    transport = HttpTransport(timeout=5)
    try:
        for _ in range(3):
            assert (await transport.send(request(server.url, method="POST"))).json() == {}
            await asyncio.sleep(0.05)  # the close reaches the client's loop
    finally:
        await transport.aclose()
    assert server.connections == 3


async def test_an_expired_idle_connection_is_not_reused(serve: Serve) -> None:
    server = await serve(echo)
    transport = HttpTransport(timeout=5, keepalive=0.05)
    try:
        for _ in range(2):
            assert (await transport.send(request(server.url))).status_code == 200
            await asyncio.sleep(0.15)
    finally:
        await transport.aclose()
    assert server.connections == 2


async def test_a_refused_connect_was_never_sent() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        transport = HttpTransport(timeout=5)
        try:
            error = await failure(transport, request(f"http://127.0.0.1:{port}", method="POST"))
        finally:
            await transport.aclose()
    assert isinstance(error, ConnectError)
    assert not error.sent
    assert not error.timeout


async def test_waiting_for_a_free_connection_too_long_was_never_sent(serve: Serve) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # no answer; until the client gives up and closes

    server = await serve(silent)
    transport = HttpTransport(timeout=0.3, limit=1)
    try:
        # The first holds the one connection longer than the second may wait for it (with equal
        # limits, a loaded machine let the second have the connection the first gave up).
        busy = asyncio.create_task(transport.send(request(server.url, method="POST", timeout=3)))
        deadline = time.monotonic() + 5
        while server.connections < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the request written on it
        error = await failure(transport, request(server.url, method="POST"))
        assert isinstance(error, ConnectTimeout)
        assert not error.sent
        assert isinstance((await asyncio.gather(busy, return_exceptions=True))[0], ReadTimeout)
    finally:
        await transport.aclose()
    assert server.connections == 1  # the second request never had a connection


async def test_a_slow_resolution_is_a_connect_timeout_never_sent(serve: Serve) -> None:
    server = await serve(echo)
    port = int(server.url.rsplit(":", 1)[1])

    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return ["127.0.0.1"]

    transport = guarded_transport(allow_private=True, resolver=slow, timeout=0.2)
    try:
        error = await failure(transport, request(f"http://hooks.example:{port}", method="POST"))
    finally:
        await transport.aclose()
    assert isinstance(error, ConnectTimeout)
    assert not error.sent
    assert server.connections == 0


async def test_read_then_closed_or_reset_may_have_been_sent(serve: Serve) -> None:
    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # with SO_LINGER 0: an RST

    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")
        await writer.drain()

    for handler in (close, reset, half):
        server = await serve(handler)
        transport = HttpTransport(timeout=5)
        try:
            error = await failure(transport, request(server.url, "/create", "POST"))
        finally:
            await transport.aclose()
        assert isinstance(error, ExchangeError), handler
        assert error.sent
        assert server.connections == 1  # and not sent again


async def test_a_silent_server_is_a_read_timeout_after_sending(serve: Serve) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # no answer; until the client gives up and closes

    server = await serve(silent)
    transport = HttpTransport(timeout=0.2)
    try:
        for _ in range(2):  # the timed-out connection is not reused
            error = await failure(transport, request(server.url, method="POST"))
            assert isinstance(error, ReadTimeout)
            assert error.sent
            assert error.timeout
    finally:
        await transport.aclose()
    assert server.connections == 2


async def test_a_post_on_a_reused_connection_is_never_resent_by_the_client(serve: Serve) -> None:
    """The second request goes out on the kept-alive connection, which the server reads and
    then closes without answering: a POST fails as "may have been sent" and reached the server
    once; aiohttp retries only idempotent methods (a GET is sent once more, on a new connection)."""
    for method, copies in (("POST", 1), ("GET", 2)):
        server = await serve(reply=lambda n: answer(b"{}") if n == 1 else None)
        transport = HttpTransport(timeout=5)
        try:
            assert (await transport.send(request(server.url, method=method))).json() == {}
            error = await failure(transport, request(server.url, "/create", method))
        finally:
            await transport.aclose()
        assert isinstance(error, ExchangeError)
        assert error.sent
        assert server.lines.count(f"{method} /create HTTP/1.1") == copies, method


async def test_a_close_the_loop_has_not_seen_yet_is_not_reused() -> None:
    """The server closes an idle connection while the client's loop is busy (blocked here), so
    the protocol has not been told yet; the socket is readable, and a new connection carries
    the POST (aiohttp alone would write it into the closed one: "may have been sent")."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[bytes] = []

    def serve_two() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            accepted.append(conn.recv(65536).split(b"\r\n")[0])
            conn.sendall(answer(b"{}"))  # keep-alive offered
            time.sleep(0.05)
            conn.close()  # then closed while idle

    thread = threading.Thread(target=serve_two, daemon=True)
    thread.start()
    transport = HttpTransport(timeout=5)
    try:
        base = f"http://127.0.0.1:{port}"
        assert (await transport.send(request(base))).json() == {}
        time.sleep(0.3)  # blocks the loop: the close arrives unseen by the protocol
        assert (await transport.send(request(base, "/create", "POST"))).json() == {}
    finally:
        await transport.aclose()
        thread.join(timeout=5)
        listener.close()
    assert accepted == [b"GET /x HTTP/1.1", b"POST /create HTTP/1.1"]


async def test_errors_name_the_origin_not_the_path_or_query() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        transport = HttpTransport(timeout=5)
        try:
            error = await failure(transport, request(base, "/hooks/s3cr3t?token=t0k3n", "POST"))
        finally:
            await transport.aclose()
    assert "s3cr3t" not in str(error)
    assert "t0k3n" not in str(error)


async def test_cookies_are_never_kept(serve: Serve) -> None:
    async def sets_cookie(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (got := await read_request(reader)) is not None:
            body = json.dumps({"head": got[1]}).encode()
            writer.write(answer(body, extra="set-cookie: session=abc; Path=/\r\n"))
            await writer.drain()

    server = await serve(sets_cookie)
    transport = HttpTransport(timeout=5)
    try:
        heads = [(await transport.send(request(server.url))).json()["head"] for _ in range(2)]
    finally:
        await transport.aclose()
    assert all("cookie" not in head.lower() for head in heads)


def test_it_runs_under_uvloop_as_the_service_does() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> tuple[list[Response], int]:
        server = Server(echo)
        server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        transport = HttpTransport(timeout=5)
        try:
            answers = [await transport.send(request(server.url, f"/n/{i}")) for i in range(3)]
        finally:
            await transport.aclose()
            server.server.close()
        return answers, server.connections

    answers, connections = uvloop.run(scenario())
    assert [a.json()["line"] for a in answers] == [f"GET /n/{i} HTTP/1.1" for i in range(3)]
    assert connections == 1
