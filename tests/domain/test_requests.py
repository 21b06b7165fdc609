"""The rules of operation requests: what the API accepts, and how the pipeline consumes them."""

from __future__ import annotations

import pytest

from novita_manager.domain.requests import (
    Pending,
    RequestState,
    acceptance_refusal,
    expected_status,
    outcome_of,
    plan_requests,
)
from novita_manager.domain.statuses import Operation, Status

START, STOP, DELETE, CREATE = Operation.START, Operation.STOP, Operation.DELETE, Operation.CREATE
IN_PROGRESS, SUPERSEDED, REFUSED = (
    RequestState.IN_PROGRESS,
    RequestState.SUPERSEDED,
    RequestState.REFUSED,
)


def refusal(
    operation: Operation,
    status: Status,
    under_way: Operation | None = None,
    pending: tuple[Operation, ...] = (),
    has_upstream: bool = True,
) -> str | None:
    return acceptance_refusal(
        operation, status=status, under_way=under_way, pending=pending, has_upstream=has_upstream
    )


@pytest.mark.parametrize(
    ("operation", "status", "allowed"),
    [
        (START, Status.STOPPED, True),
        (START, Status.FAILED, True),
        (START, Status.RUNNING, False),
        (STOP, Status.RUNNING, True),
        (STOP, Status.FAILED, True),
        (STOP, Status.STOPPED, False),
        (DELETE, Status.RUNNING, True),
        (DELETE, Status.FAILED, True),
        (DELETE, Status.STOPPED, True),
        (DELETE, Status.DELETED, False),
    ],
)
def test_which_resting_status_allows_which_operation(operation, status, allowed) -> None:
    found = refusal(operation, status)
    assert (found is None) is allowed
    if found is not None:
        assert status.value in found  # the 409 names the current state


def test_requests_are_judged_against_the_status_after_the_accepted_work() -> None:
    assert expected_status(Status.RUNNING, None, [STOP]) is Status.STOPPED
    assert expected_status(Status.STOPPING, STOP, [START]) is Status.RUNNING
    # stop then start on a running instance: both accepted, a restart
    assert refusal(STOP, Status.RUNNING) is None
    assert refusal(START, Status.RUNNING, pending=(STOP,)) is None
    # a start while a stop is under way waits for it
    assert refusal(START, Status.STOPPING, under_way=STOP) is None
    # a stop while creating waits for the create
    assert refusal(STOP, Status.CREATING, under_way=CREATE, has_upstream=False) is None
    # a start while starting: it will be running, refused and the message says both states
    found = refusal(START, Status.CREATING, under_way=CREATE, has_upstream=False)
    assert found is not None
    assert "will be running" in found
    assert "creating now" in found


def test_a_repeated_request_joins_and_a_delete_ends_the_queue() -> None:
    assert refusal(STOP, Status.STOPPING, under_way=STOP) is None
    assert refusal(DELETE, Status.DELETING, under_way=DELETE) is None
    assert refusal(DELETE, Status.RUNNING, pending=(STOP, DELETE)) is None
    for operation in (START, STOP):
        found = refusal(operation, Status.STOPPED, pending=(DELETE,))
        assert found is not None
        assert "being deleted" in found
        assert refusal(operation, Status.DELETING, under_way=DELETE) is not None


def test_an_instance_never_created_upstream_can_only_be_deleted() -> None:
    assert refusal(START, Status.FAILED, has_upstream=False) is not None
    assert refusal(STOP, Status.FAILED, has_upstream=False) is not None
    assert refusal(DELETE, Status.FAILED, has_upstream=False) is None


def pend(*operations: Operation, first: int = 1) -> list[Pending]:
    return [Pending(first + i, op) for i, op in enumerate(operations)]


def test_idle_instance_takes_up_the_first_request_and_the_next_waits() -> None:
    plan = plan_requests(Status.RUNNING, None, True, pend(STOP, START), 0)
    assert plan.adopt == Pending(1, STOP)
    assert plan.outcomes == {1: (IN_PROGRESS, None)}
    assert plan.consumed_seq == 1  # the start stays pending until the stop is done


def test_a_delete_supersedes_everything_before_it() -> None:
    plan = plan_requests(Status.STARTING, START, True, pend(STOP, START, DELETE, DELETE), 0)
    assert plan.adopt == Pending(3, DELETE)
    assert plan.supersede_under_way == "superseded by delete #3"
    assert plan.outcomes == {
        1: (SUPERSEDED, "superseded by delete #3"),
        2: (SUPERSEDED, "superseded by delete #3"),
        3: (IN_PROGRESS, None),
        4: (IN_PROGRESS, None),
    }
    assert plan.consumed_seq == 4


def test_a_delete_joins_a_delete_under_way() -> None:
    plan = plan_requests(Status.DELETING, DELETE, True, pend(DELETE, first=5), 4)
    assert plan.adopt is None
    assert plan.outcomes == {5: (IN_PROGRESS, None)}
    assert plan.supersede_under_way is None


