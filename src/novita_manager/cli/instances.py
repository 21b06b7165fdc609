"""`novita-manager instances …`: create, list, get, start, stop and delete through the REST API.

Talks to a running service (`--url`, `NOVITA_MANAGER_URL`; `--api-key`, `NOVITA_MANAGER_API_KEY`).
Tables by default; `--json` prints exactly the API's JSON on stdout (errors: the envelope on
stdout, a readable message on stderr). Exit codes are listed in `exit_codes.EPILOG`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from novita_manager.cli.costs import (
    AutoDeleteAfter,
    AutoStopAfter,
    IdleStopAfter,
    MaxCost,
    limit,
)
from novita_manager.cli.exit_codes import EPILOG, ExitCode
from novita_manager.cli.options import ApiKey, Json, Url
from novita_manager.cli.options import client_for as _client
from novita_manager.cli.output import (
    err,
    instance_table,
    instances_table,
    out,
    print_json,
    styled_status,
)
from novita_manager.cli.watch import watch_instance
from novita_manager.sdk import (
    DEFAULT_URL,
    CreateInstance,
    InstanceView,
    ManagerClient,
    OperationResponse,
)

app = typer.Typer(
    name="instances",
    help="Create, list, inspect, start, stop and delete instances through a running service.",
    epilog=EPILOG,
    no_args_is_help=True,
)

InstanceId = Annotated[
    str,
    typer.Argument(
        metavar="NAME-OR-ID",
        help="Our instance id, its Novita id, or its name (when one live instance has it).",
    ),
]
Wait = Annotated[bool, typer.Option("--wait", help="Show progress until the instance settles.")]
Timeout = Annotated[
    float, typer.Option("--timeout", min=1, help="Seconds --wait waits before giving up.")
]
WebhookUrl = Annotated[
    str | None,
    typer.Option("--webhook-url", help="http(s) URL notified of this instance's events."),
]


def _wait(
    client: ManagerClient,
    instance_id: str,
    target: str,
    timeout: float,
    as_json: bool,
    before: InstanceView | None = None,
    initial_status: str | None = None,
) -> None:
    """Follow the instance to `target`; print the final state; exit 1 if it ends elsewhere."""
    err.print(f"Waiting for [bold]{instance_id}[/] to be {styled_status(target)}…")
    try:
        result = watch_instance(
            client,
            instance_id,
            target,
            err,
            timeout=timeout,
            before=before,
            initial_status=initial_status,
        )
    except KeyboardInterrupt:
        interrupted(instance_id)
    view = result.view
    if view is not None:
        if as_json:
            print_json(view)
        else:
            out.print(instance_table(view))
    if result.outcome == "reached":
        err.print(f"[green]✓[/] {target} after {result.elapsed:.1f} s")
        return
    status = view.status if view else "unknown"
    if result.outcome == "timeout":
        err.print(
            f"[bold red]Error:[/] still {status} after {timeout:g} s (--timeout); "
            "the service keeps working on it in the background."
        )
    else:
        last_error = (view.lastError if view else None) or "no error recorded"
        err.print(f"[bold red]Error:[/] the instance ended {status}, not {target}: {last_error}")
    raise typer.Exit(ExitCode.FAILED)


def interrupted(instance_id: str) -> None:
    """Ctrl-C while waiting stops the waiting, not the work: say so, and how to stop it."""
    err.print()
    err.print(
        f"[yellow]Stopped waiting.[/] The service goes on with {instance_id} in the background; "
        "a running instance keeps billing until it is stopped or deleted."
    )
    err.print(f"  follow it:  novita-manager instances watch {instance_id}")
    err.print(f"  stop it:    novita-manager instances stop {instance_id}")
    err.print(f"  delete it:  novita-manager instances delete {instance_id}")
    raise typer.Exit(ExitCode.INTERRUPTED)


def _regions(text: str) -> list[str] | str:
    """`--regions "CN-HK-01,AS-SGP-02"` as a list; `any` as itself."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    return "any" if [part.lower() for part in parts] == ["any"] else parts


