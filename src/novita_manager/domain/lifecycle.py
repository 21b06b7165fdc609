"""The provisioning decision: given what we know of an instance, what to do next (pure).

The engine feeds it a snapshot (our status, the operation under way, whether its upstream call
was sent, the last observation from the status sync) and carries out the decision. Keeping this
free of I/O lets every path (timeouts, reclaims, errors, lost starts) be tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from novita_manager.domain.observations import status_error_since, status_error_text
from novita_manager.domain.recovery import spot_signal
from novita_manager.domain.statuses import (
    NOVITA_EXITED,
    NOVITA_REMOVING,
    NOVITA_RUNNING,
    Event,
    Operation,
    Status,
)

# statusError handling (reading `status_error`): an instance that is *not* exited and shows a
# statusError is failed only once the error has been seen for this long without clearing. Novita
# may set statusError transiently while pulling or starting (e.g. "retrying image pull") and
# clear it when the instance runs; a real failure either ends `exited` with the error (failed at
# once) or keeps the error past this grace (then failed). One minute is longer than any retry of
# a pull we know of and short against the 600 s startup timeout.
STATUS_ERROR_GRACE_SECONDS = 60.0


class Action(StrEnum):
    CREATE = "create"  # no upstream instance yet: find-or-create
    CALL = "call"  # send the operation's upstream call (start, stop, delete)
    TRANSITION = "transition"  # change status (and emit an event)
    WAIT = "wait"  # nothing to do until the next observation or the deadline
    IDLE = "idle"  # nothing to do at all
    # Spot life (domain/recovery.py; engine/provisioning/recover.py):
    NOTE_RECLAIM = "note_reclaim"  # a reclaim is announced: warn once (instance.reclaiming)
    RECLAIMED = "reclaimed"  # the instance was taken: apply the onReclaim policy
    RETIRE = "retire"  # a recreate: delete the reclaimed instance before creating anew


@dataclass(frozen=True)
class Snapshot:
    status: Status
    operation: Operation | None
    operation_issued: bool
    operation_started_at: datetime | None  # the deadline counts from here
    operation_issued_at: datetime | None  # observations before this are not fresh
    has_upstream: bool
    observation: dict[str, Any] | None
    observed_at: datetime | None
    reclaim_announced: bool = False  # instance.reclaiming was sent for the current reclaim
    recovery: str | None = None  # the recovery under way: restart, migrate or recreate
    replacing: bool = False  # a recreate whose reclaimed instance is still the row's


@dataclass(frozen=True)
class Decision:
    action: Action
    to_status: Status | None = None
    event: Event | None = None
    reason: str | None = None
    call: Operation | None = None
    wait_seconds: float | None = None


def fresh_observation(snapshot: Snapshot) -> dict[str, Any] | None:
    """The observation if it was taken after the current operation's last upstream call."""
    if snapshot.observation is None or snapshot.observed_at is None:
        return None
    since = snapshot.operation_issued_at or snapshot.operation_started_at
    if since is not None and snapshot.observed_at < since:
        return None
    return snapshot.observation


def _fail(reason: str) -> Decision:
    return Decision(Action.TRANSITION, Status.FAILED, Event.FAILED, reason)


def _error_left(
    observation: dict[str, Any] | None, observed_at: datetime | None, now: datetime, grace: float
) -> float | None:
    """Seconds until a statusError counts as a failure: None when there is no error, 0 when it
    does now (the instance is exited with it, or it persisted for `grace`).

    Novita may set statusError transiently while pulling or starting and clear it when the
    instance runs (readings `status_error`), so an error on an instance still on its way up is
    given `grace` seconds from when it was first seen.
    """
    if not status_error_text(observation):
        return None
    assert observation is not None
    if observation.get("status") == NOVITA_EXITED or observation.get("gone"):
        return 0.0
    since = status_error_since(observation) or observed_at or now
    return max(0.0, grace - (now - since).total_seconds())