def test_a_stop_supersedes_a_start_under_way_or_taken_up_in_the_same_plan() -> None:
    under_way = plan_requests(Status.STARTING, START, True, pend(START, STOP), 0)
    assert under_way.supersede_under_way == "superseded by stop #2"
    assert under_way.outcomes == {1: (SUPERSEDED, "superseded by stop #2"), 2: (IN_PROGRESS, None)}
    assert under_way.adopt == Pending(2, STOP)
    same_plan = plan_requests(Status.STOPPED, None, True, pend(START, STOP), 0)
    assert same_plan.supersede_under_way is None  # nothing was under way before
    assert same_plan.outcomes == {1: (SUPERSEDED, "superseded by stop #2"), 2: (IN_PROGRESS, None)}
    assert same_plan.adopt == Pending(2, STOP)


def test_a_start_waits_for_a_stop_and_a_stop_for_a_create() -> None:
    plan = plan_requests(Status.STOPPING, STOP, True, pend(START), 0)
    assert (plan.adopt, plan.outcomes, plan.consumed_seq) == (None, {}, 0)
    plan = plan_requests(Status.CREATING, CREATE, False, pend(STOP), 0)
    assert (plan.adopt, plan.outcomes, plan.consumed_seq) == (None, {}, 0)


def test_a_request_that_no_longer_applies_is_refused_with_the_reason() -> None:
    # accepted while a stop was under way; the instance was then removed upstream
    plan = plan_requests(Status.DELETED, None, True, pend(START), 0)
    assert plan.adopt is None
    state, reason = plan.outcomes[1]
    assert state is REFUSED
    assert reason is not None
    assert "deleted" in reason
    # a stop queued behind a create that failed before anything existed upstream
    plan = plan_requests(Status.FAILED, None, False, pend(STOP, DELETE), 0)
    assert plan.outcomes[1] == (SUPERSEDED, "superseded by delete #2")
    assert plan.adopt == Pending(2, DELETE)


def test_a_request_whose_goal_was_reached_meanwhile_succeeds_with_nothing_to_do() -> None:
    plan = plan_requests(Status.STOPPED, None, True, pend(STOP), 0)  # reclaimed meanwhile
    assert plan.adopt is None
    assert plan.outcomes == {
        1: (RequestState.SUCCEEDED, "nothing to do: the instance was already stopped")
    }


def test_a_join_shares_the_outcome_of_the_request_it_joined() -> None:
    """A second delete accepted while the first was finishing: the first succeeded before the
    pipeline saw the second, which must succeed too (it was refused as 'no longer applies')."""
    done = (RequestState.SUCCEEDED, None)
    plan = plan_requests(Status.DELETED, None, True, [Pending(2, DELETE, done, 1)], 1)
    assert plan.outcomes == {2: done}
    assert plan.consumed_seq == 2
    failed = (RequestState.FAILED, "Novita refused stop: boom")
    plan = plan_requests(Status.FAILED, None, True, [Pending(4, STOP, failed, 3)], 3)
    assert plan.outcomes == {4: failed}
    # joined within the same plan: a request resolved at once passes its outcome on
    plan = plan_requests(
        Status.STOPPED, None, True, [Pending(1, STOP), Pending(2, STOP, None, 1)], 0
    )
    assert plan.outcomes[2] == plan.outcomes[1]
    assert plan.outcomes[1][0] is RequestState.SUCCEEDED
    # joined within the same plan while it runs: both in progress, one operation
    plan = plan_requests(
        Status.RUNNING, None, True, [Pending(1, STOP), Pending(2, STOP, None, 1)], 0
    )
    assert plan.outcomes == {1: (IN_PROGRESS, None), 2: (IN_PROGRESS, None)}
    assert plan.adopt == Pending(1, STOP)


def test_every_pending_request_ends_resolved_taken_or_waiting_in_order() -> None:
    """Whatever the queue, the plan consumes a prefix: nothing is skipped or lost."""
    operations = [START, STOP, DELETE]
    statuses = [Status.RUNNING, Status.STOPPED, Status.FAILED, Status.DELETED]
    under_ways = [None, CREATE, START, STOP, DELETE]
    queues = [[a, b, c] for a in operations for b in operations for c in operations]
    for status in statuses:
        for under_way in under_ways:
            for queue in queues:
                pending = pend(*queue)
                plan = plan_requests(status, under_way, True, pending, 0)
                assert set(plan.outcomes) == {p.seq for p in pending if p.seq <= plan.consumed_seq}
                for state, reason in plan.outcomes.values():
                    if state in (SUPERSEDED, REFUSED):
                        assert reason
                    if state is IN_PROGRESS:
                        assert reason is None


def test_the_outcome_is_success_only_at_the_operations_resting_status() -> None:
    assert outcome_of(STOP, Status.STOPPED) is RequestState.SUCCEEDED
    assert outcome_of(START, Status.RUNNING) is RequestState.SUCCEEDED
    assert outcome_of(START, Status.FAILED) is RequestState.FAILED
    assert outcome_of(STOP, Status.DELETED) is RequestState.FAILED
