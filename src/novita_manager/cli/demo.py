"""`novita-manager demo`: the whole system on this machine in one command, for a first look.

Starts the simulator, a signature-checking webhook receiver and the service (see `demo_stack`),
creates an instance through the REST API like any client would, follows it to `running`, shows
the signed webhook and the instance, then keeps serving and prints how to call the API.
"""

from __future__ import annotations

import json
import signal
import time
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.rule import Rule

from novita_manager.cli.exit_codes import ExitCode
from novita_manager.cli.output import instance_table, out, print_error, styled_status
from novita_manager.cli.watch import watch_instance
from novita_manager.cli.webhook_inbox import ReceivedWebhook
from novita_manager.sdk import CreateInstance, ManagerClient, ServiceError

if TYPE_CHECKING:
    from novita_manager.cli.demo_stack import DemoStack

DEMO_REQUEST = CreateInstance(name="demo-gpu-1", product_name="RTX 4090 24GB", template_id="1")


def _fail(message: str) -> typer.Exit:
    out.print(f"[bold red]✗ {escape(message)}[/]")
    return typer.Exit(ExitCode.FAILED)


def _webhook_panel(hook: ReceivedWebhook) -> Panel:
    data = hook.payload.get("data") if isinstance(hook.payload.get("data"), dict) else {}
    assert isinstance(data, dict)
    signature = (
        "[bold green]verified ✓[/] (Standard Webhooks, HMAC-SHA256)"
        if hook.verified
        else f"[bold red]NOT verified ✗[/] ({escape(hook.problem or '')})"
    )
    lines = [
        f"[bold]type[/]         {escape(hook.type)}",
        f"[bold]signature[/]    {signature}",
        f"[bold]webhook-id[/]   {escape(hook.webhook_id)}",
        f"[bold]timestamp[/]    {escape(str(hook.payload.get('timestamp', '-')))}",
        f"[bold]instanceId[/]   {escape(str(data.get('instanceId', '-')))}",
        f"[bold]name[/]         {escape(str(data.get('name', '-')))}",
        f"[bold]status[/]       {styled_status(str(data.get('status', '-')))}",
        f"[bold]elapsedTime[/]  {escape(str(data.get('elapsedTime', '-')))} s",
    ]
    if data.get("error"):
        lines.append(f"[bold]error[/]        [red]{escape(str(data['error']))}[/]")
    return Panel("\n".join(lines), title="Webhook received", title_align="left", expand=False)


def _print_usage_guide(base_url: str, instance_id: str) -> None:
    """Plain lines without borders or wrapping, so every command can be copied as is."""
    body = json.dumps({"name": "my-gpu", "productName": "RTX 4090 24GB", "templateId": "1"})
    api = f"{base_url}/api/instances"
    commands = [
        "# with curl",
        f"curl -s {api}",
        f"curl -s {api}/{instance_id}",
        f"curl -s -X POST {api}/{instance_id}/stop",
        f"curl -s -X POST {api}/{instance_id}/start",
        f"curl -s -X DELETE {api}/{instance_id}",
        f"curl -s -X POST {api} -H 'Content-Type: application/json' -d '{body}'",
        "",
        "# with this command line, in another terminal",
        f"export NOVITA_MANAGER_URL={base_url}",
        "novita-manager instances list",
        f"novita-manager instances stop {instance_id} --wait",
        f"novita-manager instances start {instance_id} --wait",
        'novita-manager instances create --name my-gpu --product "RTX 4090 24GB" --template 1 '
        "--wait",
    ]
    out.print(Rule("[bold]Try it[/]"))
    out.print(
        f"The service is running at [bold]{base_url}[/]: dashboard at [bold]{base_url}/[/], "
        f"OpenAPI docs at {base_url}/docs.\n"
    )
    for line in commands:
        out.print(escape(line), soft_wrap=True, style="dim" if line.startswith("#") else None)
    out.print("\nWebhooks that arrive are printed below. Press [bold]Ctrl-C[/] to stop everything.")


