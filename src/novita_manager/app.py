"""The FastAPI application factory and its lifespan.

`create_app` wires routers, middleware and error handlers; the lifespan opens what the app owns
(database, upstream client, background pipelines: see `runtime.Runtime`) and closes it on shutdown.
SERVICE_ROLE chooses what runs: `all` (everything), `api` (routes, no background work) or
`worker` (background work; only /health and /metrics over HTTP). `novita-manager serve` runs
role `all` as two processes, an API one and a worker one joined by `worker_link`
(cli/pipeline_worker.py); `create_app` with role `all` (tests, embedding) keeps it all in one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from novita_manager import __version__
from novita_manager.api.admission import Admission, AdmissionMiddleware, LoopLagMonitor
from novita_manager.api.auth import AuthMiddleware
from novita_manager.api.body_limit import BodyLimitMiddleware
from novita_manager.api.catalogue import router as catalogue_router
from novita_manager.api.costs import router as costs_router
from novita_manager.api.docs_pages import install_docs
from novita_manager.api.errors import install_error_handlers
from novita_manager.api.events import router as events_router
from novita_manager.api.health import router as health_router
from novita_manager.api.instances import router as instances_router
from novita_manager.api.metrics import router as metrics_router
from novita_manager.api.middleware import RequestContextMiddleware
from novita_manager.api.openapi import install_openapi
from novita_manager.api.rate_limit import RateLimitMiddleware
from novita_manager.api.webhooks import router as webhooks_router
from novita_manager.api.worker_link import WakeListener, WorkerLink
from novita_manager.config import Settings, is_loopback_url, load_settings
from novita_manager.dashboard import install_dashboard
from novita_manager.logging import get_logger
from novita_manager.services.runtime import Runtime
from novita_manager.store.startup import QuietStartupFailure

log = get_logger(__name__)


def is_loopback_host(host: str) -> bool:
    return is_loopback_url(f"http://{host}/") if ":" not in host else host == "::1"


def wake_pipelines(runtime: Runtime) -> None:
    runtime.provisioning.hint()
    runtime.webhook_pipeline.hint()


def create_app(
    settings: Settings | None = None,
    *,
    worker_link: WorkerLink | None = None,
    spare: bool = False,
) -> FastAPI:
    """The app of one process. `worker_link` joins the processes of `serve` (role all): the
    API-only one wakes the workers and merges their metrics, a worker listens for wake-ups.
    `spare`: a worker beside a first one (`Runtime.open`)."""
    settings = settings or load_settings()
    admission = Admission(
        max_in_flight=settings.api_max_in_flight,
        max_reads_in_flight=settings.api_max_reads_in_flight,
        max_loop_lag=settings.api_max_loop_lag,
        monitor=LoopLagMonitor(),
        writes_first=settings.service_role != "api",  # the pipelines share this loop
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info(
            "service_starting",
            version=__version__,
            role=settings.service_role,
            database=(settings.uses_sqlite and "sqlite") or "postgresql",
        )
        if not settings.api_keys and not is_loopback_host(settings.host):
            log.warning(
                "no_api_keys_on_public_address",
                host=settings.host,
                hint="set API_KEYS so that /api needs a Bearer key",
            )
        # The api role leaves the background work (pipelines, status sync, scheduled tasks) to
        # worker processes on the same PostgreSQL database; Runtime.staleness still judges rows
        # by when the sync last confirmed them.
        background = settings.service_role != "api"
        runtime = await Runtime.open(settings, background=background, spare=spare)
        listener = None
        if worker_link is not None and settings.service_role == "api":
            runtime.wake_worker = worker_link.wake
        elif worker_link is not None:
            listener = WakeListener(worker_link.wake_path, lambda: wake_pipelines(runtime))
            listener.start()
        admission.bind(runtime.metrics)
        admission.monitor.start()
        app.state.runtime = runtime
        try:
            yield
        finally:
            await admission.monitor.stop()
            if listener is not None:
                listener.close()
            if worker_link is not None:
                worker_link.close()
            await runtime.close()
            log.info("service_stopped")

    app = FastAPI(
        title="novita-manager",
        version=__version__,
        description=(
            "Creates, watches and notifies about Novita.ai GPU instances. Every request is stored "
            "before it is answered and advanced by background pipelines, so restarts lose nothing."
        ),
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc with local assets: api/docs_pages.py
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.worker_link = worker_link  # api/metrics.py adds the worker's series
    app.state.admission = admission
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    if settings.service_role != "worker":  # a worker serves only /health and /metrics
        app.include_router(instances_router)  # /api: AuthMiddleware checks the key first
        app.include_router(webhooks_router)
        app.include_router(costs_router)
        install_dashboard(app, settings)  # `/` and /ui/: pages over the same services
        app.include_router(events_router)
        app.include_router(catalogue_router)
    app.include_router(health_router)  # open without API keys, like /metrics
    app.include_router(metrics_router)
    # Outermost last: admission → request id → authentication → rate limit → body limit →
    # routes, so under overload a request is refused before anything else runs (see
    # api/admission.py), and a request without a valid key before its body is read (api/auth.py).
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    if settings.api_rate_limit > 0:
        app.add_middleware(RateLimitMiddleware, rate=settings.api_rate_limit)
    app.add_middleware(
        AuthMiddleware,
        api_keys=[key.get_secret_value() for key in settings.api_keys],
        failure_limit=settings.auth_failure_limit,
    )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(AdmissionMiddleware, admission=admission)
    # A database failure in the lifespan: one log line, not a traceback.
    app.add_middleware(QuietStartupFailure)
    return app
