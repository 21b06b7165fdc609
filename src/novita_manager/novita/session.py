"""The request loop every Novita call goes through: pool, breaker, limits, retries, metrics.

Kept apart from the endpoints (`client.py`) because it is the same for all of them and carries
the delicate rules. Every HTTP attempt goes through `_attempt`, which (in order) asks the circuit
breaker, takes a concurrency slot (`slots.UpstreamSlots`, sized like the pool, so calls run in
parallel rather than through a queue; a running instance's details GET goes first), waits for
the pacer when UPSTREAM_RATE_LIMIT is set, sends, then records the verdict on the breaker, the
metrics and the log. `call` repeats attempts on 429, 5xx and transport errors with exponential
backoff or the server's Retry-After (`backoff.py` says why this is a plain loop). The pacer is
`aiolimiter.AsyncLimiter`, a leaky bucket that waits for a free slot, which is exactly "at most
`rate` calls per second, bursts of one second's worth".

Create is special: Novita's create is not idempotent, so once the request may have reached the
server (read timeout, dropped connection, 5xx, malformed reply) it is never resent; the caller gets
NovitaOutcomeUnknown and must look for the instance first. A connect failure (nothing left this
machine) and a 429 (the server refused it) are safe to retry.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import orjson
from aiolimiter import AsyncLimiter
from yarl import URL

from novita_manager import __version__
from novita_manager.backoff import backoff_delay, parse_retry_after
from novita_manager.http_client import Request, Response, Transport, TransportError
from novita_manager.logging import get_logger
from novita_manager.metrics import Metrics
from novita_manager.novita.circuit import CircuitBreaker, CircuitState
from novita_manager.novita.errors import (
    NovitaError,
    NovitaOutcomeUnknown,
    NovitaRateLimited,
    NovitaServerError,
    NovitaTransportError,
    NovitaUnavailable,
    error_for_status,
)
from novita_manager.novita.options import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_RESET_TIMEOUT,
    DEFAULT_TIMEOUT,
)
from novita_manager.novita.parsing import Params
from novita_manager.novita.slots import UpstreamSlots
from novita_manager.upstream_transport import upstream_transport

T = TypeVar("T")

API_VERSION_PREFIX = "/v1"
MAX_RETRY_AFTER = 60.0  # a longer Retry-After is raised to the engine, not slept on

log = get_logger(__name__)


def pacer(rate: float) -> AsyncLimiter:
    """`rate` calls per second, bursts of one second's worth (at least one call)."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    burst = max(1.0, float(math.ceil(rate)))
    return AsyncLimiter(burst, burst / rate)


