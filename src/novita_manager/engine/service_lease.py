"""Named leases for work that one replica at a time should do (the status sync, scheduled tasks).

A row per name in `service_leases`. Acquire inserts it or takes it over once expired (or when the
same owner asks again); renew and release act only with the token that acquire returned, so a
replica that lost its lease (paused past expiry) cannot extend or drop the new holder's.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, update

from novita_manager.store.db import Database
from novita_manager.store.dialects import insert_for
from novita_manager.store.models import ServiceLease
from novita_manager.store.types import utcnow


async def acquire_service_lease(db: Database, name: str, owner: str, seconds: float) -> str | None:
    """Take the lease `name` for `seconds`; returns its token, or None while another holds it."""
    token = uuid.uuid4().hex
    now = utcnow()
    values = {
        "name": name,
        "owner": owner,
        "token": token,
        "expires_at": now + timedelta(seconds=seconds),
    }
    insert = insert_for(db.dialect)
    async with db.session() as session, session.begin():
        inserted = await session.execute(
            insert(ServiceLease).values(values).on_conflict_do_nothing(index_elements=["name"])
        )
        if cast(CursorResult[Any], inserted).rowcount == 1:
            return token
        taken = await session.execute(
            update(ServiceLease)
            .where(
                ServiceLease.name == name,
                or_(
                    ServiceLease.expires_at.is_(None),
                    ServiceLease.expires_at <= now,
                    ServiceLease.owner == owner,
                ),
            )
            .values(owner=owner, token=token, expires_at=values["expires_at"])
        )
        return token if cast(CursorResult[Any], taken).rowcount == 1 else None


async def renew_service_lease(db: Database, name: str, token: str, seconds: float) -> bool:
    """Extend a held lease; False when it was lost (expired and taken over)."""
    async with db.session() as session, session.begin():
        result = await session.execute(
            update(ServiceLease)
            .where(ServiceLease.name == name, ServiceLease.token == token)
            .values(expires_at=utcnow() + timedelta(seconds=seconds))
        )
        return cast(CursorResult[Any], result).rowcount == 1


async def release_service_lease(db: Database, name: str, token: str) -> bool:
    """Give the lease up at once (on shutdown) so another replica need not wait for expiry."""
    async with db.session() as session, session.begin():
        result = await session.execute(
            update(ServiceLease)
            .where(ServiceLease.name == name, ServiceLease.token == token)
            .values(owner=None, token=None, expires_at=None)
        )
        return cast(CursorResult[Any], result).rowcount == 1


class HeldServiceLease:
    """One process's hold on the lease `name`: `hold()` renews it, or takes it when free, each
    time the holder's loop comes round (at least every `seconds`/3, so it never lapses)."""

    def __init__(self, db: Database, name: str, owner: str, seconds: float) -> None:
        self.db = db
        self.name = name
        self.owner = owner
        self.seconds = seconds
        self._token: str | None = None

    @property
    def held(self) -> bool:
        """Whether the last `hold()` held the lease."""
        return self._token is not None

    async def hold(self) -> bool:
        """Renew the lease, or acquire it when this process does not hold it; True if held."""
        if self._token is None or not await renew_service_lease(
            self.db, self.name, self._token, self.seconds
        ):
            self._token = None
            self._token = await acquire_service_lease(self.db, self.name, self.owner, self.seconds)
        return self._token is not None

    async def release(self) -> None:
        """Give the lease up (on shutdown) so another replica need not wait for its expiry."""
        token, self._token = self._token, None
        if token is not None:
            await release_service_lease(self.db, self.name, token)
