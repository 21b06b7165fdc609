"""FastAPI dependencies: the runtime the app owns. (API keys are checked by `api.auth`, an ASGI
middleware, before the body is read.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
