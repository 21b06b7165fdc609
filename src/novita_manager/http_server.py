"""Connection hygiene for the HTTP server: uvicorn's httptools protocol with limits it lacks.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) but has no limit on how long a
client may take to send a request head, none on the size of that head with httptools (h11 stops
at 16 KiB but answers a plain-text 400), and its `limit_concurrency` only answers 503 once a
request head has been read: a connection that never finishes its head is never refused. So:

- HTTP_HEADER_TIMEOUT: a connection whose request head is not complete within this many seconds
  of the connection opening (or of the first byte of the next request on a kept-alive
  connection) is closed without an answer.
- MAX_HEADER_BYTES (16 KiB, h11's default): a request line plus headers larger than this answers
  431 with the `PAYLOAD_TOO_LARGE` envelope and the connection is closed; nothing more is buffered.
- HTTP_MAX_CONNECTIONS: a connection accepted while that many are already open is answered
  503 SERVICE_UNAVAILABLE (Retry-After: 1) at once and closed, before anything is read.
- HTTP_KEEPALIVE_TIMEOUT: uvicorn's `timeout_keep_alive`.
- Admission before routing: once a request head is parsed, an /api request that admission
  (api/admission.py) refuses is answered 503 here, from the protocol, without an ASGI task, a
  request cycle or a pass through the middleware stack, and the connection stays open. Only
  requests without a body (reads) are refused here; a write the cap refuses goes on to the app's
  AdmissionMiddleware, which closes the connection its body is on. Under reads offered at twice
  the capacity most requests are refused, so what a refusal costs decides how much of the process
  is left (docs/benchmarks.md "Overload" measures both ways; api/raw_answers.py builds the
  answer cheaply). A request admitted here is counted in flight at once (`Admission.admit`)
  and released when its task ends: counted only once its task first ran, every read parsed in
  the same turn of the loop saw the same count, and under overload dozens were admitted past
  the cap in one turn. The app's AdmissionMiddleware remains (and counts) for servers built
  without this protocol, requests with a body and requests pipelined behind another.

`uvicorn_options` builds the uvicorn.Config arguments from Settings (and the app, for its
admission); `novita-manager serve` and the test fixtures both use it, so tests run the same
protocol as production. `serve --workers N` uses `worker_uvicorn_options`: uvicorn pickles its
config into each worker process, so the protocol there is a class importable by name whose
limits each worker sets from its settings.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import Any, ClassVar
from urllib.parse import unquote

import httptools
from starlette.types import ASGIApp
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from novita_manager.api.admission import (
    ADMITTED,
    READ_METHODS,
    Admission,
    Admitted,
    valid_request_id,
)
from novita_manager.api.auth import is_api_path
from novita_manager.api.events import EVENT_STREAM_PATHS
from novita_manager.api.raw_answers import raw_error_response, refusal_answer
from novita_manager.config import Settings
from novita_manager.dashboard import STREAM_PATHS as DASHBOARD_STREAM_PATHS
from novita_manager.errors import PayloadTooLarge, ServiceUnavailable
from novita_manager.logging import get_logger

log = get_logger("novita_manager.http")
MAX_HEADER_BYTES = 16 * 1024
WARN_EVERY = 10.0  # seconds between two warnings about refused connections


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a header-read timeout, a head size limit and a connection cap."""

    header_timeout: ClassVar[float] = 10.0
    admission: ClassVar[Admission | None] = None  # refusals before routing when set
    max_connections: ClassVar[int] = 500
    max_header_bytes: ClassVar[int] = MAX_HEADER_BYTES
    _last_warning: ClassVar[float] = 0.0

    _head_timer: asyncio.TimerHandle | None = None
    _in_head = True  # between requests or inside a request head (not in a body)
    _head_bytes = 0  # received while in a head (counts partial lines the parser still holds)
    _parsed_bytes = 0  # request line and headers the parser handed over (exact)
    _too_large = False
    _refused = False  # the request now parsed was answered 503 by `_refuse_early`
    _admitted: Admitted | None = None  # admitted by `_refuse_early`, until its task starts

    @classmethod
    def _warn(cls, event: str, **fields: Any) -> None:
        now = time.monotonic()
        if now - GuardedHttpToolsProtocol._last_warning >= WARN_EVERY:
            GuardedHttpToolsProtocol._last_warning = now
            log.warning(event, **fields)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._warn(
                "connection_refused", reason="HTTP_MAX_CONNECTIONS", limit=self.max_connections
            )
            error = ServiceUnavailable(
                f"Too many open connections (HTTP_MAX_CONNECTIONS={self.max_connections}); "
                "retry shortly",
                headers={"Retry-After": "1"},
            )
            self.transport.write(raw_error_response(503, "Service Unavailable", error))
            self.transport.close()
            return
        self._start_head_timer()

    def shutdown(self) -> None:
        """Graceful shutdown: an event stream never completes by itself, so its connection is
        closed now (the app sees the disconnect; the client resumes with Last-Event-ID)."""
        cycle = self.cycle
        streaming = cycle is not None and not cycle.response_complete
        path = cycle.scope.get("path") if streaming else None
        if path in EVENT_STREAM_PATHS or path in DASHBOARD_STREAM_PATHS:
            self.transport.close()
            return
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # refused or timed out: nothing more is parsed or buffered
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_header_bytes:
            self._header_too_large()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:  # the parser stopped because a callback below refused the head
            self._header_too_large()
        else:
            super().send_400_response(msg)

    # httptools parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._parsed_bytes = 0
        if self._head_timer is None:
            self._start_head_timer()

    def on_url(self, url: bytes) -> None:
        self._count_parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_parsed(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        admission = self.admission
        if admission is not None and self._refuse_early(admission):
            return
        try:
            super().on_headers_complete()  # starts the request's task (`_start_asgi_task`)
        finally:
            admitted, self._admitted = self._admitted, None
            if admitted is not None:  # admitted, but no task was started: nothing to wait for
                admitted.release()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        """uvicorn's (0.55), and a request the protocol admitted is released when its task ends
        if the app did not release it (a task cancelled before it first ran)."""
        if self.config.reset_contextvars:
            task = self.loop.create_task(cycle.run_asgi(app), context=contextvars.Context())
        else:
            task = self.loop.create_task(cycle.run_asgi(app))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)
        admitted, self._admitted = self._admitted, None
        if admitted is not None:
            task.add_done_callback(admitted.release)

    def on_message_complete(self) -> None:
        if self._refused:
            self._refused = False
            if not self.transport.is_closing():  # as after a response: idle until keep-alive
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )
        else:
            super().on_message_complete()
        self._in_head = True  # what comes next is the head of the next request

    def _refuse_early(self, admission: Admission) -> bool:
        """Answer 503 now if admission refuses this /api request (see the module docstring)."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return False  # pipelined behind a request in progress: answers must keep order
        path = httptools.parse_url(self.url).path.decode("latin-1")
        if not is_api_path(path) or self.parser.should_upgrade():
            return False
        request_id = None
        for name, value in self.headers:
            if name == b"x-request-id":
                request_id = valid_request_id(value.decode("latin-1"))
            elif name == b"transfer-encoding" or (
                name == b"content-length" and value.strip() not in (b"", b"0")
            ):
                return False  # a body follows: the app refuses it (and closes the connection)
        method = self.parser.get_method().decode("latin-1")
        reason = admission.refusal(method)
        if reason is None:
            if unquote(path) not in EVENT_STREAM_PATHS:  # a stream is counted by its own cap
                # counted now, before its task runs (Admission.admit)
                admitted = Admitted(admission, method in READ_METHODS)
                self.scope[ADMITTED] = admitted  # type: ignore[literal-required]
                self._admitted = admitted
            return False
        keep_alive = self.parser.should_keep_alive()
        self.transport.write(refusal_answer(admission, reason, request_id, keep_alive))
        if keep_alive:
            self._refused = True  # on_message_complete, next, arms the keep-alive timer
        else:
            self.transport.close()
        return True

    # Limits
    def _count_parsed(self, size: int) -> None:
        """A head that arrived in one piece is measured here; raising stops the parser, and
        uvicorn's `send_400_response` (overridden above) answers."""
        self._parsed_bytes += size
        if self._parsed_bytes > self.max_header_bytes:
            self._too_large = True
            raise ValueError("request head too large")

    def _start_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.debug("connection_closed", reason="HTTP_HEADER_TIMEOUT", client=self.client)
            self.transport.close()

    def _header_too_large(self) -> None:
        self._cancel_head_timer()
        if self.transport.is_closing():
            return
        self._warn("request_refused", reason="headers too large", client=self.client)
        error = PayloadTooLarge(
            f"The request line and headers are larger than {self.max_header_bytes} bytes",
            details={"maxHeaderBytes": self.max_header_bytes},
        )
        self.transport.write(raw_error_response(431, "Request Header Fields Too Large", error))
        self.transport.close()


