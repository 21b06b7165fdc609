"""`novita-manager serve` and `novita-manager simulator`: the long-running servers."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from novita_manager.cli.exit_codes import ServeExitCode

if TYPE_CHECKING:
    from novita_manager.cli.pipeline_worker import PipelineWorker, StopRequest
    from novita_manager.config import Settings


WORKER_HEALTHCHECK_SECONDS = 60


class Role(StrEnum):
    all = "all"
    api = "api"
    worker = "worker"


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT or 3000).")] = None,
    role: Annotated[
        Role | None,
        typer.Option(
            case_sensitive=False,
            help="all: the API, and the background work in a child process (default: "
            "SERVICE_ROLE or all); api: the API only; worker: pipelines, status sync and "
            "scheduled tasks with only /health and /metrics over HTTP. api and worker need "
            "PostgreSQL.",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=256,
            help="API processes sharing the port (roles api and all); each has its own limits.",
        ),
    ] = 1,
) -> None:
    """Run the service (REST API and background pipelines) until Ctrl-C.

    Configured by environment variables and an optional .env file (NOVITA_API_KEY, DATABASE_URL,
    API_KEYS, WEBHOOK_URL, WEBHOOK_SECRET, ...; see docs/). Against the simulator, set
    NOVITA_API_BASE_URL=http://127.0.0.1:8900/gpu-instance/openapi and no key is needed.
    Role all runs the pipelines in a child process beside the API, so reads cannot starve them
    (two on PostgreSQL by default: PIPELINE_PROCESSES).
    On PostgreSQL, scale out with `serve --role worker` and `serve --role api --workers N`.
    """
    from novita_manager.config import load_settings_or_exit
    from novita_manager.gc_tuning import tune_collector
    from novita_manager.logging import configure_logging
    from novita_manager.store.startup import check_database_or_exit

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if role is not None:
        overrides["service_role"] = role.value
    settings = load_settings_or_exit(**overrides)  # api/worker on SQLite: exit 2
    if workers > 1 and settings.service_role == "worker":
        typer.echo(
            f"--workers {workers} needs --role api or all: the background work runs in one "
            "process per replica (role worker)",
            err=True,
        )
        raise typer.Exit(ServeExitCode.CONFIGURATION)
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    tune_collector()  # the forked pipeline child keeps it; api_worker_app sets its own
    check_database_or_exit(settings.database_url)  # one line and exit 4, not a traceback
    if settings.service_role != "all":
        if settings.service_role == "worker":
            from novita_manager.cli.batch_scheduling import run_as_batch_work

            run_as_batch_work()  # as the pipelines' child of role all
        run_api(settings, workers, None, None)
        return
    # Role all: the API here, the pipelines in a child process (cli/pipeline_worker.py).
    from novita_manager.cli.pipeline_worker import PipelineWorker, quiet_signals

    worker = PipelineWorker(settings)
    api_settings = settings.model_copy(update={"service_role": "api"})
    with quiet_signals() as stop:
        try:
            run_api(api_settings, workers, worker, stop)
        finally:
            worker.stop()
    if worker.exit_code is not None:
        raise typer.Exit(worker.exit_code)


def run_api(
    settings: Settings, workers: int, worker: PipelineWorker | None, stop: StopRequest | None
) -> None:
    """uvicorn with the app of `settings` in this process, or `workers` processes on one port;
    `worker` (role all) is started once the port is taken and stops the API if it ends."""
    import signal

    import uvicorn

    from novita_manager.app import create_app
    from novita_manager.cli.pipeline_worker import LINK_ENV
    from novita_manager.http_server import uvicorn_options, worker_uvicorn_options

    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "ws": "none",  # no WebSocket routes: nothing to import for them
        "timeout_graceful_shutdown": 15,
    }
    link = worker.link if worker is not None else None
    if workers == 1:
        app = create_app(settings, worker_link=link)
        # header timeout, keep-alive, connection cap, refusals before routing
        config = uvicorn.Config(app, **common, **uvicorn_options(settings, app))
        config.load()  # before the fork below: what it imports is shared with the child
        server = uvicorn.Server(config)
        if stop is not None:
            stop.server = server  # a Ctrl-C before uvicorn owns the signals still stops it
            if stop.requested:
                return
        if worker is not None:
            worker.start(on_exit=lambda: setattr(server, "should_exit", True))
        server.run()
        if not server.started:
            raise typer.Exit(ServeExitCode.SERVER_START)
        return
    # Each worker process loads its settings from the environment (api_worker_app).
    os.environ.update({"HOST": settings.host, "PORT": str(settings.port)})
    if link is not None:
        os.environ[LINK_ENV] = str(link.directory)  # see api_worker_app
        os.environ["SERVICE_ROLE"] = "all"  # valid on SQLite too; api_worker_app narrows it
    else:
        os.environ["SERVICE_ROLE"] = "api"
    if stop is not None and stop.requested:
        return
    if worker is not None:
        worker.start(on_exit=lambda: os.kill(os.getpid(), signal.SIGTERM))
    uvicorn.run(
        "novita_manager.cli.servers:api_worker_app",
        factory=True,
        workers=workers,
        # uvicorn pings each worker and replaces one that does not answer in time, but a fresh
        # worker answers only once it has imported everything: on a busy machine that took more
        # than uvicorn's 5 s, and the workers were replaced forever before they could serve.
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        **common,
        **worker_uvicorn_options(settings),
    )


def api_worker_app() -> Any:
    """The app of one `serve --workers N` API process (uvicorn calls it in each)."""
    import logging
    from pathlib import Path

    from novita_manager.api.worker_link import WorkerLink
    from novita_manager.app import create_app
    from novita_manager.cli.pipeline_worker import LINK_ENV, die_with_parent
    from novita_manager.config import load_settings_or_exit
    from novita_manager.gc_tuning import tune_collector
    from novita_manager.http_server import configure_worker_protocol
    from novita_manager.logging import configure_logging

    die_with_parent(os.getppid())  # uvicorn's supervisor: no orphan API process after its kill -9
    settings = load_settings_or_exit()
    link = None
    if os.environ.get(LINK_ENV):  # role all: the pipelines run in serve's child process
        link = WorkerLink(Path(os.environ[LINK_ENV]))
        settings = settings.model_copy(update={"service_role": "api"})
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    tune_collector()
    # uvicorn applied access_log=False before this factory ran; configure_logging routed the
    # access logger again, which logged (and paid for) every request in `--workers` processes.
    logging.getLogger("uvicorn.access").propagate = False
    app = create_app(settings, worker_link=link)
    configure_worker_protocol(settings, app)
    return app


def simulator(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8900,
    seed: Annotated[int, typer.Option(help="Seed for ids, cluster picks and fault rates.")] = 42,
    time_scale: Annotated[
        float,
        typer.Option(
            help="Factor on every simulated duration (0.01 turns a 45 s pull into 0.45 s)."
        ),
    ] = 1.0,
    api_key: Annotated[
        str | None,
        typer.Option(help="Accept only this Bearer key (default: any non-empty key)."),
    ] = None,
    autostart: Annotated[
        bool,
        typer.Option(help="New instances run by themselves (else they wait in `exited`)."),
    ] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    profile: Annotated[
        str | None,
        typer.Option(
            help="Readings of Novita's ambiguous API to play: adverse, lenient or classic "
            "(default: the simulator's default profile; see docs/simulator.md)."
        ),
    ] = None,
    reading: Annotated[
        list[str] | None,
        typer.Option(
            help="Override one reading of the profile, as key=value "
            "(e.g. page_size_cap=50, tools_required=false); repeatable."
        ),
    ] = None,
) -> None:
    """Run the Novita simulator: Novita's GPU-instance API v1 with faults, for tests and demos.

    Point the service at it with NOVITA_API_BASE_URL=http://HOST:PORT/gpu-instance/openapi.
    Control it (reset, faults, capacity, reclaim, profile, stats) under /_simulator.
    """
    import uvicorn

    from novita_manager.logging import configure_logging
    from novita_manager.simulator.app import create_simulator_app
    from novita_manager.simulator.config import (
        DEFAULT_PROFILE,
        ReadingError,
        SimulatorConfig,
        parse_reading,
    )

    configure_logging(log_level, "console", [api_key] if api_key else [])
    try:
        overrides = dict(parse_reading(text) for text in reading or [])
        config = SimulatorConfig(
            seed=seed, time_scale=time_scale, api_key=api_key, autostart=autostart
        )
        config.use_profile(profile or DEFAULT_PROFILE, overrides)
    except ReadingError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"NOVITA_API_BASE_URL=http://{host}:{port}/gpu-instance/openapi")
    typer.echo(f"profile: {config.profile} {config.overrides() or ''}".rstrip())
    uvicorn.run(
        create_simulator_app(config),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
