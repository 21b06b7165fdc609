"""PostgreSQL connections checked when they come back from being idle, not at every checkout.

SQLAlchemy's `pool_pre_ping` checks every connection it hands out with a round trip (asyncpg's
dialect starts and rolls back a transaction: two). A pooled connection is handed out for every
transaction, so on the lifecycle benchmark the pings were a sixth of the pipelines' statement
time. A connection that was in use a moment ago is as good as a ping would prove it; one that
sat idle may have been closed by a server restart, a proxy or an idle timeout. So only a
connection idle for longer than `IDLE_PING_AFTER` is pinged; a failed ping invalidates it and
the pool hands out a new one (SQLAlchemy retries a checkout refused with `DisconnectionError`).
A connection broken while busy fails its statement as before: SQLAlchemy then invalidates the
pool's connections, the pipelines retry their step, and a request is answered with an error.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine

IDLE_PING_AFTER = 1.0  # seconds a connection may rest before it is checked at its next use
_IDLE_SINCE = "novita_manager.idle_since"


def ping_when_idle(engine: AsyncEngine, idle_after: float = IDLE_PING_AFTER) -> None:
    """Ping `engine`'s connections at checkout only after `idle_after` seconds in the pool."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _rested(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since <= idle_after:
            return  # new, or back from use a moment ago
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError("idle connection failed its ping") from error
        if alive is False:
            raise exc.DisconnectionError("idle connection failed its ping")
