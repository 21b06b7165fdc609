"""`novita-manager offers | regions | templates`: what can be created, where, at what price.

Tables by default, `--json` for the API's JSON. When the service could not reach Novita the
answer is its last list, marked stale (a warning on stderr).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from novita_manager.cli.options import ApiKey, Json, Url, client_for
from novita_manager.cli.output import err, out, print_json
from novita_manager.sdk import DEFAULT_URL, OfferList, RegionList, TemplateList


def _table(title: str) -> Table:
    return Table(
        title=title, title_justify="left", box=None, padding=(0, 2, 0, 0), header_style="bold"
    )


def _warn_stale(stale: bool) -> None:
    if stale:
        err.print("[yellow]Stale:[/] Novita could not be reached; this is the last list read.")


def _text(value: object) -> str:
    return "-" if value is None or value == "" else escape(str(value))


def offers_table(page: OfferList) -> Table:
    table = _table(f"Offers ({page.total}, cheapest first)")
    for name, justify in (
        ("PRODUCT", "left"),
        ("REGION", "left"),
        ("BILLING", "left"),
        ("GPUS", "right"),
        ("$/H", "right"),
        ("$/GPU/H", "right"),
        ("STOCK", "left"),
        ("DISK GB", "right"),
        ("PRODUCT ID", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "PRODUCT")  # type: ignore[arg-type]
    for offer in page.offers:
        disk = f"{_text(offer.minRootfsSize)}-{_text(offer.maxRootfsSize)}"
        table.add_row(
            _text(offer.productName),
            f"{_text(offer.region)} ({_text(offer.clusterId)})",
            offer.billingMode,
            str(offer.gpuNum),
            f"{offer.pricePerHour:g}",
            f"{offer.pricePerGpuHour:g}",
            _text(offer.availability),
            disk,
            _text(offer.productId),
        )
    return table


def regions_table(page: RegionList) -> Table:
    table = _table(f"Regions ({len(page.regions)})")
    for name in ("NAME", "ID", "GPU TYPES", "NETWORK STORAGE"):
        table.add_column(name, overflow="fold")
    for region in page.regions:
        storage = region.supportNetworkStorage
        table.add_row(
            _text(region.name),
            _text(region.id),
            _text(", ".join(region.availableGpuTypes)),
            "-" if storage is None else ("yes" if storage else "no"),
        )
    return table


def templates_table(page: TemplateList) -> Table:
    table = _table(f"Templates ({len(page.templates)})")
    for name in ("ID", "NAME", "IMAGE", "CHANNEL", "PORTS"):
        table.add_column(name, overflow="fold", no_wrap=name == "ID")
    for template in page.templates:
        ports = ", ".join(
            f"{port}/{group.type or '?'}" for group in template.ports for port in group.ports
        )
        table.add_row(
            _text(template.id),
            _text(template.name),
            _text(template.image),
            _text(template.channel),
            _text(ports),
        )
    return table


def offers(
    product: Annotated[
        str | None, typer.Option("--product", help='Product name, e.g. "RTX 4090 24GB".')
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="Region code, cluster id or cluster name.")
    ] = None,
    billing_mode: Annotated[
        str | None, typer.Option("--billing-mode", help="spot or onDemand (both by default).")
    ] = None,
    gpu_num: Annotated[
        int, typer.Option("--gpu-num", min=1, max=8, help="GPUs per instance (prices scale).")
    ] = 1,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Offers deployable now, cheapest first: product, region, price per hour, stock, disk."""
    with client_for(url, api_key, as_json) as client:
        page = client.offers(
            product_name=product, region=region, billing_mode=billing_mode, gpu_num=gpu_num
        )
    if as_json:
        print_json(page)
        return
    _warn_stale(page.stale)
    out.print(offers_table(page))


def regions(url: Url = DEFAULT_URL, api_key: ApiKey = None, as_json: Json = False) -> None:
    """Novita's regions (clusters): names and ids accepted as --region, and their GPU types."""
    with client_for(url, api_key, as_json) as client:
        page = client.regions()
    if as_json:
        print_json(page)
        return
    _warn_stale(page.stale)
    out.print(regions_table(page))


def templates(url: Url = DEFAULT_URL, api_key: ApiKey = None, as_json: Json = False) -> None:
    """Templates to create instances from: the id is --template of `instances create`."""
    with client_for(url, api_key, as_json) as client:
        page = client.templates()
    if as_json:
        print_json(page)
        return
    _warn_stale(page.stale)
    out.print(templates_table(page))
