"""FastAPI dependencies: the runtime the app owns, and API-key authentication."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from fastapi import Request

from novita_manager.errors import Unauthorized

if TYPE_CHECKING:
    from novita_manager.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def require_api_key(request: Request) -> None:
    """When API_KEYS is set, every /api request needs `Authorization: Bearer <key>`."""
    keys = request.app.state.settings.api_keys
    if not keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Missing API key: send Authorization: Bearer <key>")
    for key in keys:
        if hmac.compare_digest(token.strip().encode(), key.get_secret_value().encode()):
            return
    raise Unauthorized("Invalid API key")
