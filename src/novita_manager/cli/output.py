"""How the command line shows things: instance tables, error envelopes and raw JSON.

Results go to stdout (tables, or exactly the API's JSON with `--json`); messages and errors go
to stderr, so `--json` output stays parseable whatever happens.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from novita_manager.sdk import ApiResponseError, InstanceView, ServiceError, ServiceUnreachable

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)

STATUS_STYLES = {
    "creating": "cyan",
    "starting": "yellow",
    "running": "bold green",
    "failed": "bold red",
    "stopping": "yellow",
    "stopped": "dim",
    "deleting": "magenta",
    "deleted": "dim",
}


def styled_status(status: str | None, width: int = 0) -> str:
    """The status in its colour, padded to `width` outside the markup so columns line up."""
    text = escape((status or "-").ljust(width))
    style = STATUS_STYLES.get(status or "", "")
    return f"[{style}]{text}[/]" if style else text


def print_json(value: BaseModel | Mapping[str, Any]) -> None:
    """The API's JSON as is (indented), with nothing else on stdout: a model as the API serves
    it (every field, nulls included, in the model's order), an error envelope as it came."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _text(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return escape(str(value))


def instance_table(view: InstanceView, title: str | None = None) -> Table:
    """One instance as a two-column table: every field a user cares about, secrets never."""
    table = Table(
        title=title, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0)
    )
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    price = view.pricePerHour
    rows: list[tuple[str, str]] = [
        ("id", _text(view.id)),
        ("name", _text(view.name)),
        ("status", styled_status(view.status)),
        ("novitaStatus", _text(view.novitaStatus)),
        ("novitaInstanceId", _text(view.novitaInstanceId)),
        ("product", f"{_text(view.productName)} ({_text(view.productId)})"),
        ("gpuNum", _text(view.gpuNum)),
        ("rootfsSize", f"{_text(view.rootfsSize)} GB"),
        ("region", f"{_text(view.region)} ({_text(view.clusterId)})"),
        ("billingMode", _text(view.billingMode)),
        ("pricePerHour", "-" if price is None else f"${price:g}/h"),
        ("costToDate", f"${view.costToDate:.4f} ({view.billedSeconds:g} s billed)"),
        ("createdAt", _text(view.createdAt)),
    ]
    times = {
        "startedAt": view.startedAt,
        "readyAt": view.readyAt,
        "failedAt": view.failedAt,
        "stoppedAt": view.stoppedAt,
        "deletedAt": view.deletedAt,
        "lastSyncedAt": view.lastSyncedAt,
        "expiresAt": view.expiresAt,
    }
    rows.extend((key, _text(value)) for key, value in times.items() if value)
    if view.lastError:
        rows.append(("lastError", f"[red]{_text(view.lastError)}[/]"))
    for mapping in view.portMappings:
        rows.append((f"port {mapping.port}", _text(mapping.endpoint)))
    for kind, value in view.connectionDetails.model_dump().items():
        if value:
            rows.append((kind, _text(value)))
    if view.stale:
        rows.append(("stale", "[yellow]yes: Novita could not be reached recently[/]"))
    for key, value in rows:
        table.add_row(key, value)
    return table


def instances_table(views: list[InstanceView], total: int, offset: int) -> Table:
    """One row per instance; product, price and creation time only when the terminal is wide enough,
    so the id (what the other commands take) is never cut."""
    wide = out.width >= 130
    shown = f"{offset + 1}-{offset + len(views)} of {total}" if views else f"0 of {total}"
    table = Table(
        title=f"Instances ({shown})",
        title_justify="left",
        box=None,
        padding=(0, 2, 0, 0),
        header_style="bold",
    )
    table.add_column("ID", no_wrap=True, min_width=32)
    table.add_column("NAME", overflow="fold", min_width=8)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("NOVITA", no_wrap=True)
    if wide:
        table.add_column("PRODUCT", overflow="fold")
    table.add_column("REGION", no_wrap=True)
    table.add_column("COST $", justify="right", no_wrap=True)
    if wide:
        table.add_column("$/H", justify="right", no_wrap=True)
        table.add_column("EXPIRES", no_wrap=True)
        table.add_column("CREATED", no_wrap=True)
    for view in views:
        price = view.pricePerHour
        cells = [
            _text(view.id),
            _text(view.name),
            styled_status(view.status),
            _text(view.novitaStatus),
        ]
        if wide:
            cells.append(_text(view.productName))
        cells.append(_text(view.region))
        cells.append(f"{view.costToDate:.4f}")
        if wide:
            cells.append("-" if price is None else f"{price:g}")
            cells.append(_text(view.expiresAt and view.expiresAt[:19].replace("T", " ")))
            cells.append(_text(view.createdAt[:19].replace("T", " ")))
        table.add_row(*cells)
    return table


def _details_lines(details: Any) -> list[str]:
    """Per-field details (`[{field, message}]`) one a line; other shapes as compact JSON."""
    if details is None:
        return []
    if isinstance(details, list) and all(isinstance(item, Mapping) for item in details):
        lines = []
        for item in details:
            field = item.get("field")
            message = item.get("message", json.dumps(item))
            lines.append(f"{field}: {message}" if field else str(message))
        return lines
    if isinstance(details, Mapping):
        return [f"{key}: {json.dumps(value)}" for key, value in details.items()]
    return [json.dumps(details)]


def print_error(error: ServiceError, hint: str | None = None) -> None:
    """A clear message for any failure: the envelope's code, message and every detail."""
    if isinstance(error, ServiceUnreachable):
        err.print(f"[bold red]Error:[/] cannot reach the service at {escape(error.base_url)}")
        err.print(f"  {escape(error.reason)}")
        err.print(
            f"  Is the service running at {escape(error.base_url)}? Start it with "
            "`novita-manager serve` (or try `novita-manager demo`), or pass --url / set "
            "NOVITA_MANAGER_URL."
        )
        return
    if isinstance(error, ApiResponseError):
        err.print(
            f"[bold red]Error {error.status_code} {escape(error.code)}:[/] {escape(error.message)}"
        )
        for line in _details_lines(error.details):
            err.print(f"  - {escape(line)}")
        if error.request_id:
            err.print(f"  [dim]request id: {escape(error.request_id)}[/]")
        if hint:
            err.print(f"  {escape(hint)}")
        return
    err.print(f"[bold red]Error:[/] {escape(str(error))}")
