"""The FastAPI application factory and its lifespan.

`create_app` wires routers, middleware and error handlers; the lifespan opens what the app owns
(database, upstream client, background pipelines: see `runtime.Runtime`) and closes it on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from novita_manager import __version__
from novita_manager.api.errors import install_error_handlers
from novita_manager.api.middleware import RequestContextMiddleware
from novita_manager.config import Settings, load_settings
from novita_manager.logging import get_logger

log = get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("service_starting", version=__version__)
        yield
        log.info("service_stopped")

    app = FastAPI(
        title="novita-manager",
        version=__version__,
        description=(
            "Creates, watches and notifies about Novita.ai GPU instances. Every request is stored "
            "before it is answered and advanced by background pipelines, so restarts lose nothing."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    return app
