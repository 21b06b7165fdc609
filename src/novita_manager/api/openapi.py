"""OpenAPI details: error responses documented with the contract's envelope, FastAPI's default
422 validation response replaced by the 400 the service really answers, and the bearer security
of /api with the answers every /api operation can give before its route runs (401, 413, 429, and
503 from admission control)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

# What each error status means for the instances and webhooks API (CONTRACT.md "Errors").
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request (`VALIDATION_ERROR`, `details` names each field and why)",
    401: "Missing or invalid API key (`UNAUTHORIZED`, with `WWW-Authenticate: Bearer`)",
    404: "Not found (`INSTANCE_NOT_FOUND`, or `NOT_FOUND` for a delivery)",
    409: "Not allowed in the current state (`INVALID_STATE`, the state is named)",
    413: "Request body larger than `MAX_REQUEST_BYTES` (`PAYLOAD_TOO_LARGE`)",
    422: "Idempotency-Key reused with another body (`IDEMPOTENCY_KEY_REUSED`)",
    429: "Too many requests, or too many failed authentications from this address "
    "(`RATE_LIMITED`, see `Retry-After`)",
    502: "Novita answered with an error (`UPSTREAM_ERROR`)",
    503: "Not served now, nothing was done: this process is overloaded (`SERVICE_UNAVAILABLE`, "
    "`details.reason` `in_flight`, `reads_in_flight` or `loop_lag`, refused before the request "
    "is read; see API_MAX_IN_FLIGHT, API_MAX_READS_IN_FLIGHT, API_MAX_LOOP_LAG) or its database "
    "is unreachable; retry after `Retry-After` seconds",
}


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable code, e.g. `VALIDATION_ERROR`.")
    message: str
    details: Any = Field(default=None, description="Per-field problems, or context.")
    timestamp: str
    requestId: str | None = Field(description="Also in the `X-Request-ID` header.")


class ErrorEnvelope(BaseModel):
    error: ErrorBody


def error_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these statuses; `descriptions` (e.g. `e404="..."`) override."""
    return {
        status: {
            "model": ErrorEnvelope,
            "description": descriptions.get(f"e{status}", ERROR_DESCRIPTIONS[status]),
        }
        for status in (401, 429, *statuses)
    }


BEARER_SCHEME = "bearerAuth"
# Answered by the middleware in front of every /api route (api/admission.py, api/auth.py,
# api/body_limit.py, api/rate_limit.py), so documented on every /api operation, with their headers.
GUARD_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "Always `Bearer`.",
            "schema": {"type": "string", "example": "Bearer"},
        }
    },
    413: {},
    429: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def document_api_guards(schema: dict[str, Any]) -> None:
    """Bearer security and the 401/413/429/503 answers on every /api operation."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "One of `API_KEYS`; required on /api only when API_KEYS is set.",
    }
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, path_item in schema.get("paths", {}).items():
        if not (path == "/api" or path.startswith("/api/")):
            continue
        for operation in path_item.values():
            operation["security"] = [{BEARER_SCHEME: []}]
            responses = operation.setdefault("responses", {})
            for status, headers in GUARD_HEADERS.items():
                response: dict[str, Any] = {
                    "description": ERROR_DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": envelope}},
                }
                if headers:
                    response["headers"] = headers
                responses[str(status)] = response


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    responses = operation.get("responses", {})
                    if "HTTPValidationError" in str(responses.get("422", "")):
                        del responses["422"]  # validation errors are 400 here
            components = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            document_api_guards(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
