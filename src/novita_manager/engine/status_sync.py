"""The status sync: one listing of the account per interval updates every managed instance.

Polling each instance with its own GET costs N calls per interval; listing the account page by
page costs one call per page, whatever the number of instances. A single GET is the fallback for
a managed instance the listing did not show (it may just have been removed: 404 means gone), but
only when the listing was proved complete (readings `page_base`, `page_size_cap`): absence from
an incomplete listing proves nothing. List items may lack connection details (`list_shape`);
`observations.merge` keeps those of the last GET while the instance runs.
Observations are written without taking leases (they touch only observation columns), and a row
whose observation changed in a way that needs a reaction is made due at once, so the
provisioning pipeline reacts within milliseconds of the sync. With several replicas a service
lease lets one of them sync at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from novita_manager.domain import observations
from novita_manager.domain.lifecycle import Action, Snapshot, decide
from novita_manager.domain.statuses import NOVITA_REMOVING, Operation, Status
from novita_manager.engine.housekeeping import (
    HOUSEKEEPING_EVERY,
    purge_expired_idempotency_keys,
)
from novita_manager.engine.service_lease import (
    acquire_service_lease,
    release_service_lease,
    renew_service_lease,
)
from novita_manager.logging import get_logger
from novita_manager.metrics import Metrics
from novita_manager.novita.client import ListingProgress, NovitaClient
from novita_manager.novita.create_request import marker_of
from novita_manager.novita.errors import NovitaError, NovitaNotFound
from novita_manager.novita.models import Instance as NovitaInstance
from novita_manager.novita.readings import REQUESTED_PAGE_SIZE
from novita_manager.store.db import Database
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow

log = get_logger(__name__)

LEASE_NAME = "status-sync"
PAGE_SIZE = REQUESTED_PAGE_SIZE
# After a listing that could not be proved complete, at most this many rows the listing did not
# show are looked up with a GET (only rows with an operation under way).
INCOMPLETE_FALLBACK_GETS = 20
# Rows in these statuses adopt an instance that carries their marker; others have it deleted.
_ADOPTING = frozenset({Status.CREATING.value, Status.STARTING.value})
# How long after a request an instance from a create with an unknown outcome is looked for.
STRAY_WINDOW = timedelta(days=1)


@dataclass
class SyncReport:
    pages: int = 0
    fallback_gets: int = 0
    rows: int = 0
    changed: int = 0
    strays: int = 0
    complete: bool = True  # whether the listing proved it saw every instance


@dataclass
class SyncHealth:
    last_success_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    runs: int = 0


def _older_than(moment: datetime | None, now: datetime, seconds: float) -> bool:
    return moment is None or (now - moment).total_seconds() >= seconds


def needs_reaction(
    row: Any, observation: dict[str, Any], observed_at: datetime, now: datetime, timeout: float
) -> bool:
    """Whether the provisioning step would act on this observation (not merely keep waiting).

    Intermediate states (toCreate, creating, pulling...) change each instance several times on
    its way up; waking a worker for each would cost steps that decide nothing.
    """
    snapshot = Snapshot(
        status=Status(row.status),
        operation=Operation(row.operation) if row.operation else None,
        operation_issued=row.operation_issued,
        operation_started_at=row.operation_started_at,
        operation_issued_at=row.operation_issued_at,
        has_upstream=True,
        observation=observation,
        observed_at=observed_at,
    )
    decision = decide(snapshot, now=now, timeout=timeout, recheck_after=timeout)
    return decision.action not in (Action.WAIT, Action.IDLE)


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


class StatusSync:
    def __init__(
        self,
        *,
        db: Database,
        client: NovitaClient,
        interval: float,
        owner: str,
        startup_timeout: float = 600.0,
        metrics: Metrics | None = None,
        on_changes: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.client = client
        self.interval = interval
        self.startup_timeout = startup_timeout
        # An unchanged row at rest gets its `last_synced_at` rewritten at most this often.
        self.resync_write_interval = max(interval * 10, 60.0)
        self.owner = owner
        self.metrics = metrics
        self.on_changes = on_changes
        self.health = SyncHealth()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_housekeeping: datetime | None = None

    def request(self) -> None:
        """Ask for an early sync (after a create or an operation); coalesced with others."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="status-sync")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        token: str | None = None
        min_gap = min(self.interval, 1.0) / 4
        while not self._stopping:
            lease_seconds = max(self.interval * 3, 5.0)
            try:
                if token is None or not await renew_service_lease(
                    self.db, LEASE_NAME, token, lease_seconds
                ):
                    token = await acquire_service_lease(
                        self.db, LEASE_NAME, self.owner, lease_seconds
                    )
                if token is not None:
                    await self.run_once()
                    await self._housekeeping()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("status_sync_crashed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            await asyncio.sleep(min_gap)  # coalesce a burst of requests into one sync
        if token is not None:
            with contextlib.suppress(Exception):
                await release_service_lease(self.db, LEASE_NAME, token)

    async def _housekeeping(self) -> None:
        now = utcnow()
        if self._last_housekeeping is not None and now - self._last_housekeeping < (
            HOUSEKEEPING_EVERY
        ):
            return
        self._last_housekeeping = now
        purged = await purge_expired_idempotency_keys(self.db)
        if purged:
            log.info("idempotency_keys_purged", count=purged)

    async def run_once(self) -> SyncReport:
        """List the account once and record what it says about every managed instance."""
        report = SyncReport()
        async with self.db.read_session() as session:
            rows = (
                await session.execute(
                    select(
                        Instance.id,
                        Instance.novita_instance_id,
                        Instance.status,
                        Instance.operation,
                        Instance.operation_issued,
                        Instance.operation_started_at,
                        Instance.operation_issued_at,
                        Instance.observation,
                        Instance.cluster_id,
                        Instance.last_synced_at,
                    ).where(
                        Instance.novita_instance_id.is_not(None),
                        Instance.status != Status.DELETED.value,
                    )
                )
            ).all()
        report.rows = len(rows)
        if not rows and not await self._creates_in_doubt():
            return report  # nothing to watch: no upstream call at all
        started = utcnow()
        managed = {row.novita_instance_id for row in rows}
        seen: dict[str, NovitaInstance] = {}
        strays: dict[str, tuple[str, NovitaInstance]] = {}
        progress = ListingProgress()
        try:
            async for page in self.client.list_instance_pages(
                page_size=PAGE_SIZE, progress=progress
            ):
                report.pages += 1
                if self.metrics is not None:
                    self.metrics.status_sync_pages.inc()
                for item in page.instances:
                    if item.id in managed:
                        seen[item.id] = item
                    elif (marker := marker_of(item.envs)) and item.status not in NOVITA_REMOVING:
                        strays[item.id] = (marker, item)
            found = {
                row.novita_instance_id: observations.summarize(seen[row.novita_instance_id])
                for row in rows
                if row.novita_instance_id in seen
            }
            missing = fallback_ids(rows, seen, complete=progress.complete)
            report.complete = progress.complete
            report.fallback_gets = len(missing)
            found.update(await self._fetch_missing(missing))
            if strays:
                report.strays = await self._settle_strays(strays, started)
        except NovitaError as error:
            self.health.consecutive_failures += 1
            self.health.last_error = str(error)
            log.warning("status_sync_failed", error=str(error))
            return report
        report.changed = await self._record(rows, found, started)
        self.health.consecutive_failures = 0
        self.health.last_error = None
        self.health.last_success_at = started
        self.health.runs += 1
        log.debug(
            "status_sync",
            pages=report.pages,
            rows=report.rows,
            changed=report.changed,
            fallback_gets=report.fallback_gets,
        )
        return report

    async def _creates_in_doubt(self) -> bool:
        """Whether a recent create's outcome is still unknown (its instance may yet appear)."""
        async with self.db.read_session() as session:
            found = await session.scalar(
                select(Instance.id)
                .where(
                    Instance.novita_instance_id.is_(None),
                    Instance.create_state.in_(("in_flight", "unknown")),
                    Instance.created_at > utcnow() - STRAY_WINDOW,
                )
                .limit(1)
            )
        return found is not None

    async def _settle_strays(
        self, strays: dict[str, tuple[str, NovitaInstance]], started: datetime
    ) -> int:
        """Instances carrying our marker that no row owns: adopt them or delete them.

        A row still creating (its create's answer was lost) adopts its instance; any other
        (a duplicate, or the late result of a create whose request already failed or was
        deleted) is deleted upstream so that no paid GPU runs that nobody knows about.
        Instances with a marker we never issued belong to someone else and are left alone.
        """
        markers = {marker for marker, _ in strays.values()}
        async with self.db.read_session() as session:
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
                log.warning(
                    "stray_instance_adopted", instance_id=marker, novita_instance_id=novita_id
                )
                async with self.db.session() as session, session.begin():
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
                await self.client.delete_instance(novita_id)
            if owner.novita_instance_id is None:
                async with self.db.session() as session, session.begin():
                    await session.execute(
                        update(Instance)
                        .where(Instance.id == marker, Instance.novita_instance_id.is_(None))
                        .values(create_state="done")
                        .execution_options(synchronize_session=False)
                    )
        return settled

    async def _fetch_missing(self, missing: list[str]) -> dict[str, dict[str, Any]]:
        async def fetch(novita_id: str) -> tuple[str, dict[str, Any]]:
            try:
                return novita_id, observations.summarize(await self.client.get_instance(novita_id))
            except NovitaNotFound:
                return novita_id, observations.gone()

        results = await asyncio.gather(*(fetch(novita_id) for novita_id in missing))
        return dict(results)

    async def _record(self, rows: Any, found: dict[str, dict[str, Any]], started: datetime) -> int:
        """Write observations: changed rows in full, the rest only as seen again; wake the rows
        whose next provisioning step would act. Returns how many observations changed."""
        now = utcnow()
        updates: list[dict[str, Any]] = []
        woken: list[dict[str, Any]] = []
        unchanged_ids = []
        changed = 0
        for row in rows:
            observation = found.get(row.novita_instance_id)
            if observation is None:
                continue
            observation = observations.merge(row.observation, observation, started)
            react = needs_reaction(row, observation, started, now, self.startup_timeout)
            changed += observation != row.observation
            if observation == row.observation and not react:
                # Seen again, unchanged. A row with an operation under way needs the fresh
                # `observed_at` (is a start taking?); a row at rest only a `last_synced_at` that is
                # not too old, so thousands of idle rows do not rewrite every interval.
                if row.operation is not None or _older_than(
                    row.last_synced_at, started, self.resync_write_interval
                ):
                    unchanged_ids.append(row.id)
                continue
            values: dict[str, Any] = {
                "id": row.id,
                "observation": observation,
                "observed_at": started,
                "last_synced_at": started,
                "novita_status": observation.get("status"),
                "port_mappings": observation.get("portMappings", []),
                "connection_details": observation.get("connectionDetails", {}),
                "cluster_id": observation.get("clusterId") or row.cluster_id,
            }
            if react:
                woken.append({**values, "next_attempt_at": now})
            elif observation != row.observation:
                updates.append(values)
        async with self.db.session() as session, session.begin():
            for batch in (updates, woken):
                if batch:  # one executemany per shape, not a statement per row
                    await session.execute(update(Instance), batch)
            for start in range(0, len(unchanged_ids), 500):
                await session.execute(
                    update(Instance)
                    .where(Instance.id.in_(unchanged_ids[start : start + 500]))
                    .values(last_synced_at=started, observed_at=started)
                    .execution_options(synchronize_session=False)
                )
        if woken:
            self.on_changes()
        return changed
