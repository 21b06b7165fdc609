"""Mapping of upstream error replies to typed errors (novita-api.md §6)."""

from __future__ import annotations

import json

import pytest

from novita_manager.novita.errors import (
    NovitaBadRequest,
    NovitaError,
    NovitaInsufficientResource,
    NovitaInvalidStateChange,
    NovitaNotFound,
    NovitaOutcomeUnknown,
    NovitaRateLimited,
    NovitaServerError,
    NovitaTransportError,
    NovitaUnauthorized,
    NovitaUnavailable,
    error_for_status,
    is_transient,
    parse_error_body,
)


def body(reason: str | None = None, message: str | None = None) -> str:
    data: dict[str, object] = {"code": 400, "metadata": {"k": "v"}}
    if reason is not None:
        data["reason"] = reason
    if message is not None:
        data["message"] = message
    return json.dumps(data)


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (404, "", NovitaNotFound),
        (400, body("RESOURCE_NOT_FOUND", "x"), NovitaNotFound),
        (400, body(None, "instance Not Found"), NovitaNotFound),
        (400, body("REQUEST", "record not fount"), NovitaNotFound),
        (400, "instance not fount", NovitaNotFound),
        (400, body("TEMPLATE_NOT_FOUND", "template not found"), NovitaBadRequest),
        (400, body(None, "Invalid State Change"), NovitaInvalidStateChange),
        (400, body("INSUFFICIENT_RESOURCE", "no gpus"), NovitaInsufficientResource),
        (401, body("UNAUTHORIZED", "bad key"), NovitaUnauthorized),
        (403, "forbidden", NovitaUnauthorized),
        (429, body("RATE_LIMIT_EXCEEDED", "slow down"), NovitaRateLimited),
        (400, body("VALIDATOR_PARAM", "gpuNum must be 1-8"), NovitaBadRequest),
        (409, "conflict", NovitaBadRequest),
        (500, "<html>oops</html>", NovitaServerError),
        (503, "", NovitaServerError),
    ],
)
def test_error_for_status(status: int, text: str, expected: type[NovitaError]) -> None:
    error = error_for_status(status, text, endpoint="GET /gpu/instance")
    assert type(error) is expected
    assert error.status == status
    assert error.endpoint == "GET /gpu/instance"
    assert error.message


def test_reason_message_and_metadata_are_kept() -> None:
    error = error_for_status(400, body("VALIDATOR_PARAM", "gpuNum must be 1-8"))
    assert error.reason == "VALIDATOR_PARAM"
    assert error.message == "gpuNum must be 1-8"
    assert error.metadata == {"k": "v"}
    assert "VALIDATOR_PARAM" in str(error)


def test_rate_limited_keeps_retry_after() -> None:
    error = error_for_status(429, "", retry_after=2.5)
    assert isinstance(error, NovitaRateLimited)
    assert error.retry_after == 2.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (None, "", {})),
        ("plain text", (None, "plain text", {})),
        ("[1, 2]", (None, "[1, 2]", {})),
        ('{"reason": "", "message": null}', (None, '{"reason": "", "message": null}', {})),
        ('{"reason": "X", "message": "m", "metadata": []}', ("X", "m", {})),
    ],
)
def test_parse_error_body_is_lenient(text: str, expected: tuple[object, ...]) -> None:
    assert parse_error_body(text) == expected


def test_is_transient() -> None:
    server = NovitaServerError("boom", status=500)
    transient: list[NovitaError] = [
        NovitaRateLimited("r", status=429),
        server,
        NovitaTransportError("t", outcome="timeout", request_sent=True),
        NovitaUnavailable("open"),
        NovitaOutcomeUnknown("?", cause=server),
    ]
    permanent: list[NovitaError] = [
        NovitaNotFound("n", status=404),
        NovitaBadRequest("b", status=400),
        NovitaInvalidStateChange("i", status=400),
        NovitaInsufficientResource("x", status=400),
        NovitaUnauthorized("u", status=401),
    ]
    assert all(is_transient(error) for error in transient)
    assert not any(is_transient(error) for error in permanent)
    assert not is_transient(ValueError("x"))
