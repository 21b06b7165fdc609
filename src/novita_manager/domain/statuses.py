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
