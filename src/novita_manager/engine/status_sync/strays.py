"""Instances carrying our marker that no row owns: adopted by a row still creating, deleted
otherwise, so that no paid GPU runs that nobody knows about."""

from __future__ import annotations

import contextlib
from datetime import datetime

from sqlalchemy import select, update

from novita_manager.domain import observations
from novita_manager.domain.statuses import Status
from novita_manager.logging import get_logger
from novita_manager.novita.client import NovitaClient
from novita_manager.novita.errors import NovitaNotFound
from novita_manager.novita.models import Instance as NovitaInstance
from novita_manager.store.db import Database
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow

log = get_logger(__name__)

# Rows in these statuses adopt an instance that carries their marker; others have it deleted.
_ADOPTING = frozenset({Status.CREATING.value, Status.STARTING.value})


async def settle_strays(
    db: Database,
    client: NovitaClient,
    strays: dict[str, tuple[str, NovitaInstance]],
    started: datetime,
) -> int:
    """Instances carrying our marker that no row owns: adopt them or delete them.

    A row still creating (its create's answer was lost) adopts its instance; any other
    (a duplicate, or the late result of a create whose request already failed or was
    deleted) is deleted upstream so that no paid GPU runs that nobody knows about.
    Instances with a marker we never issued belong to someone else and are left alone.
    """
    markers = {marker for marker, _ in strays.values()}
    async with db.read_session() as session:
        owners = {
            row.id: row
            for row in (
                await session.execute(
                    select(Instance.id, Instance.novita_instance_id, Instance.status).where(
                        Instance.id.in_(markers)
                    )
                )
            ).all()
        }
    settled = 0
    for novita_id, (marker, item) in strays.items():
        owner = owners.get(marker)
        if owner is None or owner.novita_instance_id == novita_id:
            continue  # someone else's marker, or adopted since this sync read its rows
        settled += 1
        if owner.novita_instance_id is None and owner.status in _ADOPTING:
            log.warning("stray_instance_adopted", instance_id=marker, novita_instance_id=novita_id)
            async with db.session() as session, session.begin():
                await session.execute(
                    update(Instance)
                    .where(Instance.id == marker, Instance.novita_instance_id.is_(None))
                    .values(
                        novita_instance_id=novita_id,
                        create_state="done",
                        observation=observations.summarize(item),
                        observed_at=started,
                        novita_status=item.status or None,
                        next_attempt_at=utcnow(),
                    )
                    .execution_options(synchronize_session=False)
                )
            continue
        log.warning(
            "stray_instance_deleted",
            instance_id=marker,
            novita_instance_id=novita_id,
            owner_status=owner.status,
            owner_novita_instance_id=owner.novita_instance_id,
        )
        with contextlib.suppress(NovitaNotFound):
            await client.delete_instance(novita_id)
        if owner.novita_instance_id is None:
            async with db.session() as session, session.begin():
                await session.execute(
                    update(Instance)
                    .where(Instance.id == marker, Instance.novita_instance_id.is_(None))
                    .values(create_state="done")
                    .execution_options(synchronize_session=False)
                )
    return settled
