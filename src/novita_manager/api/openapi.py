"""OpenAPI details: error responses documented with the contract's envelope, and FastAPI's
default 422 validation response replaced by the 400 the service really answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

# What each error status means for the instances and webhooks API (CONTRACT.md "Errors").
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request (`VALIDATION_ERROR`, `details` names each field and why)",
    401: "Missing or invalid API key (`UNAUTHORIZED`)",
    404: "Not found (`INSTANCE_NOT_FOUND`, or `NOT_FOUND` for a delivery)",
    409: "Not allowed in the current state (`INVALID_STATE`, the state is named)",
    422: "Idempotency-Key reused with another body (`IDEMPOTENCY_KEY_REUSED`)",
    429: "Too many requests (`RATE_LIMITED`, see `Retry-After`)",
    502: "Novita answered with an error (`UPSTREAM_ERROR`)",
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
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
