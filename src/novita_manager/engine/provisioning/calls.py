"""Sending an operation's upstream call: start (migrate when refused for capacity), stop,
delete. Sending one twice is harmless: "invalid state change" and 404 read as done."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from novita_manager.domain import observations
from novita_manager.domain.recovery import OnReclaim
from novita_manager.domain.statuses import Operation
from novita_manager.engine import billing
from novita_manager.engine.changes import InstanceChange
from novita_manager.engine.leases import Lease
from novita_manager.engine.provisioning.context import StepContext
from novita_manager.engine.provisioning.pricing import current_price
from novita_manager.engine.provisioning.recover import fail_over
from novita_manager.engine.provisioning.transitions import fail
from novita_manager.engine.provisioning.write import retry, write
from novita_manager.logging import get_logger
from novita_manager.novita.errors import (
    NovitaError,
    NovitaInsufficientResource,
    NovitaInvalidStateChange,
    NovitaNotFound,
    is_transient,
)
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow

log = get_logger(__name__)


async def call(ctx: StepContext, lease: Lease, row: Instance, operation: Operation) -> None:
    assert row.novita_instance_id is not None
    send = {
        Operation.START: ctx.client.start_instance,
        Operation.STOP: ctx.client.stop_instance,
        Operation.DELETE: ctx.client.delete_instance,
    }[operation]
    if operation is Operation.START and row.recovery == OnReclaim.MIGRATE.value:
        send = ctx.client.migrate_instance  # a recovery by migrate (recover.py)
    gone: InstanceChange | None = None
    periods: list[Any] = []  # the billed period a removal closes (engine/billing.py)
    priced: InstanceChange | None = None
    if operation is Operation.START:
        price = await current_price(ctx.client, row)
        if price is not None and price != row.price_per_hour:
            priced = InstanceChange(price_per_hour=price)
    try:
        try:
            await send(row.novita_instance_id)
        except NovitaInsufficientResource:
            if operation is not Operation.START:
                raise
            # The node's GPUs went to someone else while it was stopped (a reclaimed spot
            # instance, a long stop): Novita's remedy is to migrate, which also starts it.
            log.info("start_refused_for_capacity_migrating")
            await ctx.client.migrate_instance(row.novita_instance_id)
    except NovitaInsufficientResource as error:
        if row.recovery is None:
            await fail(ctx, lease, row, f"Novita refused {operation.value}: {error}")
        else:  # no capacity to restart or migrate in the cluster: recreate elsewhere
            await fail_over(ctx, lease, row, error)
        return
    except NovitaInvalidStateChange:
        log.info("upstream_invalid_state_change_rereading", operation=operation.value)
    except NovitaNotFound:
        seen = utcnow()
        observation, closed = billing.carry(row, observations.gone(), seen)
        gone = InstanceChange(observation=observation, observed_at=seen)
        gone = gone.merged(InstanceChange(billing_since=None, billing_rate=None))
        if closed is not None:
            periods = billing.record_period(ctx.db.dialect, row.id, closed)
    except NovitaError as error:
        if is_transient(error):
            await retry(ctx, lease, row, error)
        else:
            await fail(ctx, lease, row, f"Novita refused {operation.value}: {error}")
        return
    now = utcnow()
    change = (
        InstanceChange(
            operation_issued=True,
            operation_issued_at=now,
            last_error=None,
            next_attempt_at=(
                now if gone else now + timedelta(seconds=ctx.settings.instance_poll_interval)
            ),
        )
        .merged(gone)
        .merged(priced)
    )
    await write(ctx, lease, row, change, release=True, statements=periods)
    ctx.on_upstream_change()
