"""The service's instance statuses, the operations a user may ask for, and Novita's statuses.

Our statuses are a small, stable vocabulary; Novita's raw status stays visible as `novitaStatus`.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    CREATING = "creating"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"
    DELETING = "deleting"
    DELETED = "deleted"


class Operation(StrEnum):
    """What the provisioning pipeline is driving an instance towards."""

    CREATE = "create"
    START = "start"
    STOP = "stop"
    DELETE = "delete"


class Event(StrEnum):
    RUNNING = "instance.running"
    FAILED = "instance.failed"
    STOPPED = "instance.stopped"
    DELETED = "instance.deleted"
    # Spot life (domain/recovery.py): a reclaim announced (with reclaimAt), taken, recovered.
    RECLAIMING = "instance.reclaiming"
    RECLAIMED = "instance.reclaimed"
    RECOVERED = "instance.recovered"
    EXPIRING = "instance.expiring"  # a limit will stop or delete it soon (domain/limits.py)


class CreateState(StrEnum):
    """Create bookkeeping of an instance, so that one request never pays for two instances
    (docs/design.md "Creating exactly once"). Stored as its string in `instances.create_state`."""

    PENDING = "pending"  # no create sent, or none can have made an instance
    IN_FLIGHT = "in_flight"  # marked (committed) before the create is sent; no answer recorded
    UNKNOWN = "unknown"  # sent, and the outcome is unknown (timeout, dropped connection, 5xx)
    DONE = "done"  # the instance is known (created or adopted), or a stray was deleted


# A create in these states may have made an instance: look for it before creating again.
CREATE_IN_DOUBT = frozenset({CreateState.IN_FLIGHT, CreateState.UNKNOWN})


class DeliveryStatus(StrEnum):
    """The state of a webhook delivery (the outbox row). Stored in `webhook_deliveries.status`."""

    PENDING = "pending"  # to be sent (again)
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # not retryable, refused by the SSRF guard, or retries exhausted
    SKIPPED = "skipped"  # no webhook URL configured


# The status an instance shows while an operation is under way.
OPERATION_STATUS = {
    Operation.CREATE: Status.CREATING,
    Operation.START: Status.STARTING,
    Operation.STOP: Status.STOPPING,
    Operation.DELETE: Status.DELETING,
}

# Which operation may follow which: domain/requests.py (ALLOWED_FROM, acceptance_refusal).

# Novita statuses (novita-api.md §2). Unknown strings are kept and treated as "in progress".
NOVITA_RUNNING = "running"
NOVITA_EXITED = "exited"
NOVITA_GONE = frozenset({"removed"})
NOVITA_REMOVING = frozenset({"toRemove", "removing", "removed"})
NOVITA_STARTING = frozenset(
    {
        "toCreate",
        "creating",
        "pulling",
        "toStart",
        "starting",
        "toRestart",
        "restarting",
        "toReset",
        "resetting",
        "migrating",
        "pending",
    }
)
