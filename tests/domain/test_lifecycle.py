from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from novita_manager.domain.lifecycle import Action, Snapshot, decide
from novita_manager.domain.statuses import Event, Operation, Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def snap(
    status: Status = Status.STARTING,
    operation: Operation | None = Operation.CREATE,
    *,
    issued: bool = False,
    upstream: bool = True,
    observation: dict[str, Any] | None = None,
    observed_after: float | None = 1.0,
    started: datetime = T0,
    issued_at: datetime | None = None,
) -> Snapshot:
    return Snapshot(
        status=status,
        operation=operation,
        operation_issued=issued,
        operation_started_at=started,
        operation_issued_at=issued_at,
        has_upstream=upstream,
        observation=observation,
        observed_at=None if observed_after is None else started + timedelta(seconds=observed_after),
    )


def run(snapshot: Snapshot, elapsed: float = 5.0):
    return decide(snapshot, now=T0 + timedelta(seconds=elapsed), timeout=600, recheck_after=30)


def test_create_without_upstream_asks_to_create() -> None:
    assert run(snap(Status.CREATING, upstream=False)).action is Action.CREATE


def test_waits_without_observation_then_runs() -> None:
    waiting = run(snap())
    assert waiting.action is Action.WAIT
    assert waiting.wait_seconds == 30
    running = run(snap(observation={"status": "running"}))
    assert (running.action, running.to_status, running.event) == (
        Action.TRANSITION,
        Status.RUNNING,
        Event.RUNNING,
    )


def test_exited_new_instance_is_started_and_restarted_if_it_did_not_take() -> None:
    first = run(snap(observation={"status": "exited"}))
    assert (first.action, first.call) == (Action.CALL, Operation.START)
    on_its_way = run(snap(observation={"status": "toStart"}, issued=True))
    assert on_its_way.action is Action.WAIT
    not_taken = run(snap(observation={"status": "exited"}, issued=True))
    assert not_taken.call is Operation.START
    not_seen_since = run(snap(observation={"status": "exited"}, issued=True, observed_after=-1))
    assert not_seen_since.action is Action.WAIT


def test_on_its_way_is_not_started() -> None:
    for status in ("toCreate", "creating", "pulling", "starting", "someNewStatus"):
        assert run(snap(observation={"status": status})).action is Action.WAIT


def test_stale_observation_is_ignored() -> None:
    decision = run(snap(observation={"status": "running"}, observed_after=-1))
    assert decision.action is Action.WAIT


def test_status_error_fails_with_reason() -> None:
    decision = run(
        snap(
            observation={
                "status": "exited",
                "statusError": {"state": "pullFailed", "message": "image not found"},
            }
        )
    )
    assert decision.to_status is Status.FAILED
    assert decision.event is Event.FAILED
    assert decision.reason == "pullFailed: image not found"


def test_timeout_fails_and_names_the_last_status() -> None:
    decision = run(snap(observation={"status": "pulling"}, observed_after=600.5), elapsed=601)
    assert decision.to_status is Status.FAILED
    assert "600" in (decision.reason or "")
    assert "pulling" in (decision.reason or "")


def test_wait_never_passes_the_deadline() -> None:
    assert run(snap(), elapsed=590).wait_seconds == 10


def test_start_from_stopped_issues_start_without_fresh_observation() -> None:
    decision = run(
        snap(Status.STARTING, Operation.START, observation={"status": "exited"}, observed_after=-5)
    )
    assert decision.call is Operation.START


def test_stop_issues_then_completes() -> None:
    assert run(snap(Status.STOPPING, Operation.STOP)).call is Operation.STOP
    stopping = run(
        snap(Status.STOPPING, Operation.STOP, issued=True, observation={"status": "stopping"})
    )
    assert stopping.action is Action.WAIT
    refused = run(
        snap(Status.STOPPING, Operation.STOP, issued=True, observation={"status": "running"})
    )
    assert refused.call is Operation.STOP
    done = run(snap(Status.STOPPING, Operation.STOP, issued=True, observation={"status": "exited"}))
    assert (done.to_status, done.event) == (Status.STOPPED, Event.STOPPED)


