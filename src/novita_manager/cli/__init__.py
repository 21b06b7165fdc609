"""The `novita-manager` command line: the demo, the instances client and the servers.

Heavy imports (the service, the simulator) happen inside the commands that need them, so the
client commands start quickly.
"""

from __future__ import annotations

import typer

from novita_manager.cli import catalogue, costs, demo, doctor, instance_watch, instances, servers
from novita_manager.cli.exit_codes import EPILOG, SERVE_EPILOG

app = typer.Typer(
    name="novita-manager",
    help="Manage Novita.ai GPU instances: try the demo, run the service or the simulator, "
    "and create, watch, stop and delete instances from the shell.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root() -> None:
    """Manage Novita.ai GPU instances: run the service, the simulator or the demo."""


app.command()(demo.demo)
instances.app.command("watch", epilog=EPILOG)(instance_watch.watch)
app.add_typer(instances.app, name="instances")
app.command(epilog=EPILOG)(catalogue.offers)
app.command(epilog=EPILOG)(catalogue.regions)
app.command(epilog=EPILOG)(catalogue.templates)
app.command(epilog=EPILOG)(costs.costs)
app.command(epilog=SERVE_EPILOG)(servers.serve)
app.command()(servers.simulator)
app.command(epilog=doctor.DOCTOR_EPILOG)(doctor.doctor)


def main() -> None:
    app()
