"""Follow one instance until it reaches a status, printing every change as it happens.

Used by `instances create|start|stop|delete --wait` and by the demo. An operation is recorded
before the background pipeline moves the instance, so right after `start` a failed instance may
still read `failed`: a status equal to the one before the operation only counts once the instance
has left it (or `failedAt` changed), never on the first poll.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.markup import escape

from novita_manager.cli.output import styled_status
from novita_manager.sdk import ApiResponseError, InstanceView, ManagerClient

Outcome = Literal["reached", "failed", "timeout"]
SETTLED = frozenset({"running", "failed", "stopped", "deleted"})


@dataclass(frozen=True)
class WatchResult:
    outcome: Outcome
    view: InstanceView | None
    elapsed: float


def _progress_line(elapsed: float, status: str | None, novita_status: str | None) -> str:
    return (
        f"  [dim]{elapsed:6.1f}s[/]  {styled_status(status, 9)}"
        f"  novitaStatus: {escape(novita_status or '-')}"
    )


def _decide(
    view: InstanceView, target: str, before: InstanceView | None, left_before: bool
) -> Outcome | None:
    status = view.status
    if not left_before:  # still reads as before the operation: only a new failure counts
        assert before is not None
        if status == "failed" and view.failedAt != before.failedAt:
            return "failed"
        return None
    if status == target:
        return "reached"
    return "failed" if status in SETTLED else None


def watch_instance(
    client: ManagerClient,
    instance_id: str,
    target: str,
    console: Console,
    timeout: float = 600.0,
    interval: float = 1.0,
    before: InstanceView | None = None,
    initial_status: str | None = None,
) -> WatchResult:
    """Poll until `target` (or another settled status once the instance moved); never raises
    for 429/5xx answers, which are retried until the timeout. `initial_status` (what the
    operation's answer said, e.g. `creating`) is shown first, however fast the first poll."""
    started = time.monotonic()
    last_seen: tuple[str | None, str | None] | None = None
    if initial_status is not None:
        last_seen = (initial_status, None)
        console.print(_progress_line(0.0, initial_status, None))
    left_before = before is None
    view: InstanceView | None = None
    with console.status(f"waiting for {target}…", spinner="dots") as spinner:
        while True:
            elapsed = time.monotonic() - started
            try:
                view = client.get_instance(instance_id)
            except ApiResponseError as error:
                if error.status_code != 429 and error.status_code < 500:
                    raise
                spinner.update(f"service answered {error.status_code}; retrying…")
            else:
                seen = (view.status, view.novitaStatus)
                if seen != last_seen:
                    console.print(_progress_line(elapsed, *seen))
                    last_seen = seen
                if before is None or view.status != before.status:
                    left_before = True
                outcome = _decide(view, target, before, left_before)
                if outcome is not None:
                    return WatchResult(outcome, view, elapsed)
                spinner.update(
                    f"{escape(view.status)} → {target} "
                    f"[dim]({elapsed:.0f}s, novitaStatus {escape(str(seen[1] or '-'))})[/]"
                )
            if elapsed >= timeout:
                return WatchResult("timeout", view, elapsed)
            time.sleep(max(0.05, min(interval, timeout - elapsed)))
