"""Small ASGI helpers shared by the middleware and the routes: JSON answers without pydantic."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response
from starlette.types import Send

from novita_manager.simulator.errors import SimulatorError


def dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status, headers, media_type="application/json")


def error_response(error: SimulatorError) -> Response:
    return json_response(error.body(), error.status, error.headers)


async def send_raw(
    send: Send,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_error(send: Send, error: SimulatorError) -> None:
    await send_raw(send, error.status, dumps(error.body()), error.headers)