def admission_of(app: ASGIApp | None) -> Admission | None:
    """The admission of an app made by `create_app` (None for any other app)."""
    state = getattr(app, "state", None)
    admission = getattr(state, "admission", None)
    return admission if isinstance(admission, Admission) else None


def protocol_class(
    settings: Settings, app: ASGIApp | None = None
) -> type[GuardedHttpToolsProtocol]:
    """A protocol class carrying these settings (uvicorn instantiates it per connection) and,
    given the app, its admission for refusals before routing."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "header_timeout": settings.http_header_timeout,
            "max_connections": settings.http_max_connections,
            "admission": admission_of(app),
        },
    )


def uvicorn_options(settings: Settings, app: ASGIApp | None = None) -> dict[str, Any]:
    """The uvicorn.Config arguments that carry the connection limits of `settings` (and the
    refusals of `app`'s admission before routing)."""
    return {
        "http": protocol_class(settings, app),
        "timeout_keep_alive": settings.http_keepalive_timeout,
    }


class WorkerHttpToolsProtocol(GuardedHttpToolsProtocol):
    """The protocol of `serve --workers N`, configured in each worker by `configure_worker_protocol`
    (a class made by `protocol_class` cannot be pickled into the worker processes)."""


def configure_worker_protocol(
    settings: Settings, app: ASGIApp | None = None
) -> type[GuardedHttpToolsProtocol]:
    WorkerHttpToolsProtocol.header_timeout = settings.http_header_timeout
    WorkerHttpToolsProtocol.max_connections = settings.http_max_connections
    WorkerHttpToolsProtocol.admission = admission_of(app)
    return WorkerHttpToolsProtocol


def worker_uvicorn_options(settings: Settings) -> dict[str, Any]:
    """`uvicorn_options` for several worker processes (HTTP_MAX_CONNECTIONS is per worker)."""
    return {
        "http": configure_worker_protocol(settings),
        "timeout_keep_alive": settings.http_keepalive_timeout,
    }
