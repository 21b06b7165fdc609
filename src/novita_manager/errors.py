"""Errors a client of the service can see, each with its HTTP status and contract code.

Services and routers raise these; `api.errors` turns any of them into the contract's envelope
`{"error": {code, message, details?, timestamp, requestId}}`.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Base of every client-visible error."""

    status_code = 500
    code = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class ValidationFailed(ApiError):
    status_code = 400
    code = "VALIDATION_ERROR"


class Unauthorized(ApiError):
    status_code = 401
    code = "UNAUTHORIZED"


class InstanceNotFound(ApiError):
    status_code = 404
    code = "INSTANCE_NOT_FOUND"


class NotFound(ApiError):
    """A route or a resource other than an instance (for example a webhook delivery)."""

    status_code = 404
    code = "NOT_FOUND"


class InvalidState(ApiError):
    status_code = 409
    code = "INVALID_STATE"


class IdempotencyKeyReused(ApiError):
    status_code = 422
    code = "IDEMPOTENCY_KEY_REUSED"


class PayloadTooLarge(ApiError):
    """The request body is over MAX_REQUEST_BYTES (or its headers over the server's limit)."""

    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


class RateLimited(ApiError):
    status_code = 429
    code = "RATE_LIMITED"


class UpstreamError(ApiError):
    status_code = 502
    code = "UPSTREAM_ERROR"


class UpstreamUnavailable(ApiError):
    status_code = 503
    code = "UPSTREAM_UNAVAILABLE"


class ServiceUnavailable(ApiError):
    """The service itself cannot answer now (for example its database is unreachable)."""

    status_code = 503
    code = "SERVICE_UNAVAILABLE"
