"""Typed errors of the Novita client, and the one place that maps an HTTP reply to them.

Callers decide by type (and `is_transient`), never by parsing text. Each error keeps the HTTP
status, the upstream `reason` (e.g. VALIDATOR_PARAM) and the message, because the engine records
them on the row and the API shows them to users.
"""

from __future__ import annotations

import json
from typing import Any

from novita_manager.novita.readings import CAPACITY_MESSAGE_MARKERS

MAX_MESSAGE_CHARS = 500
NOT_FOUND_REASONS = frozenset({"RESOURCE_NOT_FOUND", "INSTANCE_NOT_FOUND"})
INSUFFICIENT_REASONS = frozenset({"INSUFFICIENT_RESOURCE", "MIGRATE_INSUFFICIENT_RESOURCE"})


class NovitaError(Exception):
    """Base of every error the client raises."""

    outcome: str = "client_error"  # the metrics label of the call that raised it

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        endpoint: str | None = None,
        retry_after: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.endpoint = endpoint
        self.retry_after = retry_after
        self.metadata = metadata or {}

    def __str__(self) -> str:
        parts = [str(part) for part in (self.status, self.reason) if part is not None]
        prefix = f"[{' '.join(parts)}] " if parts else ""
        where = f" ({self.endpoint})" if self.endpoint else ""
        return f"{prefix}{self.message}{where}"


class NovitaNotFound(NovitaError):
    """404, or a 4xx that says the resource does not exist (RESOURCE_NOT_FOUND, "not fount")."""

    outcome = "not_found"


class NovitaInvalidStateChange(NovitaError):
    """400 "invalid state change": e.g. start on a running instance. Re-read before retrying."""


class NovitaInsufficientResource(NovitaError):
    """No capacity (INSUFFICIENT_RESOURCE): pick another offer or migrate.

    Recognised by `reason` or, when the reason says something else, by the message text
    (readings.py `capacity_error`).
    """


class NovitaUnauthorized(NovitaError):
    """401/403: the key is missing, wrong or lacks permission. Retrying will not help."""


class NovitaBadRequest(NovitaError):
    """Any other 4xx (VALIDATOR_PARAM, TEMPLATE_NOT_FOUND, BALANCE_NOT_ENOUGH, ...)."""


class NovitaRateLimited(NovitaError):
    """429 after the retries were spent (or a Retry-After too long to wait inline)."""

    outcome = "rate_limited"


class NovitaServerError(NovitaError):
    """5xx after the retries were spent."""

    outcome = "server_error"


class NovitaTransportError(NovitaError):
    """No usable reply: timeout, connection error or a malformed body, after the retries.

    `request_sent` is False only when the request certainly never left (connect failed), which is
    what makes a create safe to resend.
    """

    def __init__(self, message: str, *, outcome: str, request_sent: bool, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.outcome = outcome  # timeout, network_error or malformed
        self.request_sent = request_sent


class NovitaUnavailable(NovitaError):
    """The circuit is open: the call failed fast without reaching the upstream."""

    outcome = "circuit_open"


class NovitaOutcomeUnknown(NovitaError):
    """A create that may or may not have created an instance (timeout or drop after sending, 5xx,
    malformed reply). Never retried by the client: look for the instance before creating again.
    """

    def __init__(self, message: str, *, cause: NovitaError, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.cause = cause
        self.outcome = cause.outcome


_TRANSIENT = (
    NovitaRateLimited,
    NovitaServerError,
    NovitaTransportError,
    NovitaUnavailable,
    NovitaOutcomeUnknown,
)


def is_transient(error: BaseException) -> bool:
    """True when trying again later may succeed (429, 5xx, transport, circuit open, unknown)."""
    return isinstance(error, _TRANSIENT)


def is_capacity_refusal(reason: str | None, message: str) -> bool:
    """Whether a 4xx says "no capacity": by reason, or by message whatever the reason."""
    if reason in INSUFFICIENT_REASONS:
        return True
    lowered = message.lower()
    return any(marker in lowered for marker in CAPACITY_MESSAGE_MARKERS)


def parse_error_body(text: str) -> tuple[str | None, str, dict[str, Any]]:
    """Read `{code, reason, message, metadata}` leniently: (reason, message, metadata).

    Every key is optional; a body that is not a JSON object yields its raw text as the message.
    """
    raw = text.strip()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None, raw[:MAX_MESSAGE_CHARS], {}
    reason = data.get("reason")
    message = data.get("message") or data.get("msg") or data.get("error")
    metadata = data.get("metadata")
    return (
        str(reason) if reason not in (None, "") else None,
        (str(message) if message not in (None, "") else raw)[:MAX_MESSAGE_CHARS],
        metadata if isinstance(metadata, dict) else {},
    )


def error_for_status(
    status: int,
    text: str,
    *,
    endpoint: str | None = None,
    retry_after: float | None = None,
) -> NovitaError:
    """Map an unsuccessful reply to its typed error (rules in novita-api.md §6).

    A specific `*_NOT_FOUND` reason other than the generic RESOURCE_NOT_FOUND (e.g.
    TEMPLATE_NOT_FOUND, IMAGE_NOT_FOUND) stays a NovitaBadRequest: it reports bad input, and
    callers must not confuse it with "the instance is gone".
    """
    reason, message, metadata = parse_error_body(text)
    message = message or f"HTTP {status}"
    kwargs: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "endpoint": endpoint,
        "metadata": metadata,
    }
    lowered = message.lower()
    cls: type[NovitaError]
    if status == 404:
        cls = NovitaNotFound
    elif status in (401, 403):
        cls = NovitaUnauthorized
    elif status == 429:
        return NovitaRateLimited(message, retry_after=retry_after, **kwargs)
    elif status >= 500:
        return NovitaServerError(message, retry_after=retry_after, **kwargs)
    elif is_capacity_refusal(reason, message):
        cls = NovitaInsufficientResource
    elif "invalid state change" in lowered:
        cls = NovitaInvalidStateChange
    elif reason in NOT_FOUND_REASONS:
        cls = NovitaNotFound
    elif reason is not None and reason.endswith("_NOT_FOUND"):
        cls = NovitaBadRequest
    elif "not found" in lowered or "not fount" in lowered:
        cls = NovitaNotFound
    else:
        cls = NovitaBadRequest
    return cls(message, **kwargs)
