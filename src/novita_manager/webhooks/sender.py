"""One HTTP attempt of a webhook, classified for the retry policy.

Outcomes (`AttemptResult`):

- 2xx: delivered.
- 408, 429, 5xx, timeouts and connection errors: retryable; `Retry-After` (seconds or an HTTP
  date) is read on 429 and 503 and capped at one hour.
- Other 4xx: not retryable (the receiver rejected the event; retrying would not change that).
- 3xx: redirects are never followed (a redirect could point anywhere, including inside our
  network); it is a failure that is not retried, because the configured URL is wrong.
- Refused by the SSRF guard (at validation or connect time): a recorded failure, not retryable.

One `WebhookSender` per process keeps the HTTP transports (aiohttp sessions,
`novita_manager/http_client.py`; one per `allow_private` value, so a pooled connection opened
without the guard is never reused with it). The whole attempt, including DNS and connect, is
bounded by `timeout`. Errors name the receiver's origin, never its URL's path or query (a
webhook URL can carry its secret there), and headers (the signature) are never logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from yarl import URL

from novita_manager import __version__
from novita_manager.backoff import parse_retry_after as read_retry_after
from novita_manager.http_client import HttpTransport, InvalidUrl, Request, TransportError
from novita_manager.webhooks.ssrf import WebhookUrlRefused, validate_webhook_url
from novita_manager.webhooks.transport import Resolver, guarded_transport

MAX_RETRY_AFTER = 3600.0
USER_AGENT = f"novita-manager/{__version__} (webhooks)"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one attempt did; `refused` marks an SSRF refusal (a kind of non-retryable failure)."""

    status_code: int | None
    error: str | None
    duration_ms: float
    retry_after: float | None
    retryable: bool
    delivered: bool
    refused: bool = False


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A receiver's Retry-After in seconds, capped so that one receiver cannot park a delivery."""
    seconds = read_retry_after(value, now=now)
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER)


def classify_status(status: int, retry_after_header: str | None) -> AttemptResult:
    """The policy for a received HTTP status (duration filled in by the caller)."""
    if 200 <= status < 300:
        return AttemptResult(status, None, 0.0, None, retryable=False, delivered=True)
    if 300 <= status < 400:
        error = f"receiver answered {status} (redirect); redirects are not followed"
        return AttemptResult(status, error, 0.0, None, retryable=False, delivered=False)
    retry_after = parse_retry_after(retry_after_header) if status in (429, 503) else None
    retryable = status in (408, 429) or status >= 500
    return AttemptResult(
        status, f"receiver answered {status}", 0.0, retry_after, retryable, delivered=False
    )


class WebhookSender:
    """Sends webhook requests through the SSRF-guarded transport; close with `aclose()`."""

    def __init__(self, *, resolver: Resolver | None = None) -> None:
        self._resolver = resolver
        self._transports: dict[bool, HttpTransport] = {}

    def _transport(self, allow_private: bool) -> HttpTransport:
        transport = self._transports.get(allow_private)
        if transport is None:
            transport = guarded_transport(allow_private=allow_private, resolver=self._resolver)
            self._transports[allow_private] = transport
        return transport

    async def send(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        timeout: float,
        allow_private: bool,
    ) -> AttemptResult:
        """POST `body` to `url` once; never raises for network or HTTP failures."""
        started = time.perf_counter()

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 3)

        def failure(error: str, *, retryable: bool, refused: bool = False) -> AttemptResult:
            return AttemptResult(None, error, elapsed(), None, retryable, False, refused)

        try:
            validate_webhook_url(url, allow_private)
            transport = self._transport(allow_private)
            request = Request(
                "POST",
                URL(url),
                {"User-Agent": USER_AGENT, "Content-Type": "application/json", **headers},
                body,
                timeout=timeout,
            )
            async with asyncio.timeout(timeout):
                response = await transport.send(request)
        except WebhookUrlRefused as error:
            return failure(f"refused: {error.reason}", retryable=False, refused=True)
        except TimeoutError:
            return failure(f"timed out after {timeout:g} s", retryable=True)
        except TransportError as error:
            if error.timeout:
                return failure(f"timed out after {timeout:g} s", retryable=True)
            if isinstance(error, InvalidUrl):
                return failure(f"invalid URL: {error}", retryable=False)
            return failure(f"{type(error).__name__}: {error}", retryable=True)
        except ValueError as error:  # yarl: a URL it cannot parse
            return failure(f"invalid URL: {error}", retryable=False)
        result = classify_status(response.status_code, response.headers.get("retry-after"))
        return AttemptResult(
            result.status_code,
            result.error,
            elapsed(),
            result.retry_after,
            result.retryable,
            result.delivered,
        )

    async def aclose(self) -> None:
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.aclose()

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def send_webhook(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    allow_private: bool,
    *,
    sender: WebhookSender | None = None,
) -> AttemptResult:
    """One attempt through `sender` (the process's shared one), or a short-lived sender."""
    if sender is not None:
        return await sender.send(url, body, headers, timeout=timeout, allow_private=allow_private)
    async with WebhookSender() as own:
        return await own.send(url, body, headers, timeout=timeout, allow_private=allow_private)
