"""A lean HTTP/1.1 keep-alive transport for httpx: asyncio protocols and httptools' C parser.

Shared by the upstream client (`novita/session.py`) and the webhook sender. Why: profiled with
py-spy on the 1,000-lifecycle benchmark, each upstream call through httpx's
default transport (httpcore over anyio, h11's pure-Python parser, a readability probe of the
socket before every reuse) cost several times the request's own work, and the engine makes
about four such calls per instance (create, the GET at running, its share of the account
listing). This transport keeps httpx's client (the request loop, errors, `MockTransport` in
tests) and replaces only the connection layer: a connection is an `asyncio.Protocol` that feeds
`httptools.HttpResponseParser`; idle connections wait in a pool per origin and are reused unless
the server closed them (the loop has then already told the protocol).

What it does not do, deliberately: HTTP/2, proxies (a client given a transport ignores proxy
environment variables anyway), `Expect: 100-continue`, streaming bodies (the upstream's answers
are small JSON documents, read whole; a webhook receiver's body is not needed), upgrades.
Errors are httpx's own classes with httpcore's meaning: `ConnectError`/`ConnectTimeout` only
when the request certainly never left, so the session's "was a create sent?" reading
(`session._transport_error`) stays right. An idle connection is reused for at most
`keepalive_expiry` seconds (servers close idle ones after a few seconds; reusing one they are
closing fails the request), and idle connections of every origin are pruned now and then.

`addresses`: the webhook sender's SSRF guard (`webhooks/transport.py`) resolves and checks the
host itself and gives the addresses to connect to; TLS still verifies the URL's host name.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import cast

import httptools
import httpx

MAX_IDLE_PER_ORIGIN = 32
PRUNE_EVERY = 256  # requests between two sweeps of every origin's idle connections
Origin = tuple[str, str, int]
Addresses = Callable[[str, int, float | None], Awaitable[list[str]]]
"""(host, port, timeout) -> the IP addresses to try, in order (it may refuse by raising)."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0  # monotonic, when it was put back in the pool
        self._parser: httptools.HttpResponseParser | None = None
        self._done: asyncio.Future[None] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._status = 0
        self._keep_alive = False
        self._complete = False

    # asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:  # bytes while idle: the connection is not in a usable state
            self.close()
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(httpx.RemoteProtocolError(f"malformed response: {error}"))

    def eof_received(self) -> bool | None:
        self.closed = True
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._complete:
            self._fail(httpx.RemoteProtocolError("server disconnected without a full response"))

    # httptools callbacks ---------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._status = self._parser.get_status_code()
        self._keep_alive = self._parser.should_keep_alive()  # only known before the end

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete = True
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    # Use ------------------------------------------------------------------------------------

    def _fail(self, error: Exception) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(
        self, head: bytes, body: bytes, read_timeout: float | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        """Send one request, read its response: status, headers, body, keep-alive."""
        assert self.transport is not None
        self._parser = httptools.HttpResponseParser(self)
        self._headers, self._body, self._status, self._complete = [], [], 0, False
        self._keep_alive = False
        self._done = asyncio.get_running_loop().create_future()
        try:
            self.transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                self.transport.write(body)
        except (OSError, RuntimeError) as error:
            self.close()
            raise httpx.WriteError(str(error) or type(error).__name__) from error
        try:
            async with asyncio.timeout(read_timeout):
                await self._done
        except TimeoutError:
            self.close()
            raise httpx.ReadTimeout("timed out waiting for the response") from None
        keep_alive = self._keep_alive and not self.closed
        self._parser, self._done = None, None
        return self._status, self._headers, b"".join(self._body), keep_alive


class Http1Transport(httpx.AsyncBaseTransport):
    """httpx transport over `_Connection`s, pooled per origin (see the module docstring)."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_expiry: float = 5.0,
        addresses: Addresses | None = None,
    ) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._ssl_context = ssl_context
        self._expiry = keepalive_expiry
        self._addresses = addresses
        self._closed = False
        self._requests = 0

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("the transport is closed")
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}")
        port = url.port or (443 if scheme == "https" else 80)
        origin: Origin = (scheme, url.host, port)
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        head = _head(request)
        async with self._slots:
            connection = self._reusable(origin)
            if connection is None:
                connection = await self._connect(origin, timeouts.get("connect"))
            finished = False
            try:
                status, headers, content, keep_alive = await connection.exchange(
                    head, body, timeouts.get("read")
                )
                finished = True
            finally:
                if not finished:
                    connection.close()
            if keep_alive and not self._closed:
                idle = self._idle.setdefault(origin, deque())
                if len(idle) < MAX_IDLE_PER_ORIGIN:
                    connection.idle_since = time.monotonic()
                    idle.append(connection)
                else:
                    connection.close()
            else:
                connection.close()
        self._requests += 1
        if self._requests % PRUNE_EVERY == 0:
            self._prune()
        return httpx.Response(
            status,
            headers=headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": b"HTTP/1.1"},
        )

    def _usable(self, connection: _Connection, now: float) -> bool:
        transport = connection.transport
        return (
            not connection.closed
            and transport is not None
            and not transport.is_closing()
            and now - connection.idle_since < self._expiry
            and not _readable(transport)
        )

    def _reusable(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be closed
            if self._usable(connection, now):
                return connection
            connection.close()
        return None

    def _prune(self) -> None:
        """Close expired or closed idle connections of every origin; forget empty origins."""
        now = time.monotonic()
        for origin, idle in list(self._idle.items()):
            kept = deque(c for c in idle if self._usable(c, now))
            for connection in idle:
                if connection not in kept:
                    connection.close()
            if kept:
                self._idle[origin] = kept
            else:
                del self._idle[origin]

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        targets = [host] if self._addresses is None else await self._addresses(host, port, timeout)
        context = self._ssl() if scheme == "https" else None
        error: Exception | None = None
        for target in targets:
            try:
                return await self._open(target, port, context, host, timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout) as failed:
                error = failed
        raise error or httpx.ConnectError(f"{host} has no address")

    @staticmethod
    async def _open(
        target: str, port: int, context: ssl.SSLContext | None, host: str, timeout: float | None
    ) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, protocol = await loop.create_connection(
                    _Connection,
                    target,
                    port,
                    ssl=context,
                    server_hostname=host if context else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except (OSError, ssl.SSLError) as error:
            raise httpx.ConnectError(f"{type(error).__name__}: {error}") from error
        return protocol

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _head(request: httpx.Request) -> bytes:
    """The request line and headers (httpx has set Host and Content-Length already)."""
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        lines += [name, b": ", value, b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines)


def _readable(transport: asyncio.Transport) -> bool:
    """Whether an idle connection has something to read: the server's close (or stray bytes)
    that the event loop has not handed to the protocol yet, as happens on a busy loop. Such a
    connection is not reused: a request written into it would fail with no answer, and for a
    create that would mean an unknown outcome (seen under load before this check)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