def test_delete_issues_then_completes_when_gone() -> None:
    assert run(snap(Status.DELETING, Operation.DELETE)).call is Operation.DELETE
    waiting = run(
        snap(Status.DELETING, Operation.DELETE, issued=True, observation={"status": "removing"})
    )
    assert waiting.action is Action.WAIT
    gone = run(snap(Status.DELETING, Operation.DELETE, issued=True, observation={"gone": True}))
    assert (gone.to_status, gone.event) == (Status.DELETED, Event.DELETED)
    never_created = run(snap(Status.DELETING, Operation.DELETE, upstream=False))
    assert never_created.to_status is Status.DELETED


def test_delete_is_reissued_after_the_deadline() -> None:
    decision = run(
        snap(Status.DELETING, Operation.DELETE, issued=True, observation={"status": "running"}),
        elapsed=700,
    )
    assert decision.call is Operation.DELETE


def test_running_instance_reclaimed_or_removed_upstream() -> None:
    reclaimed = run(
        snap(Status.RUNNING, None, observation={"status": "exited", "spotReclaimTime": "17000"})
    )
    # the onReclaim policy decides what follows (engine/provisioning/recover.py)
    assert (reclaimed.action, reclaimed.reason) == (Action.RECLAIMED, "spot instance reclaimed")
    stopped = run(snap(Status.RUNNING, None, observation={"status": "exited"}))
    assert stopped.reason == "instance stopped upstream"
    removed = run(snap(Status.RUNNING, None, observation={"gone": True}))
    assert removed.to_status is Status.DELETED
    assert run(snap(Status.RUNNING, None, observation={"status": "running"})).action is Action.IDLE


def test_observation_before_the_last_call_is_not_fresh_but_the_deadline_holds() -> None:
    issued = T0 + timedelta(seconds=3)
    stale = run(snap(observation={"status": "exited"}, issued=True, issued_at=issued), 5)
    assert stale.action is Action.WAIT  # observed at T0+1, before the start went out
    late = run(
        snap(observation={"status": "pulling"}, issued=True, issued_at=issued, observed_after=600),
        601,
    )
    assert late.to_status is Status.FAILED  # 600 s from the request, not from the call


def test_past_the_deadline_without_a_later_look_it_looks_once_more() -> None:
    """After downtime longer than the timeout, an instance may be running: look first."""
    decision = run(snap(observation={"status": "pulling"}, observed_after=5), elapsed=900)
    assert decision.action is Action.WAIT
    assert decision.wait_seconds == 30
    nothing_seen = run(snap(observation=None, observed_after=None), elapsed=900)
    assert nothing_seen.action is Action.WAIT
    running = run(snap(observation={"status": "running"}, observed_after=899), elapsed=900)
    assert running.to_status is Status.RUNNING


def test_a_reclaim_notice_is_noted_once_then_the_reclaim_is_handed_to_the_policy() -> None:
    notice = {"status": "running", "spotStatus": "notified", "spotReclaimTime": "1800000000"}
    noted = run(snap(Status.RUNNING, None, observation=notice))
    assert (noted.action, noted.event) == (Action.NOTE_RECLAIM, Event.RECLAIMING)
    again = replace(snap(Status.RUNNING, None, observation=notice), reclaim_announced=True)
    assert run(again).action is Action.IDLE
    taken = {"status": "exited", "spotStatus": "terminated", "spotReclaimTime": "1800000000"}
    assert run(snap(Status.RUNNING, None, observation=taken)).action is Action.RECLAIMED


def test_a_recovery_waits_out_its_backoff_retires_a_reclaimed_instance_and_ends_recovered() -> None:
    later = replace(snap(), operation_started_at=T0 + timedelta(seconds=100), recovery="restart")
    waiting = run(later, 10)
    assert waiting.action is Action.WAIT
    assert waiting.wait_seconds == pytest.approx(90)
    retire = replace(snap(Status.CREATING), recovery="recreate", replacing=True)
    assert run(retire).action is Action.RETIRE
    running = replace(snap(observation={"status": "running"}), recovery="migrate")
    recovered = run(running)
    assert (recovered.to_status, recovered.event) == (Status.RUNNING, Event.RECOVERED)
