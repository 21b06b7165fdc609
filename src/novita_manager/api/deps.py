"""FastAPI dependencies: the runtime the app owns. (API keys are checked by `api.auth`, an ASGI
middleware, before the body is read.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a thread hop per request.
    runtime: Runtime = request.app.state.runtime
    return runtime
