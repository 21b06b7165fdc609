"""The provisioning pipeline's handler: take up requests, settle an unknown create, then carry
out `domain.lifecycle.decide`'s action with the step that does it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import and_

from novita_manager.config import Settings
from novita_manager.domain.lifecycle import Action, decide
from novita_manager.domain.statuses import CREATE_IN_DOUBT, NOVITA_RUNNING, Status
from novita_manager.engine.changes import InstanceChange
from novita_manager.engine.leases import Lease
from novita_manager.engine.provisioning.calls import call
from novita_manager.engine.provisioning.context import StepContext
from novita_manager.engine.provisioning.create import create, find_earlier_create
from novita_manager.engine.provisioning.recover import note_reclaim, reclaimed, retire
from novita_manager.engine.provisioning.requests import take_requests
from novita_manager.engine.provisioning.transitions import transition, wait
from novita_manager.engine.provisioning.write import retry, write
from novita_manager.engine.snapshots import snapshot_of
from novita_manager.logging import bound_context
from novita_manager.novita.catalogue import Catalogue
from novita_manager.novita.client import NovitaClient
from novita_manager.novita.errors import NovitaError, is_transient
from novita_manager.store.db import Database
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow

# The rows the provisioning pipeline claims before the others due: Novita bills the instance
# (it runs) and the row has not reached running, so the user has not been told (the running
# webhook and its connection details) or a stop or delete of it waits. Claimed in order of due
# time alone, they queued behind the creates of a burst: 1,000 creates answered within two
# seconds left the last running instances unannounced for six seconds on the lifecycle
# benchmark (PostgreSQL). A create waiting a little longer costs nothing; an instance that runs
# unannounced is paid for and unused.
BILLING_UNANNOUNCED = and_(
    Instance.novita_status == NOVITA_RUNNING, Instance.status != Status.RUNNING.value
)


def backlog_observes_itself(rows: Sequence[Instance]) -> bool:
    """Whether every row of a provisioning claim has its instance upstream, so its step reads
    the instance itself (a running one, its details): the status sync then waits for that
    backlog (`StatusSync._defer`). A backlog with creates in it does not: the instances created
    before them may be running meanwhile, and only the sync finds out."""
    return all(row.novita_instance_id is not None for row in rows)


class Provisioner:
    """The handler of the provisioning pipeline (see the package docstring)."""

    def __init__(
        self,
        *,
        db: Database,
        client: NovitaClient,
        catalogue: Catalogue,
        settings: Settings,
        on_outbox: Callable[[], None] = lambda: None,
        on_upstream_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.ctx = StepContext(
            db=db,
            client=client,
            catalogue=catalogue,
            settings=settings,
            on_outbox=on_outbox,
            on_upstream_change=on_upstream_change,
        )

    async def __call__(self, lease: Lease, row: Instance) -> None:
        with bound_context(instance_id=row.id, request_id=row.request_id):
            try:
                await self.handle(lease, row)
            except NovitaError as error:
                if not is_transient(error):
                    raise  # a bug or an unexpected answer: the pipeline logs it with its trace
                await retry(self.ctx, lease, row, error)  # e.g. a 429 while looking for a create

    async def handle(self, lease: Lease, row: Instance) -> None:
        ctx = self.ctx
        if row.request_seq > row.consumed_seq and not await take_requests(ctx, lease, row):
            return
        unknown_create = row.create_state in CREATE_IN_DOUBT
        if (
            row.novita_instance_id is None
            and unknown_create
            and not await find_earlier_create(ctx, lease, row)
        ):
            return
        decision = decide(
            snapshot_of(row),
            now=utcnow(),
            timeout=ctx.settings.instance_startup_timeout,
            recheck_after=ctx.recheck_after,
        )
        if decision.action is Action.CREATE:
            await create(ctx, lease, row)
        elif decision.action is Action.CALL:
            assert decision.call is not None
            await call(ctx, lease, row, decision.call)
        elif decision.action is Action.TRANSITION:
            await transition(ctx, lease, row, decision)
        elif decision.action is Action.WAIT:
            await wait(ctx, lease, row, decision.wait_seconds or 0.0)
        elif decision.action is Action.NOTE_RECLAIM:
            await note_reclaim(ctx, lease, row)
        elif decision.action is Action.RECLAIMED:
            await reclaimed(ctx, lease, row)
        elif decision.action is Action.RETIRE:
            await retire(ctx, lease, row)
        else:
            await write(ctx, lease, row, InstanceChange(next_attempt_at=None), release=True)
