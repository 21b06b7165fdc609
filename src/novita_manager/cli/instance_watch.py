"""`novita-manager instances watch [NAME-OR-ID]`: print events as they happen.

Reads the live event stream (`GET /api/events`): every status change and every webhook event,
of one instance or of all. The stream reconnects by itself (with Last-Event-ID) when the
service restarts, so nothing is missed or shown twice; Ctrl-C ends it and prints the id to
resume from (`--since`).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from novita_manager.cli.options import ApiKey, Json, Url, client_for
from novita_manager.cli.output import err, out, styled_status
from novita_manager.sdk import DEFAULT_URL, StreamEvent


def event_line(event: StreamEvent) -> str:
    """One line per event: time, instance, what happened."""
    data = event.data
    when = str(event.body.get("timestamp") or "")[11:19] or "--:--:--"
    who = escape(str(data.get("name") or data.get("instanceId") or "?"))
    if event.type == "instance.status":
        change = f"{styled_status(data.get('fromStatus'))} → {styled_status(data.get('status'))}"
        reason = data.get("reason")
        detail = f"  [dim]{escape(str(reason))}[/]" if reason else ""
        return f"[dim]{when}[/]  #{event.id:<6} {who}  {change}{detail}"
    extra = data.get("error") or data.get("reason") or ""
    detail = f"  [dim]{escape(str(extra))}[/]" if extra else ""
    return f"[dim]{when}[/]  #{event.id:<6} {who}  [bold]{escape(event.type)}[/]{detail}"


def watch(
    instance: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME-OR-ID]",
            help="Only this instance (our id, its Novita id or its name); all when left out.",
        ),
    ] = None,
    since: Annotated[
        int | None,
        typer.Option(
            "--since",
            min=0,
            help="Replay the events after this event id first (0: the whole history).",
        ),
    ] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
    as_json: Json = False,
) -> None:
    """Print events (status changes and webhook events) as they happen, until Ctrl-C.

    With --json, one event a line: {"id", "type", "timestamp", "data"}.
    """
    last: int | None = since
    with client_for(url, api_key, as_json) as client:
        instance_id = client.find_instance(instance).id if instance else None
        target = f"instance {instance_id}" if instance_id else "all instances"
        err.print(f"Watching {target}; Ctrl-C to stop.")
        try:
            for event in client.events(instance_id=instance_id, last_event_id=since):
                last = event.id
                if as_json:
                    record = {"id": event.id, "type": event.type, **event.body}
                    print(json.dumps(record, ensure_ascii=False), flush=True)
                else:
                    out.print(event_line(event))
        except KeyboardInterrupt:
            err.print()
            resume = f" --since {last}" if last is not None else ""
            err.print(f"Stopped. Resume with: novita-manager instances watch{resume}")
