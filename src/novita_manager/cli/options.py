"""Options shared by the client commands (`instances`, `offers`, `regions`, `templates`) and the
client whose errors end a command with a clear message and the mapped exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import urlsplit

import typer

from novita_manager.cli.exit_codes import exit_code_for
from novita_manager.cli.output import print_error, print_json
from novita_manager.sdk import DEFAULT_URL, ApiResponseError, ManagerClient, ServiceError


def check_url(value: str) -> str:
    """The service URL must name its scheme and host: `127.0.0.1:3000` alone is a usage error
    (exit 2), not a request sent somewhere unexpected."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise typer.BadParameter(
            f"{value!r} is not an http:// or https:// URL with a host (for example {DEFAULT_URL})"
        )
    return value


Url = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="NOVITA_MANAGER_URL",
        help="Base URL of the service, with its scheme (http:// or https://).",
        show_default=True,
        callback=check_url,
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="NOVITA_MANAGER_API_KEY",
        help="Bearer key, when the service has API_KEYS set.",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]


@contextmanager
def client_for(url: str, api_key: str | None, as_json: bool) -> Iterator[ManagerClient]:
    """A client whose errors end the command with a clear message and the mapped exit code."""
    client = ManagerClient(url, api_key=api_key)
    try:
        yield client
    except ServiceError as error:
        if as_json and isinstance(error, ApiResponseError) and error.body is not None:
            print_json(error.body)
        print_error(error)
        raise typer.Exit(exit_code_for(error)) from None
    finally:
        client.close()
