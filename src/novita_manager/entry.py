"""The `novita-manager` script (and `python -m novita_manager`).

For `serve` it first keeps out two modules that libraries of the service import only in case
they are wanted, before anything imports them: `rich`, which structlog imports to pretty-print
tracebacks on a console and typer to render help (the service logs JSON; typer falls back to
plain help), and `pydantic.v1`, which FastAPI imports to ask whether a model is a Pydantic v1
model (none is; FastAPI treats the ImportError as "no"). Together 87 modules and about 5 MiB in
each of the service's processes (docs/design.md "Memory"). Every other command imports them as
usual, and so does whoever imports `novita_manager.cli`.
"""

from __future__ import annotations

import os
import sys

OPTIONAL_IMPORTS = ("rich", "pydantic.v1")


def keep_out_optional_imports() -> None:
    """Make `import rich` and `from pydantic import v1` fail in this process (a `None` entry in
    `sys.modules` is the documented way), and tell typer, before it is imported, not to use
    rich."""
    os.environ["TYPER_USE_RICH"] = "0"
    for name in OPTIONAL_IMPORTS:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        keep_out_optional_imports()
    from novita_manager.cli import main as cli_main

    cli_main()
