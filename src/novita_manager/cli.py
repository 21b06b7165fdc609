"""The `novita-manager` command line."""

from __future__ import annotations

from typing import Annotated

import typer

from novita_manager.config import load_settings_or_exit
from novita_manager.logging import configure_logging

app = typer.Typer(
    name="novita-manager",
    help="Manage Novita.ai GPU instances: run the service, the simulator or the demo.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Manage Novita.ai GPU instances: run the service, the simulator or the demo."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT or 3000).")] = None,
) -> None:
    """Run the service (REST API and background pipelines) until Ctrl-C."""
    import uvicorn

    from novita_manager.app import create_app

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = load_settings_or_exit(**overrides)
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=15,
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
