"""Deleting stray instances: instances carrying our marker that no row owns (a duplicate, or the
late result of a create whose request already failed or was deleted), so that no paid GPU runs
that nobody knows about.

Finding them needs a listing of the whole account, which the status sync makes every interval;
this task does not list again. The sync records what it saw (`status_sync.strays.StraySightings`,
in its process) and asks for this task at once; the task re-reads the owners, deletes upstream
what is still stray and marks an owner without an instance `create_state` done.

Why it follows the status sync's lease instead of taking its own: the sightings live in the
process that listed. A lease of its own could be held by another replica, which would have
nothing to act on while the sync's holder never ran the task; persisting the sightings would need
a table. So the task runs wherever the sync runs (one replica at a time), with no second listing
and no upstream call when there is nothing to delete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from sqlalchemy import update

from novita_manager.domain.statuses import CreateState
from novita_manager.engine.changes import InstanceChange
from novita_manager.engine.scheduled.runner import ScheduledTask
from novita_manager.engine.status_sync.strays import StraySightings, is_stray, owners_of
from novita_manager.logging import get_logger
from novita_manager.novita.client import NovitaClient
from novita_manager.novita.errors import NovitaNotFound
from novita_manager.store.db import Database
from novita_manager.store.models import Instance

log = get_logger(__name__)

STRAYS_TASK = "stray-deletion"


async def delete_strays(db: Database, client: NovitaClient, sightings: StraySightings) -> int:
    """Delete the sighted strays that are still strays; returns how many were deleted."""
    taken = sightings.take()
    if not taken:
        return 0
    owners = await owners_of(db, {sighting.marker for sighting in taken})
    deleted = 0
    for sighting in taken:
        owner = owners.get(sighting.marker)
        if owner is None or not is_stray(owner, sighting.novita_instance_id):
            continue
        owned_id, status = owner
        log.warning(
            "stray_instance_deleted",
            instance_id=sighting.marker,
            novita_instance_id=sighting.novita_instance_id,
            owner_status=status,
            owner_novita_instance_id=owned_id,
        )
        with contextlib.suppress(NovitaNotFound):
            await client.delete_instance(sighting.novita_instance_id)
        deleted += 1
        if owned_id is None:
            async with db.session() as session, session.begin():
                await session.execute(
                    update(Instance)
                    .where(Instance.id == sighting.marker, Instance.novita_instance_id.is_(None))
                    .values(InstanceChange(create_state=CreateState.DONE).columns())
                    .execution_options(synchronize_session=False)
                )
    return deleted


def stray_deletion_task(
    db: Database,
    client: NovitaClient,
    sightings: StraySightings,
    *,
    interval: float,
    follows: Callable[[], bool],
) -> ScheduledTask:
    """The task, run every `interval` (the sync asks for it at once after a sighting) while
    `follows()` (this process holds the status sync's lease)."""

    async def run() -> int:
        return await delete_strays(db, client, sightings)

    return ScheduledTask(STRAYS_TASK, interval, run, follows=follows)