def _raise_keyboard_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve_until_interrupted(inbox_seen: int, stack: DemoStack) -> None:
    """Print webhooks as they arrive (from curl's stop/start/delete) until Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    while True:
        hooks = stack.inbox.received()
        for hook in hooks[inbox_seen:]:
            out.print(_webhook_panel(hook))
        inbox_seen = len(hooks)
        time.sleep(0.3)


def demo(
    once: Annotated[
        bool,
        typer.Option("--once", help="Exit (0) after the webhook instead of serving until Ctrl-C."),
    ] = False,
    port: Annotated[
        int,
        typer.Option(
            "--port",
            min=0,
            max=65535,
            help="Service port; a free one is used when it is taken (0: any free port).",
        ),
    ] = 3000,
    time_scale: Annotated[
        float,
        typer.Option(
            "--time-scale",
            min=0.001,
            max=10,
            help="Factor on simulated durations (0.05: a ~60 s Novita boot takes ~3 s).",
        ),
    ] = 0.05,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1, help="Seconds to wait for running and the webhook."),
    ] = 90.0,
) -> None:
    """Run the whole system locally and create a GPU instance, with nothing to configure.

    Starts the Novita simulator, the service (SQLite in a temporary folder, a generated webhook
    secret) and a local webhook receiver, all on 127.0.0.1; creates an instance through the REST
    API, shows its progress creating → starting → running, the signed webhook it received
    (signature verified) and the instance's details. Then it keeps running and shows how to call
    the API with curl or `novita-manager instances` until Ctrl-C. Your environment and .env are
    not read; no Novita account is needed and nothing is billed.

    Exit codes: 0 ok; 1 the instance failed, the webhook did not arrive or did not verify, or
    something did not start.
    """
    from novita_manager.cli.demo_stack import DemoStack

    out.print(Rule("[bold]novita-manager demo[/]"))
    started = time.monotonic()
    try:
        with DemoStack(port=port, time_scale=time_scale) as stack:
            stack.start_simulator()
            out.print(
                f"[green]✓[/] Novita simulator  {stack.simulator.root_url}  "
                f"[dim](time scale {time_scale:g})[/]"
            )
            stack.start_inbox()
            out.print(
                f"[green]✓[/] webhook receiver  {stack.inbox.url}  [dim](checks signatures)[/]"
            )
            stack.start_service()
            out.print(
                f"[green]✓[/] service           {stack.base_url}  [dim](SQLite, temp folder)[/]"
            )
            out.print(
                f"[green]✓[/] dashboard         {stack.base_url}/  [dim](open it in a browser)[/]"
            )
            if port and not stack.base_url.endswith(f":{port}"):
                out.print(f"  [yellow]port {port} was taken; using {stack.base_url}[/]")
            _run(stack, once, timeout, started)
    except KeyboardInterrupt:
        out.print("\n[dim]Stopped: simulator, service and receiver shut down.[/]")
        if once:
            raise typer.Exit(130) from None
    except (RuntimeError, OSError) as error:  # a part that could not start (port, disk, ...)
        raise _fail(f"the demo could not start: {error}") from None


def _run(stack: DemoStack, once: bool, timeout: float, started: float) -> None:
    with ManagerClient(stack.base_url) as client:
        body = json.dumps(DEMO_REQUEST.to_body())
        out.print(f"\n[bold]POST /api/instances[/]\n  {escape(body)}")
        try:
            created = client.create_instance(DEMO_REQUEST)
        except ServiceError as error:
            print_error(error)
            raise _fail("the service refused the demo instance") from None
        instance_id = created.instanceId
        price = created.pricePerHour
        out.print(
            f"[green]✓[/] 201 created [bold]{instance_id}[/] in {created.region}"
            + (f" at ${price:g}/h" if price is not None else "")
        )
        out.print("\n[bold]Progress[/] [dim](polling GET /api/instances/{id})[/]")
        remaining = max(1.0, timeout - (time.monotonic() - started))
        result = watch_instance(
            client,
            instance_id,
            "running",
            out,
            remaining,
            interval=0.25,
            initial_status=created.status,
        )
        if result.outcome != "reached":
            status = result.view.status if result.view else "unknown"
            if result.outcome == "timeout":
                raise _fail(f"the instance was still {status} after {timeout:g} s")
            last_error = result.view.lastError if result.view else None
            raise _fail(f"the instance ended {status}: {last_error}")
        out.print(f"[green]✓[/] running after {result.elapsed:.1f} s")

        remaining = max(1.0, timeout - (time.monotonic() - started))
        with out.status("waiting for the webhook…"):
            hook = stack.inbox.wait_for(lambda h: h.instance_id == instance_id, remaining)
        if hook is None:
            raise _fail(f"no webhook arrived within {timeout:g} s")
        out.print()
        out.print(_webhook_panel(hook))
        out.print()
        out.print(instance_table(client.get_instance(instance_id), title="Instance"))
        out.print()
        if not hook.verified:
            raise _fail("the webhook's signature did not verify")
        if hook.type != "instance.running":
            raise _fail(f"expected instance.running, got {hook.type}")
        if once:
            elapsed = time.monotonic() - started
            out.print(f"[bold green]✓ Demo complete in {elapsed:.1f} s[/] (--once: exiting)")
            return
        _print_usage_guide(stack.base_url, instance_id)
        _serve_until_interrupted(len(stack.inbox.received()), stack)
