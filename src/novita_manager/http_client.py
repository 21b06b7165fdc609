"""The HTTP client of Novita calls and webhook deliveries: aiohttp's `ClientSession`, used directly.

Why aiohttp and not httpx: measured by `bench/http_clients.py` (docs/benchmarks.md "HTTP
clients"), httpx's default transport costs several times aiohttp's CPU per request, and httpx's
Request/Response/AsyncClient layer alone costs about as much as aiohttp's whole request. The
project's hand-written HTTP/1.1 transport (`http1.py`, now gone) was cheaper than httpx but not
than aiohttp, so it was one protocol implementation too many to keep correct.

What this module adds to aiohttp, and why:
- Small own `Request`/`Response` types read whole (the answers are small JSON documents) and a
  `Transport` protocol, so the session, the parsers and the tests do not depend on a library's
  types, and a test can put a scripted transport in the network's place.
- One error classification (`TransportError.sent`): only a failure before any byte of the request
  was written (refused or timed-out connect, DNS, TLS handshake, waiting for a pool slot, an
  invalid URL) is "never sent"; a reset, a dropped connection, a truncated or malformed answer and
  a read timeout are "may have been sent". Novita's create is not idempotent, so the session sends
  a create again blindly only after a "never sent" failure. aiohttp itself retries a request once
  on a pooled connection that turns out closed, but only for idempotent methods (GET, HEAD, PUT,
  DELETE, OPTIONS, TRACE: `aiohttp.client.IDEMPOTENT_METHODS`), never a POST.
- An idle connection whose socket is readable is not reused (`_ProbingConnector`): aiohttp reuses
  an idle connection unless its protocol was told it closed, and on a busy loop a server's close
  can have arrived without the loop having handed it on yet; a POST written into it would fail
  with "may have been sent" (for a create: an unknown outcome and a search before resending).
- No cookies (`DummyCookieJar`: a receiver's cookie must never travel to the next delivery), no
  redirects, no proxy from the environment unless the caller names one (`upstream_transport.py`),
  certificates verified against certifi's bundle (or SSL_CERT_FILE/SSL_CERT_DIR), as httpx did.
"""

from __future__ import annotations

import functools
import os
import select
import ssl
import time
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp
import certifi
import orjson
from aiohttp.abc import AbstractResolver
from aiohttp.client_proto import ResponseHandler
from aiohttp.connector import Connection
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "ExchangeError",
    "HttpTransport",
    "InvalidUrl",
    "ReadTimeout",
    "Request",
    "Response",
    "Transport",
    "TransportError",
    "ssl_context",
]


