"""Reading instances: by id (ours or Novita's), by name, a page of them, and their request log.

Every read answers from the database, so it works while Novita is down; `stale` says when the
row may be out of date. The endpoints use the `*_json` forms (store/instance_reads.py: one
SELECT, no ORM, serialised once); the typed forms are the reference they are tested against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from sqlalchemy import func, or_, select

from novita_manager.domain.statuses import Status
from novita_manager.domain.views import InstanceList, InstanceView, OperationRequestList
from novita_manager.errors import InstanceNotFound, InvalidState
from novita_manager.store.models import Instance, OperationRequest
from novita_manager.store.types import utcnow
from novita_manager.store.views import (
    instance_view,
    keep_timestamp,
    operation_view,
    render_instance,
    view_columns,
)

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


async def get_instance(runtime: Runtime, instance_id: str) -> InstanceView:
    """The typed view through the ORM: the reference the fast read path is tested against."""
    row = await find_instance(runtime, instance_id)
    return instance_view(row, stale=runtime.staleness(utcnow())(view_columns(row)))


async def get_instance_json(runtime: Runtime, instance_id: str) -> bytes:
    """The same view as `get_instance`, as JSON, from one SELECT without the ORM."""
    columns = await runtime.instance_reads.by_key(instance_id)
    if columns is None:
        raise InstanceNotFound(f"Instance {instance_id!r} not found")
    stale = runtime.staleness(utcnow())(columns)
    view = render_instance(columns, stale=stale, timestamp=keep_timestamp)
    return orjson.dumps(view, option=orjson.OPT_UTC_Z)


async def list_instances_json(
    runtime: Runtime,
    *,
    status: Status | None,
    name: str | None,
    limit: int,
    offset: int,
) -> bytes:
    """The same page as `list_instances`, as JSON, from one snapshot without the ORM."""
    total, rows = await runtime.instance_reads.page(status, name, limit, offset)
    stale = runtime.staleness(utcnow())
    views = [
        render_instance(columns, stale=stale(columns), timestamp=keep_timestamp) for columns in rows
    ]
    page = {"instances": views, "total": total, "limit": limit, "offset": offset}
    return orjson.dumps(page, option=orjson.OPT_UTC_Z)


async def list_instances(
    runtime: Runtime,
    *,
    status: Status | None,
    name: str | None,
    limit: int,
    offset: int,
) -> InstanceList:
    conditions = []
    if status is not None:
        conditions.append(Instance.status == status.value)
    else:
        conditions.append(Instance.status != Status.DELETED.value)
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(Instance.name.ilike(f"%{escaped}%", escape="\\"))
    async with runtime.db.read_session() as session:
        total = (
            await session.execute(select(func.count()).select_from(Instance).where(*conditions))
        ).scalar_one()
        rows = (
            (
                await session.execute(
                    select(Instance)
                    .where(*conditions)
                    .order_by(Instance.created_at.desc(), Instance.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            )
            .scalars()
            .all()
        )
    stale = runtime.staleness(utcnow())
    return InstanceList(
        instances=[instance_view(row, stale=stale(view_columns(row))) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


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
