"""Operation requests: which start/stop/delete the API accepts, and how the pipeline consumes them
(pure).

Every accepted request is a row with a per-instance sequence number, so nothing the API answered
202 can be overwritten: the pipeline resolves requests strictly in order, and every request ends
in exactly one recorded outcome. The rules, in the order a user sees them:

- Requests on one instance run in the order they were accepted.
- Whether a request is allowed is judged against the status the instance will rest in once the
  work already accepted is done (`expected_status`): stop then start on a running instance are
  both accepted and run as a restart. A refusal at this point is a 409 and records nothing.
- A request for the same operation as the last one accepted joins it and shares its outcome,
  also when that one finished before the pipeline saw the join (`Pending.joined`).
- A delete supersedes every earlier start and stop not yet done, and interrupts one under way.
- A stop supersedes a start under way (the user wants the GPU off; the start's outcome is
  `superseded`). A start waits for a stop under way, and a stop waits for a create under way.
- When a request's turn comes and the instance already rests where it leads (a stop on an
  instance reclaimed meanwhile), it `succeeded` with nothing to do; when it no longer applies
  (the instance failed, or was removed upstream, in between), it is `refused` with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from novita_manager.domain.statuses import Operation, Status


class RequestState(StrEnum):
    PENDING = "pending"  # accepted, not yet taken up by the pipeline
    IN_PROGRESS = "in_progress"  # the operation under way serves it
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    REFUSED = "refused"


FINAL_STATES = frozenset(
    {RequestState.SUCCEEDED, RequestState.FAILED, RequestState.SUPERSEDED, RequestState.REFUSED}
)

# The status an operation leaves the instance in when it succeeds.
REST_STATUS = {
    Operation.CREATE: Status.RUNNING,
    Operation.START: Status.RUNNING,
    Operation.STOP: Status.STOPPED,
    Operation.DELETE: Status.DELETED,
}

# Which resting statuses each user operation may start from.
ALLOWED_FROM: dict[Operation, frozenset[Status]] = {
    Operation.START: frozenset({Status.STOPPED, Status.FAILED}),
    Operation.STOP: frozenset({Status.RUNNING, Status.FAILED}),
    Operation.DELETE: frozenset({Status.RUNNING, Status.FAILED, Status.STOPPED}),
}

# An operation under way that a newly taken request interrupts (all others make it wait).
_PREEMPTS: dict[Operation, frozenset[Operation]] = {
    Operation.DELETE: frozenset({Operation.CREATE, Operation.START, Operation.STOP}),
    Operation.STOP: frozenset({Operation.START}),
    Operation.START: frozenset(),
}


@dataclass(frozen=True)
class Pending:
    seq: int
    operation: Operation
    # The final outcome of the request this one joined at acceptance, once that one is done.
    joined: tuple[RequestState, str | None] | None = None
    joins: int | None = None  # the seq it joined, when that one is pending too


def expected_status(
    status: Status, under_way: Operation | None, pending: Sequence[Operation]
) -> Status:
    """The status the instance rests in once the operation under way and `pending` are done."""
    expected = REST_STATUS[under_way] if under_way is not None else status
    for operation in pending:
        expected = REST_STATUS[operation]
    return expected


def acceptance_refusal(
    operation: Operation,
    *,
    status: Status,
    under_way: Operation | None,
    pending: Sequence[Operation],
    has_upstream: bool,
) -> str | None:
    """Why the API must refuse `operation` now (409), or None to accept it."""
    last = pending[-1] if pending else under_way
    if last is operation:
        return None  # asked again: joins the request before it
    if Operation.DELETE in pending or under_way is Operation.DELETE:
        return f"cannot {operation.value}: the instance is being deleted"
    expected = expected_status(status, under_way, pending)
    if expected not in ALLOWED_FROM[operation]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED_FROM[operation]))
        now = status.value
        after = "" if expected is status else f" (it is {now} now)"
        verb = "is" if expected is status else "will be"
        subject = f"an instance that {verb} {expected.value}{after}"
        return f"cannot {operation.value} {subject} (allowed from: {allowed})"
    if operation is not Operation.DELETE and not has_upstream and under_way is None:
        return f"cannot {operation.value}: the instance was never created on Novita"
    return None


def turn_outcome(
    operation: Operation, status: Status, has_upstream: bool
) -> tuple[RequestState, str] | None:
    """How a request whose turn has come on the idle instance ends at once, or None to run it."""
    if status is REST_STATUS[operation]:
        return RequestState.SUCCEEDED, f"nothing to do: the instance was already {status.value}"
    if status not in ALLOWED_FROM[operation]:
        return (
            RequestState.REFUSED,
            f"no longer applies: the instance is {status.value} when its turn came",
        )
    if operation is not Operation.DELETE and not has_upstream:
        return RequestState.REFUSED, "no longer applies: the instance was never created on Novita"
    return None


@dataclass
class Plan:
    """What to do with the pending requests now.

    `outcomes` holds the new state of each pending request resolved or taken up now;
    `supersede_under_way` is the reason to give the requests already in progress when the
    operation under way is interrupted; `adopt` is the request whose operation starts now.
    """

    consumed_seq: int
    outcomes: dict[int, tuple[RequestState, str | None]] = field(default_factory=dict)
    supersede_under_way: str | None = None
    adopt: Pending | None = None


def plan_requests(
    status: Status,
    under_way: Operation | None,
    has_upstream: bool,
    pending: Sequence[Pending],
    consumed_seq: int,
) -> Plan:
    """Consume `pending` (ordered by seq) as far as the rules allow; see the module docstring."""
    plan = Plan(consumed_seq=consumed_seq)
    current = under_way
    group: list[int] = []  # requests taken up in this plan for `current`
    first_delete = next((p for p in pending if p.operation is Operation.DELETE), None)
    for request in pending:
        joined = request.joined
        if joined is None and request.joins is not None:
            joined = plan.outcomes.get(request.joins)
            if joined is not None and joined[0] is RequestState.IN_PROGRESS:
                joined = None  # it runs now: the rules below join it
        if joined is not None:  # the request it joined is done: the same outcome
            plan.outcomes[request.seq] = joined
            plan.consumed_seq = request.seq
            continue
        if first_delete is not None and request.seq < first_delete.seq:
            reason = f"superseded by delete #{first_delete.seq}"
            plan.outcomes[request.seq] = (RequestState.SUPERSEDED, reason)
            plan.consumed_seq = request.seq
            continue
        if current is not None:
            if request.operation is current:
                plan.outcomes[request.seq] = (RequestState.IN_PROGRESS, None)
                group.append(request.seq)
                plan.consumed_seq = request.seq
                continue
            if current not in _PREEMPTS[request.operation]:
                break  # waits for the operation under way to finish
            reason = f"superseded by {request.operation.value} #{request.seq}"
            if plan.adopt is None:
                plan.supersede_under_way = reason
            for seq in group:
                plan.outcomes[seq] = (RequestState.SUPERSEDED, reason)
        else:
            ends = turn_outcome(request.operation, status, has_upstream)
            if ends is not None:
                plan.outcomes[request.seq] = ends
                plan.consumed_seq = request.seq
                continue
        plan.adopt = request
        plan.outcomes[request.seq] = (RequestState.IN_PROGRESS, None)
        group = [request.seq]
        current = request.operation
        plan.consumed_seq = request.seq
    return plan


def outcome_of(operation: Operation, reached: Status) -> RequestState:
    """The outcome of the requests an operation served, once it came to rest at `reached`."""
    return RequestState.SUCCEEDED if reached is REST_STATUS[operation] else RequestState.FAILED
