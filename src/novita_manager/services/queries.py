"""Reading instances: by id (ours or Novita's), by name, a page of them, and their request log.

Every read answers from the database, so it works while Novita is down; `stale` says when the
row may be out of date. The endpoints use the `*_json` forms (store/instance_reads.py: one
SELECT, no ORM, serialised once); tests/store/test_instance_reads.py checks they equal the typed
`InstanceView` of the ORM row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from sqlalchemy import or_, select

from novita_manager.domain.statuses import Status
from novita_manager.domain.views import OperationRequestList
from novita_manager.errors import InstanceNotFound, InvalidState
from novita_manager.store.models import Instance, OperationRequest
from novita_manager.store.types import utcnow
from novita_manager.store.views import operation_view

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime


async def find_instance(runtime: Runtime, instance_id: str) -> Instance:
    """By our id or by the Novita id of a managed instance."""
    async with runtime.db.read_session() as session:
        row = (
            await session.execute(
                select(Instance)
                .where(or_(Instance.id == instance_id, Instance.novita_instance_id == instance_id))
                .limit(1)
            )
        ).scalar_one_or_none()
    if row is None:
        raise InstanceNotFound(f"Instance {instance_id!r} not found")
    return row


async def find_by_name(runtime: Runtime, name: str) -> Instance:
    """The one live instance with this name; several live ones make the name ambiguous."""
    async with runtime.db.read_session() as session:
        rows = (
            (
                await session.execute(
                    select(Instance)
                    .where(Instance.name == name, Instance.status != Status.DELETED.value)
                    .order_by(Instance.created_at.desc())
                    .limit(2)
                )
            )
            .scalars()
            .all()
        )
    if not rows:
        raise InstanceNotFound(f"No instance named {name!r}")
    if len(rows) > 1:
        raise InvalidState(
            f"Several instances are named {name!r}; use the instance id instead",
            details={"instanceIds": [row.id for row in rows]},
        )
    return rows[0]


async def get_instance_json(runtime: Runtime, instance_id: str) -> bytes:
    """The instance view as JSON, from one SELECT without the ORM."""
    reads = runtime.instance_reads
    row = await reads.by_key(instance_id)
    if row is None:
        raise InstanceNotFound(f"Instance {instance_id!r} not found")
    now = utcnow()
    return orjson.dumps(reads.render(row, runtime.staleness(now), now), option=orjson.OPT_UTC_Z)


async def list_instances_json(
    runtime: Runtime,
    *,
    status: Status | None,
    name: str | None,
    limit: int,
    offset: int,
) -> bytes:
    """A page of instance views (newest first) as JSON, from one snapshot without the ORM."""
    reads = runtime.instance_reads
    total, rows = await reads.page(status, name, limit, offset)
    now = utcnow()
    stale, render = runtime.staleness(now), reads.render
    views = [render(row, stale, now) for row in rows]
    page = {"instances": views, "total": total, "limit": limit, "offset": offset}
    return orjson.dumps(page, option=orjson.OPT_UTC_Z)


async def list_operations(runtime: Runtime, instance_id: str) -> OperationRequestList:
    """The instance's request log, oldest first: every start/stop/delete and its outcome."""
    row = await find_instance(runtime, instance_id)
    async with runtime.db.read_session() as session:
        requests = (
            (
                await session.execute(
                    select(OperationRequest)
                    .where(OperationRequest.instance_id == row.id)
                    .order_by(OperationRequest.seq)
                )
            )
            .scalars()
            .all()
        )
    return OperationRequestList(instanceId=row.id, operations=[operation_view(r) for r in requests])