class NovitaSession:
    """One connection pool with its breaker, limits and retry loop; `NovitaClient` adds
    endpoints."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        rate_limit: float = 0.0,
        breaker: CircuitBreaker | None = None,
        metrics: Metrics | None = None,
        transport: Transport | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        root = base_url.rstrip("/")
        if not root.endswith(API_VERSION_PREFIX):
            root += API_VERSION_PREFIX
        self.base_url = root
        self._max_retries = max(0, max_retries)
        self._backoff_base = backoff_base
        self._metrics = metrics
        self._slots = UpstreamSlots(max_concurrency)
        self._pacer = pacer(rate_limit) if rate_limit > 0 else None
        if breaker is None:
            breaker = CircuitBreaker(DEFAULT_FAILURE_THRESHOLD, DEFAULT_RESET_TIMEOUT)
        self._breaker = breaker
        self._breaker.add_listener(self._on_circuit_change)
        if metrics is not None:
            metrics.set_circuit_state(self._breaker.state)
        # aiohttp (novita_manager/http_client.py), through the environment's proxy if it names
        # one, unless a test gives its own transport. Idle connections are not kept past 2 s:
        # servers close them after a few seconds (uvicorn, the simulator's server, after 5 s).
        self._transport: Transport = transport or upstream_transport(
            root, timeout=timeout, max_connections=max_concurrency, keepalive_expiry=2.0
        )
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"novita-manager/{__version__}",
        }

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def call(
        self,
        method: str,
        path: str,
        parse: Callable[[Response], T],
        *,
        params: Params | None = None,
        body: dict[str, Any] | None = None,
        create: bool = False,
        urgent: bool = False,
    ) -> T:
        """Send until an answer, retrying what is safe to retry; `parse` reads a 2xx reply.
        `urgent`: take the next free upstream slot before the other waiting calls (`slots.py`)."""
        endpoint = f"{method} {path}"
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(
                    method, path, endpoint, attempt, parse, params, body, urgent
                )
            except NovitaError as error:
                if create and _may_have_reached_server(error):
                    log.warning(
                        "novita_create_outcome_unknown",
                        method=method,
                        path=path,
                        attempt=attempt,
                        outcome=error.outcome,
                        status=error.status,
                    )
                    raise NovitaOutcomeUnknown(
                        f"create may or may not have happened: {error.message}",
                        cause=error,
                        status=error.status,
                        reason=error.reason,
                        endpoint=endpoint,
                    ) from error
                delay = self._retry_delay(error, attempt)
                if delay is None:
                    raise
                if self._metrics is not None:
                    self._metrics.record_retry(endpoint)
                log.info(
                    "novita_retry",
                    method=method,
                    path=path,
                    attempt=attempt,
                    outcome=error.outcome,
                    status=error.status,
                    delay_ms=round(delay * 1000),
                )
                await asyncio.sleep(delay)

    async def _send(
        self, method: str, path: str, params: Params | None, body: dict[str, Any] | None
    ) -> Response:
        """One request to the transport, read whole. `path` is under the base URL, or absolute
        (the GPU-metrics fallback at the host's root)."""
        absolute = path.startswith(("http://", "https://"))
        url = URL(path if absolute else self.base_url + path)
        if params:
            url = url.with_query(params)
        content = None if body is None else orjson.dumps(body)
        return await self._transport.send(Request(method, url, self._headers, content))

    def _retry_delay(self, error: NovitaError, attempt: int) -> float | None:
        """Seconds before the next attempt, or None to give up and raise `error`."""
        if attempt > self._max_retries:
            return None
        if not isinstance(error, NovitaRateLimited | NovitaServerError | NovitaTransportError):
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= MAX_RETRY_AFTER else None
        return backoff_delay(attempt, self._backoff_base)

    async def _attempt(
        self,
        method: str,
        path: str,
        endpoint: str,
        attempt: int,
        parse: Callable[[Response], T],
        params: Params | None,
        body: dict[str, Any] | None,
        urgent: bool = False,
    ) -> T:
        try:
            self._breaker.before_call()
        except NovitaUnavailable as unavailable:
            unavailable.endpoint = endpoint
            self._finish(method, path, endpoint, attempt, unavailable.outcome, None, 0.0)
            raise
        decided = False
        try:
            async with self._slots.slot(urgent=urgent):
                if self._pacer is not None:
                    await self._pacer.acquire()
                started = time.perf_counter()
                try:
                    response = await self._send(method, path, params, body)
                except TransportError as exc:
                    self._breaker.record_failure()
                    decided = True
                    failed = _transport_error(exc, endpoint)
                    elapsed = time.perf_counter() - started
                    self._finish(method, path, endpoint, attempt, failed.outcome, None, elapsed)
                    raise failed from exc
            elapsed = time.perf_counter() - started
            status = response.status_code
            if status >= 500:
                self._breaker.record_failure()
            else:
                self._breaker.record_success()  # any reply below 500 proves the upstream is up
            decided = True
        finally:
            if not decided:
                self._breaker.release()
        if 200 <= status < 300:
            try:
                result = parse(response)
            except (ValueError, TypeError, KeyError) as exc:  # pydantic's ValidationError too
                self._finish(method, path, endpoint, attempt, "malformed", status, elapsed)
                raise NovitaTransportError(
                    f"malformed reply: {type(exc).__name__}",
                    outcome="malformed",
                    request_sent=True,
                    status=status,
                    endpoint=endpoint,
                ) from exc
            self._finish(method, path, endpoint, attempt, "ok", status, elapsed)
            return result
        retry_after = (
            parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
        )
        error = error_for_status(status, response.text, endpoint=endpoint, retry_after=retry_after)
        self._finish(method, path, endpoint, attempt, error.outcome, status, elapsed, error.reason)
        raise error

    def _finish(
        self,
        method: str,
        path: str,
        endpoint: str,
        attempt: int,
        outcome: str,
        status: int | None,
        seconds: float,
        reason: str | None = None,
    ) -> None:
        """Count and log one attempt (method, path, status, duration, attempt); never headers."""
        if self._metrics is not None:
            self._metrics.record_upstream(endpoint, outcome, seconds)
        level = log.debug if outcome in ("ok", "not_found") else log.info
        level(
            "novita_call",
            method=method,
            path=path,
            status=status,
            outcome=outcome,
            reason=reason,
            duration_ms=round(seconds * 1000, 1),
            attempt=attempt,
        )

    def _on_circuit_change(self, state: CircuitState) -> None:
        if self._metrics is not None:
            self._metrics.set_circuit_state(state)
        log.warning("novita_circuit", state=state, base_url=self.base_url)


def _may_have_reached_server(error: NovitaError) -> bool:
    if isinstance(error, NovitaServerError):
        return True
    return isinstance(error, NovitaTransportError) and error.request_sent


def _transport_error(exc: TransportError, endpoint: str) -> NovitaTransportError:
    """Classify a failed exchange; only a failure before any byte was written (a failed connect)
    proves the request never left (`http_client.TransportError.sent`)."""
    outcome = "timeout" if exc.timeout else "network_error"
    detail = str(exc)[:200] or type(exc).__name__
    return NovitaTransportError(
        f"{type(exc).__name__}: {detail}",
        outcome=outcome,
        request_sent=exc.sent,
        endpoint=endpoint,
    )
