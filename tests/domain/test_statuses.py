from __future__ import annotations

import pytest

from novita_manager.domain.statuses import Operation, Status, operation_refusal


@pytest.mark.parametrize(
    ("operation", "status", "allowed"),
    [
        (Operation.START, Status.STOPPED, True),
        (Operation.START, Status.FAILED, True),
        (Operation.START, Status.RUNNING, False),
        (Operation.STOP, Status.RUNNING, True),
        (Operation.STOP, Status.STARTING, True),
        (Operation.STOP, Status.FAILED, True),
        (Operation.STOP, Status.STOPPED, False),
        (Operation.DELETE, Status.CREATING, True),
        (Operation.DELETE, Status.FAILED, True),
        (Operation.DELETE, Status.DELETING, False),
        (Operation.DELETE, Status.DELETED, False),
    ],
)
def test_which_status_allows_which_operation(operation, status, allowed) -> None:
    refusal = operation_refusal(operation, status, None)
    assert (refusal is None) is allowed
    if refusal is not None:
        assert status.value in refusal  # the 409 names the current state


def test_a_repeated_request_joins_and_a_pending_delete_wins() -> None:
    assert operation_refusal(Operation.STOP, Status.STOPPING, "stop") is None
    refusal = operation_refusal(Operation.START, Status.STOPPED, "delete")
    assert refusal is not None
    assert "being deleted" in refusal
