"""The `novita-manager` command line: the demo, the instances client and the servers.

Heavy imports (the service, the simulator) happen inside the commands that need them, so the
client commands start quickly.
"""

from __future__ import annotations

import sys

import typer

from novita_manager.cli import servers
from novita_manager.cli.exit_codes import EPILOG, SERVE_EPILOG

HELP = (
    "Manage Novita.ai GPU instances: try the demo, run the service or the simulator, "
    "and create, watch, stop and delete instances from the shell."
)


def _root() -> None:
    """Manage Novita.ai GPU instances: run the service, the simulator or the demo."""


def _typer() -> typer.Typer:
    group = typer.Typer(
        name="novita-manager",
        help=HELP,
        epilog=EPILOG,
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode="rich",
    )
    group.callback()(_root)
    return group


def build_app() -> typer.Typer:
    """Every command. The client commands' modules (httpx, the SDK, tables: 2.1 MiB) are
    imported here, not when `serve` starts (`main`)."""
    from novita_manager.cli import catalogue, costs, demo, doctor, instance_watch, instances

    full = _typer()
    full.command()(demo.demo)
    instances.app.command("watch", epilog=EPILOG)(instance_watch.watch)
    full.add_typer(instances.app, name="instances")
    full.command(epilog=EPILOG)(catalogue.offers)
    full.command(epilog=EPILOG)(catalogue.regions)
    full.command(epilog=EPILOG)(catalogue.templates)
    full.command(epilog=EPILOG)(costs.costs)
    full.command(epilog=SERVE_EPILOG)(servers.serve)
    full.command()(servers.simulator)
    full.command(epilog=doctor.DOCTOR_EPILOG)(doctor.doctor)
    return full


def serve_app() -> typer.Typer:
    """The same group with `serve` alone: what `novita-manager serve` runs, so the service's
    processes (the pipeline process is forked from it) import none of the client commands
    (docs/design.md "Memory")."""
    group = _typer()
    group.command(epilog=SERVE_EPILOG)(servers.serve)
    return group


def __getattr__(name: str) -> typer.Typer:
    """`app`, every command, built at its first use (tests and tools import it)."""
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(name)


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serve_app()()
    else:
        build_app()()
