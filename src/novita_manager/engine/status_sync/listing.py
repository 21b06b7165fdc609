"""What completes the account listing: a GET per managed instance it did not show (only when
that proves something), and whether to list at all."""

from __future__ import annotations

import asyncio
from collections.abc import Container
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from novita_manager.domain import observations
from novita_manager.domain.statuses import CREATE_IN_DOUBT
from novita_manager.logging import get_logger
from novita_manager.novita.client import NovitaClient
from novita_manager.novita.errors import NovitaNotFound
from novita_manager.novita.readings import REQUESTED_PAGE_SIZE
from novita_manager.store.db import Database
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow

log = get_logger(__name__)

PAGE_SIZE = REQUESTED_PAGE_SIZE
# After a listing that could not be proved complete, at most this many rows the listing did not
# show are looked up with a GET (only rows with an operation under way).
INCOMPLETE_FALLBACK_GETS = 20
# How long after a request an instance from a create with an unknown outcome is looked for.
STRAY_WINDOW = timedelta(days=1)


def fallback_ids(rows: Any, seen: Container[str], *, complete: bool) -> list[str]:
    """Managed instances the listing did not show that get one GET each.

    After a complete listing, every such row (it may just have been removed: 404 is gone).
    After an incomplete one (a capped page size, a listing that shifted, a server that ignores
    paging) absence proves nothing: only rows with an operation under way are looked up, at most
    INCOMPLETE_FALLBACK_GETS of them, and the others keep their last observation until a later
    listing shows them (never marked gone, no GET per instance).
    """
    missing = [row for row in rows if row.novita_instance_id not in seen]
    if complete:
        return [row.novita_instance_id for row in missing]
    if missing:
        log.info("status_sync_listing_incomplete", missing=len(missing))
    busy = [row.novita_instance_id for row in missing if row.operation is not None]
    return busy[:INCOMPLETE_FALLBACK_GETS]


async def fetch_missing(client: NovitaClient, missing: list[str]) -> dict[str, dict[str, Any]]:
    """One GET per id: its observation, or gone on a 404."""

    async def fetch(novita_id: str) -> tuple[str, dict[str, Any]]:
        try:
            return novita_id, observations.summarize(await client.get_listed_instance(novita_id))
        except NovitaNotFound:
            return novita_id, observations.gone()

    results = await asyncio.gather(*(fetch(novita_id) for novita_id in missing))
    return dict(results)


async def creates_in_doubt(db: Database) -> bool:
    """Whether a recent create's outcome is still unknown (its instance may yet appear)."""
    async with db.read_session() as session:
        found = await session.scalar(
            select(Instance.id)
            .where(
                Instance.novita_instance_id.is_(None),
                Instance.create_state.in_([state.value for state in CREATE_IN_DOUBT]),
                Instance.created_at > utcnow() - STRAY_WINDOW,
            )
            .limit(1)
        )
    return found is not None
