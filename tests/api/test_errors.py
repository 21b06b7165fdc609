from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from novita_manager.app import create_app
from novita_manager.config import load_settings
from novita_manager.errors import (
    IdempotencyKeyReused,
    InstanceNotFound,
    InvalidState,
    RateLimited,
    Unauthorized,
    UpstreamError,
    UpstreamUnavailable,
)
from tests.fixtures.logs import CapturedLogs


class Body(BaseModel):
    name: str = Field(min_length=1, max_length=5)
    gpuNum: int = Field(ge=1, le=8)


def _app(database: Path) -> FastAPI:
    # A database of its own: the default file is shared by every test process (and SQLite
    # admits one service process at a time).
    settings = load_settings(
        novita_api_base_url="http://127.0.0.1:1/gpu-instance/openapi",
        database_url=f"sqlite+aiosqlite:///{database}",
    )
    app = create_app(settings)
    errors = {
        "unauthorized": Unauthorized("missing key"),
        "notfound": InstanceNotFound("Instance x not found"),
        "state": InvalidState("cannot stop: instance is stopped", details={"status": "stopped"}),
        "idem": IdempotencyKeyReused("key reused with another body"),
        "rate": RateLimited("slow down", headers={"Retry-After": "3"}),
        "upstream": UpstreamError("Novita answered 500"),
        "circuit": UpstreamUnavailable("circuit open"),
    }

    @app.get("/raise/{kind}")
    async def raise_error(kind: str) -> None:
        raise errors[kind]

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret internals sk_do_not_show")

    @app.post("/validate")
    async def validate(body: Body) -> dict[str, str]:
        return {"ok": body.name}

    return app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = _app(tmp_path / "novita-manager.db")
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _assert_envelope(body: dict, code: str) -> dict:
    error = body["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["timestamp"].endswith("Z")
    assert error["requestId"]
    return error


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("unauthorized", 401, "UNAUTHORIZED"),
        ("notfound", 404, "INSTANCE_NOT_FOUND"),
        ("state", 409, "INVALID_STATE"),
        ("idem", 422, "IDEMPOTENCY_KEY_REUSED"),
        ("rate", 429, "RATE_LIMITED"),
        ("upstream", 502, "UPSTREAM_ERROR"),
        ("circuit", 503, "UPSTREAM_UNAVAILABLE"),
    ],
)
def test_each_error_kind_has_the_envelope(client: TestClient, kind: str, status: int, code: str):
    response = client.get(f"/raise/{kind}")
    assert response.status_code == status
    _assert_envelope(response.json(), code)
    if kind == "rate":
        assert response.headers["Retry-After"] == "3"
    if kind == "state":
        assert response.json()["error"]["details"] == {"status": "stopped"}


def test_validation_is_400_with_each_field(client: TestClient) -> None:
    response = client.post("/validate", json={"name": "much too long", "gpuNum": 9})
    assert response.status_code == 400
    error = _assert_envelope(response.json(), "VALIDATION_ERROR")
    fields = {item["field"]: item["message"] for item in error["details"]}
    assert set(fields) == {"name", "gpuNum"}
    assert "5" in fields["name"]


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/validate", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    _assert_envelope(response.json(), "VALIDATION_ERROR")


def test_unknown_route_is_404_envelope(client: TestClient) -> None:
    response = client.get("/no/such/route")
    assert response.status_code == 404
    _assert_envelope(response.json(), "NOT_FOUND")


def test_wrong_method_is_405_envelope(client: TestClient) -> None:
    response = client.delete("/validate")
    assert response.status_code == 405
    _assert_envelope(response.json(), "METHOD_NOT_ALLOWED")


def test_crash_is_500_without_trace_and_logged(
    client: TestClient, captured_logs: CapturedLogs
) -> None:
    response = client.get("/crash", headers={"X-Request-ID": "trace-me-1"})
    assert response.status_code == 500
    error = _assert_envelope(response.json(), "INTERNAL_ERROR")
    assert error["requestId"] == "trace-me-1"
    assert response.headers["X-Request-ID"] == "trace-me-1"
    assert "Traceback" not in response.text
    assert "sk_do_not_show" not in response.text
    crash = captured_logs.events("unhandled_error")[0]
    assert crash["request_id"] == "trace-me-1"
    assert "RuntimeError" in crash["exception"]
    assert "sk_do_not_show" in crash["exception"]  # not a registered secret: kept for debugging


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert (
        client.get("/raise/notfound", headers={"X-Request-ID": "abc-1"}).headers["X-Request-ID"]
        == "abc-1"
    )
    generated = client.get("/raise/notfound").headers["X-Request-ID"]
    assert len(generated) == 32