class Request:
    """One request as the transport sends it: the URL with its query, headers, a body or None,
    and a time limit for the whole exchange (None: the transport's own timeouts)."""

    __slots__ = ("body", "headers", "method", "timeout", "url")

    def __init__(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout


class Response:
    """A response read whole; `headers` are case-insensitive."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(
        self,
        status_code: int,
        headers: Mapping[str, str] | None = None,
        content: bytes = b"",
        *,
        json: Any = None,
    ) -> None:
        self.status_code = status_code
        if isinstance(headers, CIMultiDictProxy | CIMultiDict):
            self.headers: Mapping[str, str] = headers
        else:
            self.headers = CIMultiDict(headers or {})
        self.content = orjson.dumps(json) if json is not None else content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError (orjson.JSONDecodeError) when it is not."""
        return orjson.loads(self.content)


class TransportError(Exception):
    """No answer. `sent`: whether the request may have reached the server (see module docstring);
    `timeout`: whether a time limit ended it."""

    sent = True
    timeout = False


class ConnectError(TransportError):
    """The connection was never made (refused, DNS, TLS handshake): nothing was sent."""

    sent = False


class ConnectTimeout(ConnectError):
    """Connecting (or waiting for a free connection) took too long: nothing was sent."""

    timeout = True


class InvalidUrl(ConnectError):
    """The URL cannot be requested (not http(s), no host): nothing was sent."""


class ExchangeError(TransportError):
    """The connection failed after the request was (or may have been) written."""


class ReadTimeout(ExchangeError):
    """The answer took too long: the request was sent."""

    timeout = True


class Transport(Protocol):
    """Sends one request and reads its answer whole; raises `TransportError` subclasses only."""

    async def send(self, request: Request) -> Response: ...

    async def aclose(self) -> None: ...


def ssl_context(*, trust_env: bool) -> ssl.SSLContext:
    """A verifying context on certifi's bundle, or SSL_CERT_FILE/SSL_CERT_DIR when `trust_env`
    (what httpx did, so the trusted roots did not change with the client).

    One context per source of roots and process, shared by the transports that trust the same
    roots (Novita's and the webhooks' unless the environment names others): loading a bundle
    takes tens of milliseconds of the loop (36 ms for certifi's, py-spy on `bench.burst`), and
    each copy of the roots is memory."""
    if trust_env and os.environ.get("SSL_CERT_FILE"):
        return _context_on(cafile=os.environ["SSL_CERT_FILE"])
    if trust_env and os.environ.get("SSL_CERT_DIR"):
        return _context_on(capath=os.environ["SSL_CERT_DIR"])
    return _context_on(cafile=certifi.where())


@functools.cache
def _context_on(*, cafile: str | None = None, capath: str | None = None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile, capath=capath)


class HttpTransport:
    """`Transport` over one `aiohttp.ClientSession`, made at the first request (it needs the
    running loop). `limit`: connections open at once; `keepalive`: seconds an idle connection
    may be reused (below the few seconds after which servers close idle ones)."""

    def __init__(
        self,
        *,
        timeout: float,
        limit: int = 100,
        keepalive: float = 2.0,
        proxy: str | None = None,
        resolver: AbstractResolver | None = None,
        ssl: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )
        self._limit = limit
        self._keepalive = keepalive
        self._proxy = proxy
        self._resolver = resolver
        self._ssl = ssl
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    @property
    def proxy(self) -> str | None:
        """The proxy every request goes through, or None."""
        return self._proxy

    def _timeout_of(self, request: Request) -> aiohttp.ClientTimeout:
        """The session's timeouts, or one bound on the whole exchange (`Request.timeout`)."""
        seconds = request.timeout
        if seconds is None:
            return self._timeout
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            if len(self._timeouts) > 64:
                self._timeouts.clear()
            # One bound on everything (a time-out while connecting is still reported as
            # ConnectionTimeoutError: never sent); no per-read timer to re-arm on every packet.
            timeout = aiohttp.ClientTimeout(total=seconds)
            self._timeouts[seconds] = timeout
        return timeout

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ConnectError("the transport is closed")
        connector = _ProbingConnector(
            limit=self._limit,
            limit_per_host=0,
            keepalive_timeout=self._keepalive,
            ssl=self._ssl or ssl_context(trust_env=True),
            # A guarding resolver must be asked at every connect: no cached answers.
            use_dns_cache=self._resolver is None,
            resolver=self._resolver,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            proxy=self._proxy,
        )
        return self._session

    async def send(self, request: Request) -> Response:
        session = self._session or self._open()
        try:
            async with session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                allow_redirects=False,
                timeout=self._timeout_of(request),
            ) as answer:
                content = await answer.read()
                return Response(answer.status, answer.headers, content)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise _translate(error, request.url) from error

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _translate(error: BaseException, url: URL) -> TransportError:
    """aiohttp's failure as "never sent" or "may have been sent" (the module docstring). The
    detail names the origin, not the URL: a webhook URL's path or query can be its secret."""
    detail = f"{type(error).__name__}: {error}"
    if url.raw_path not in ("", "/") or url.raw_query_string:
        try:
            origin = str(url.origin())
        except ValueError:  # not an absolute URL
            origin = "the URL"
        detail = detail.replace(str(url), origin).replace(url.human_repr(), origin)
    detail = detail[:300]
    if isinstance(error, aiohttp.ConnectionTimeoutError):  # before ServerTimeoutError
        return ConnectTimeout(detail)
    if isinstance(error, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return InvalidUrl(detail)
    if isinstance(error, aiohttp.ClientConnectorError | aiohttp.ClientHttpProxyError):
        return ConnectError(detail)  # includes DNS, TLS and proxy-connect failures
    if isinstance(error, TimeoutError):  # a read timeout, or the total time spent reading
        return ReadTimeout(detail)
    return ExchangeError(detail)


class _ProbingConnector(aiohttp.TCPConnector):
    """aiohttp's connector that drops idle connections with something to read before reuse."""

    async def _get(self, key: Any, *args: Any, **kwargs: Any) -> Connection | None:
        # A private method of aiohttp's (its arguments have changed across versions: passed on
        # as they come); tests/test_http_client.py fails if the probe stops working.
        # aiohttp takes the oldest idle connection that is connected and not expired: probe in
        # that order up to the first it would take that has nothing to read (one poll, as a rule).
        idle = self._conns.get(key)
        if idle:
            now, expiry = time.monotonic(), self._keepalive_timeout
            for protocol, since in idle:
                if not protocol.is_connected() or (expiry is not None and now - since > expiry):
                    continue  # aiohttp drops it itself
                if not _readable(protocol):
                    break
                protocol.close()  # aiohttp then skips it as no longer connected
        return await super()._get(key, *args, **kwargs)


def _readable(protocol: ResponseHandler) -> bool:
    """Whether an idle connection has something to read: the server's close (or stray bytes)
    the loop has not handed to the protocol yet."""
    transport = protocol.transport
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        poller = select.poll()  # not select.select: it fails for descriptors above 1023
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True
