"""`novita-manager serve` and `novita-manager simulator`: the long-running servers."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT or 3000).")] = None,
) -> None:
    """Run the service (REST API and background pipelines) until Ctrl-C.

    Configured by environment variables and an optional .env file (NOVITA_API_KEY, DATABASE_URL,
    API_KEYS, WEBHOOK_URL, WEBHOOK_SECRET, ...; see docs/). Against the simulator, set
    NOVITA_API_BASE_URL=http://127.0.0.1:8900/gpu-instance/openapi and no key is needed.
    """
    import uvicorn

    from novita_manager.app import create_app
    from novita_manager.config import load_settings_or_exit
    from novita_manager.http_server import uvicorn_options
    from novita_manager.logging import configure_logging
    from novita_manager.store.startup import check_database_or_exit

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = load_settings_or_exit(**overrides)
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    check_database_or_exit(settings.database_url)  # one line and exit 4, not a traceback
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=15,
        **uvicorn_options(settings),  # header timeout, keep-alive, connection cap
    )


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
