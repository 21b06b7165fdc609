"""The contract's error envelope for every error: our own, validation, routing and crashes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from novita_manager.errors import ApiError, ServiceUnavailable
from novita_manager.logging import current_request_id, get_logger
from novita_manager.services.errors import UpstreamFailure, upstream_api_error

log = get_logger(__name__)

_HTTP_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "INVALID_STATE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "requestId": current_request_id(),
    }
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    response = JSONResponse(error_body(code, message, details), status_code=status, headers=headers)
    request_id = current_request_id()
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response


def describe_validation_errors(errors: Any) -> list[dict[str, str]]:
    """One entry per bad field: its dotted location (without `body`) and why."""
    details = []
    for item in errors:
        location = [
            str(part)
            for part in item.get("loc", ())
            if part not in ("body", "query", "path", "header")
        ]
        field = ".".join(location) if location else "body"
        message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        if item.get("type") == "json_invalid":
            field, message = "body", "the request body is not valid JSON"
        details.append({"field": field, "message": message})
    return details


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = describe_validation_errors(exc.errors())
    fields = ", ".join(item["field"] for item in details)
    return error_response(400, "VALIDATION_ERROR", f"Invalid request: {fields}", details)


async def _upstream_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UpstreamFailure)
    log.warning("upstream_error_answered", error=str(exc))
    return await _api_error(request, upstream_api_error(exc))


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """The service's own database is unreachable: 503, not a crash (nothing was changed)."""
    log.error("database_unavailable", error=type(exc).__name__)
    error = ServiceUnavailable(
        "The service's database is unavailable; retry shortly", headers={"Retry-After": "5"}
    )
    return await _api_error(request, error)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    if exc.status_code == 404:
        message = f"No route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, message, headers=headers)


def internal_error_response() -> JSONResponse:
    return error_response(500, "INTERNAL_ERROR", "An unexpected error occurred; see the logs.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(UpstreamFailure, _upstream_error)
    for unavailable in (OperationalError, InterfaceError, PoolTimeout, ConnectionError):
        app.add_exception_handler(unavailable, _database_error)