@app.command(epilog=EPILOG)
def create(
    name: Annotated[str, typer.Option("--name", help="Instance name: letters, digits, - and _.")],
    product: Annotated[
        str, typer.Option("--product", help='GPU product name, e.g. "RTX 4090 24GB".')
    ],
    template: Annotated[str, typer.Option("--template", help="Novita template id.")],
    gpu_num: Annotated[
        int | None, typer.Option("--gpu-num", help="GPUs, 1-8 (service default 1).")
    ] = None,
    rootfs_size: Annotated[
        int | None, typer.Option("--rootfs-size", help="Root disk in GB (service default 60).")
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="Region code (CN-HK-01) or Novita cluster id or name."),
    ] = None,
    billing_mode: Annotated[
        str | None, typer.Option("--billing-mode", help="spot (default) or onDemand.")
    ] = None,
    webhook_url: WebhookUrl = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="Retrying with the same key creates nothing new."),
    ] = None,
    regions: Annotated[
        str | None,
        typer.Option("--regions", help="Other allowed regions, comma-separated, in order; or any."),
    ] = None,
    max_price: Annotated[
        float | None, typer.Option("--max-price", help="Cap in USD/h for the whole instance.")
    ] = None,
    fallback: Annotated[
        bool | None,
        typer.Option("--fallback-on-demand/--no-fallback", help="Pay on-demand under the cap."),
    ] = None,
    on_reclaim: Annotated[
        str | None,
        typer.Option("--on-reclaim", help="none, restart, migrate (system disk lost), recreate."),
    ] = None,
    max_recoveries: Annotated[
        int | None, typer.Option("--max-recoveries", help="Recoveries before failing.")
    ] = None,
    auto_stop_after: AutoStopAfter = None,
    auto_delete_after: AutoDeleteAfter = None,
    idle_stop_after: IdleStopAfter = None,
    max_cost: MaxCost = None,
    wait: Wait = False,
    timeout: Timeout = 600.0,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Create an instance: the service picks the cheapest offer, creates and starts it.

    Without --wait it returns at once (status `creating`); with --wait it shows progress
    until the instance is running (exit 0) or failed (exit 1, with lastError).
    """
    request = CreateInstance(
        name=name,
        product_name=product,
        template_id=template,
        gpu_num=gpu_num,
        rootfs_size=rootfs_size,
        region=region,
        billing_mode=billing_mode,
        webhook_url=webhook_url,
        regions=None if regions is None else _regions(regions),
        max_price_per_hour=max_price,
        fallback_to_on_demand=fallback,
        on_reclaim=on_reclaim,
        max_recoveries=max_recoveries,
        auto_stop_after=limit(auto_stop_after),
        auto_delete_after=limit(auto_delete_after),
        idle_stop_after=limit(idle_stop_after),
        max_cost=max_cost,
    )
    with _client(url, api_key, as_json) as client:
        created = client.create_instance(request, idempotency_key=idempotency_key)
        if not wait:
            if as_json:
                print_json(created)
                return
            price = created.pricePerHour
            out.print(f"[green]✓[/] {created.message}")
            out.print(f"  instanceId          {created.instanceId}")
            out.print(f"  status              {styled_status(created.status)}")
            out.print(f"  region              {created.region}")
            out.print(f"  productId           {created.productId or '-'}")
            out.print(f"  pricePerHour        {'-' if price is None else f'${price:g}/h'}")
            out.print(f"  estimatedReadyTime  {created.estimatedReadyTime}")
            return
        err.print(f"[green]✓[/] created {created.instanceId} in {created.region}")
        _wait(
            client,
            created.instanceId,
            "running",
            timeout,
            as_json,
            initial_status=created.status,
        )


@app.command("list", epilog=EPILOG)
def list_(
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only this status (deleted ones show only when asked)."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name contains.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """List instances, newest first."""
    with _client(url, api_key, as_json) as client:
        page = client.list_instances(status=status, name=name, limit=limit, offset=offset)
    if as_json:
        print_json(page)
        return
    out.print(instances_table(page.instances, page.total, page.offset))


@app.command(epilog=EPILOG)
def get(
    instance_id: InstanceId,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Show one instance (by our id, its Novita id or its name)."""
    with _client(url, api_key, as_json) as client:
        view = client.find_instance(instance_id)
    if as_json:
        print_json(view)
        return
    out.print(instance_table(view))


def _operate(
    operation: Callable[[ManagerClient], Callable[[str, str | None], OperationResponse]],
    instance_id: str,
    target: str,
    webhook_url: str | None,
    wait: bool,
    timeout: float,
    url: str,
    api_key: str | None,
    as_json: bool,
) -> None:
    with _client(url, api_key, as_json) as client:
        before = client.find_instance(instance_id)  # a name becomes the id it names
        result = operation(client)(before.id, webhook_url)
        if not wait:
            if as_json:
                print_json(result)
                return
            out.print(f"[green]✓[/] {result.message}")
            out.print(f"  instanceId  {result.instanceId}")
            out.print(f"  status      {styled_status(result.status)}")
            return
        _wait(client, result.instanceId, target, timeout, as_json, before=before)


@app.command(epilog=EPILOG)
def start(
    instance_id: InstanceId,
    webhook_url: WebhookUrl = None,
    wait: Wait = False,
    timeout: Timeout = 600.0,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Start a stopped (or failed) instance; --wait follows it until running or failed."""
    _operate(
        lambda c: c.start_instance, instance_id, "running", webhook_url, wait, timeout, url,
        api_key, as_json,
    )  # fmt: skip


@app.command(epilog=EPILOG)
def stop(
    instance_id: InstanceId,
    webhook_url: WebhookUrl = None,
    wait: Wait = False,
    timeout: Timeout = 600.0,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Stop a running instance: GPU billing stops; only network-volume data survives a stop."""
    _operate(
        lambda c: c.stop_instance, instance_id, "stopped", webhook_url, wait, timeout, url,
        api_key, as_json,
    )  # fmt: skip


@app.command(epilog=EPILOG)
def delete(
    instance_id: InstanceId,
    webhook_url: WebhookUrl = None,
    wait: Wait = False,
    timeout: Timeout = 600.0,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Delete an instance, on Novita too."""
    _operate(
        lambda c: c.delete_instance, instance_id, "deleted", webhook_url, wait, timeout, url,
        api_key, as_json,
    )  # fmt: skip
