"""`novita-manager costs`: what the fleet cost, by day, instance, product or region.

A table by default (with the total and what runs now costs per hour), `--json` for the API's
JSON (`GET /api/costs`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from novita_manager.cli.options import ApiKey, Json, Url, client_for
from novita_manager.cli.output import out, print_json
from novita_manager.sdk import DEFAULT_URL
from novita_manager.sdk.costs import CostReport, costs_call


def _duration(help_text: str, flag: str) -> Any:
    return typer.Option(flag, help=f"{help_text}: seconds, or 90s, 30m, 8h, 2d.")


# The limit options of `instances create` (docs/api.md "Costs and limits").
AutoStopAfter = Annotated[
    str | None, _duration("Stop this long after it reached running", "--auto-stop-after")
]
AutoDeleteAfter = Annotated[
    str | None, _duration("Delete this long after the request", "--auto-delete-after")
]
IdleStopAfter = Annotated[
    str | None, _duration("Stop once the GPU stayed idle this long", "--idle-stop-after")
]
MaxCost = Annotated[
    float | None, typer.Option("--max-cost", help="Stop when its cost reaches this many USD.")
]


def limit(value: str | None) -> int | str | None:
    """A duration as the API takes it: digits as an integer of seconds, else the text."""
    return int(value) if value is not None and value.isdigit() else value


class Grouping(StrEnum):
    DAY = "day"
    INSTANCE = "instance"
    PRODUCT = "product"
    REGION = "region"


def duration(seconds: float) -> str:
    """`1d 02:03:04`, `02:03:04` or `03:04`: billed time at a glance."""
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = (
        f"{hours:02d}:{minutes:02d}:{secs:02d}" if hours or days else f"{minutes:02d}:{secs:02d}"
    )
    return f"{days}d {clock}" if days else clock


def usd(value: float) -> str:
    return f"{value:.4f}" if value < 1 else f"{value:,.2f}"


def costs_table(report: CostReport) -> Table:
    window = f"{report.from_ or 'the start'} to {report.to}"
    table = Table(
        title=f"Costs by {report.groupBy.value}, {window} (USD)",
        title_justify="left",
        box=None,
        padding=(0, 2, 0, 0),
        header_style="bold",
        show_footer=True,
    )
    instance = report.groupBy.value == "instance"
    table.add_column(report.groupBy.value.upper(), footer="TOTAL", no_wrap=True)
    if instance:
        table.add_column("NAME", overflow="fold")
    table.add_column("COST $", justify="right", footer=usd(report.total.cost))
    table.add_column("BILLED", justify="right", footer=duration(report.total.billedSeconds))
    table.add_column("INSTANCES", justify="right", footer=str(report.total.instances))
    for group in report.groups:
        cells = [escape(group.key)]
        if instance:
            cells.append(escape(group.name or "-"))
        cells += [usd(group.cost), duration(group.billedSeconds), str(group.instances)]
        table.add_row(*cells)
    table.caption = f"Running now: ${report.spendRatePerHour:g}/h"
    table.caption_justify = "left"
    return table


def costs(
    since: Annotated[
        str | None,
        typer.Option("--from", help="Window start, ISO-8601 (e.g. 2026-12-01 or a time, UTC)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="Window end, ISO-8601; default now.")
    ] = None,
    group_by: Annotated[
        Grouping, typer.Option("--group-by", help="Group by day, instance, product or region.")
    ] = Grouping.DAY,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """What the managed instances cost (estimated from Novita's statuses and prices)."""
    with client_for(url, api_key, as_json) as client:
        report = client.send(costs_call(since=since, until=until, group_by=group_by.value))
    if as_json:
        print_json(report.model_dump(mode="json", by_alias=True))
        return
    out.print(costs_table(report))