def decide(
    snapshot: Snapshot,
    *,
    now: datetime,
    timeout: float,
    recheck_after: float,
    status_error_grace: float = STATUS_ERROR_GRACE_SECONDS,
) -> Decision:
    """The next step. A WAIT lasts until the deadline or `recheck_after`, whichever is first:
    the status sync wakes the row as soon as an observation needs a reaction, so waiting rows
    cost nothing in between."""
    operation = snapshot.operation
    if operation is None:
        return _watch(snapshot, now, status_error_grace)
    started = snapshot.operation_started_at or now
    if started > now:  # a recovery waiting out its backoff
        return Decision(Action.WAIT, wait_seconds=(started - now).total_seconds())
    if snapshot.replacing:
        return Decision(Action.RETIRE)
    if operation is Operation.CREATE and not snapshot.has_upstream:
        return Decision(Action.CREATE)
    remaining = timeout - (now - started).total_seconds()
    observation = fresh_observation(snapshot)
    novita_status = observation.get("status") if observation else None
    gone = bool(observation and observation.get("gone"))
    wait = Decision(Action.WAIT, wait_seconds=max(0.0, min(recheck_after, remaining)))
    # Give up only on what was seen after the deadline: after the service (or Novita) was down
    # past it, an instance may well be running, and one more look tells.
    deadline = started + timedelta(seconds=timeout)
    timed_out = remaining <= 0 and (
        snapshot.observed_at is not None and snapshot.observed_at >= deadline
    )
    if remaining <= 0 and not timed_out:
        wait = Decision(Action.WAIT, wait_seconds=recheck_after)

    if operation is Operation.DELETE:
        if not snapshot.has_upstream or gone:
            return Decision(Action.TRANSITION, Status.DELETED, Event.DELETED, "deleted")
        if not snapshot.operation_issued or remaining <= 0:
            return Decision(Action.CALL, call=Operation.DELETE)
        return wait

    if operation is Operation.STOP:
        if gone:
            return Decision(
                Action.TRANSITION, Status.DELETED, Event.DELETED, "instance removed upstream"
            )
        if not snapshot.operation_issued or novita_status == NOVITA_RUNNING:
            # Not sent yet, or seen still running after it was sent: the stop did not take.
            return Decision(Action.CALL, call=Operation.STOP)
        if novita_status == NOVITA_EXITED:
            return Decision(Action.TRANSITION, Status.STOPPED, Event.STOPPED, "stopped")
        if timed_out:
            return _fail(f"stop did not complete within {timeout:g} s")
        return wait

    # CREATE (with an upstream instance) or START: wait for running, starting it if needed.
    error_left = _error_left(observation, snapshot.observed_at, now, status_error_grace)
    if error_left == 0.0:
        return _fail(status_error_text(observation) or "instance reported an error")
    if error_left is not None:
        wait = Decision(Action.WAIT, wait_seconds=min(wait.wait_seconds or 0.0, error_left))
    if gone:
        return _fail("the instance disappeared upstream before it was running")
    if novita_status == NOVITA_RUNNING:
        if snapshot.recovery:
            reason = f"running again ({snapshot.recovery} after a spot reclaim)"
            return Decision(Action.TRANSITION, Status.RUNNING, Event.RECOVERED, reason)
        return Decision(Action.TRANSITION, Status.RUNNING, Event.RUNNING, "running")
    if timed_out:
        last = novita_status or (snapshot.observation or {}).get("status") or "unknown"
        return _fail(
            f"instance did not reach running within {timeout:g} s (last Novita status: {last})"
        )
    if novita_status == NOVITA_EXITED:
        # Waiting for a start, or seen still stopped after the start was sent (it did not take:
        # an accepted start shows toStart at once): send it (again).
        return Decision(Action.CALL, call=Operation.START)
    if operation is Operation.START and observation is None and not snapshot.operation_issued:
        return Decision(Action.CALL, call=Operation.START)
    return wait


def _watch(snapshot: Snapshot, now: datetime, grace: float) -> Decision:
    """No operation under way: follow changes made outside the service (reclaim, removal)."""
    observation = snapshot.observation
    if observation is None:
        return Decision(Action.IDLE)
    status = observation.get("status")
    if snapshot.status is Status.RUNNING:
        if observation.get("gone") or status in NOVITA_REMOVING:
            return Decision(
                Action.TRANSITION, Status.DELETED, Event.DELETED, "instance removed upstream"
            )
        if _error_left(observation, snapshot.observed_at, now, grace) == 0.0:
            return _fail(status_error_text(observation) or "instance reported an error")
        spot = spot_signal(observation)
        if spot.reclaimed:  # the onReclaim policy decides (engine/provisioning/recover.py)
            return Decision(Action.RECLAIMED, reason="spot instance reclaimed")
        if status == NOVITA_EXITED:
            return Decision(
                Action.TRANSITION, Status.STOPPED, Event.STOPPED, "instance stopped upstream"
            )
        if spot.noticed and not snapshot.reclaim_announced:
            return Decision(Action.NOTE_RECLAIM, event=Event.RECLAIMING)
    if snapshot.status is Status.STOPPED:
        if observation.get("gone"):
            return Decision(
                Action.TRANSITION, Status.DELETED, Event.DELETED, "instance removed upstream"
            )
        if status == NOVITA_RUNNING:
            return Decision(Action.TRANSITION, Status.RUNNING, Event.RUNNING, "started upstream")
    return Decision(Action.IDLE)
