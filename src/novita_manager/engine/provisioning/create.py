"""Creating exactly once: look for an earlier create whose outcome is unknown, create with the
cheapest offer that has capacity, and record the created instance."""

from __future__ import annotations

from datetime import timedelta

from novita_manager.domain import observations
from novita_manager.domain.costs import open_period
from novita_manager.domain.offers import NoOffer, Offer
from novita_manager.domain.statuses import NOVITA_REMOVING, CreateState, Operation, Status
from novita_manager.engine import billing
from novita_manager.engine.changes import InstanceChange
from novita_manager.engine.leases import Lease
from novita_manager.engine.provisioning.context import StepContext
from novita_manager.engine.provisioning.offers import offers_to_try
from novita_manager.engine.provisioning.records import history
from novita_manager.engine.provisioning.transitions import fail
from novita_manager.engine.provisioning.write import IncompleteListing, retry, write
from novita_manager.logging import get_logger
from novita_manager.novita.create_request import (
    UnacceptableName,
    build_create_request,
    carries_marker,
    novita_name,
)
from novita_manager.novita.errors import (
    NovitaError,
    NovitaInsufficientResource,
    NovitaOutcomeUnknown,
    is_transient,
)
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow

log = get_logger(__name__)

PENDING = InstanceChange(create_state=CreateState.PENDING)  # certainly nothing was created
UNKNOWN = InstanceChange(create_state=CreateState.UNKNOWN)  # something may have been created


async def find_earlier_create(ctx: StepContext, lease: Lease, row: Instance) -> bool:
    """After an unknown create outcome: adopt the instance it made, or learn there is none.

    "None" needs a listing proved complete (readings `page_base`, `page_size_cap`): from an
    incomplete one the row keeps `create_state` unknown and looks again later, and at the
    startup deadline a create fails safe without creating (the status sync keeps looking
    for a late instance with our marker and deletes it). Returns whether to go on.
    """
    try:
        name = novita_name(row.name)
    except UnacceptableName:
        name = row.name  # no create can have been sent under this name
    listing = await ctx.client.list_all_instances(name=name)
    found = next(
        (
            candidate
            for candidate in listing.instances
            if carries_marker(candidate.envs, row.id)
            # not the reclaimed instance a recreate deleted, nor any other being removed
            and candidate.id != row.replaces_novita_id
            and candidate.status not in NOVITA_REMOVING
        ),
        None,
    )
    if found is None and listing.complete:
        log.info("earlier_create_not_found", create_attempts=row.create_attempts)
        return await write(ctx, lease, row, PENDING, release=False)
    if found is None:
        log.warning(
            "earlier_create_search_incomplete",
            seen=len(listing.instances),
            total=listing.progress.total,
        )
        started = row.operation_started_at or row.created_at
        late = (utcnow() - started).total_seconds() > ctx.settings.instance_startup_timeout
        if late and row.operation != Operation.CREATE.value:
            return True  # e.g. a delete: go on; a late instance is swept as a stray
        if late:
            await fail(
                ctx,
                lease,
                row,
                "the outcome of a create is unknown and Novita's listing could not be proved "
                "complete before the startup timeout; not creating again",
                extra=UNKNOWN,
            )
            return False
        await retry(
            ctx,
            lease,
            row,
            IncompleteListing(
                "looking for an earlier create: Novita's listing was not proved complete "
                f"({len(listing.instances)} of {listing.progress.total} seen); will look again"
            ),
            extra=UNKNOWN,
        )
        return False
    log.warning("adopting_instance_from_unknown_create", novita_instance_id=found.id)
    now = utcnow()
    merged = observations.merge(row.observation, observations.summarize(found), now)
    observation, _ = billing.carry(row, merged, now)  # a period opens if it is billed already
    billing_since, billing_rate = open_period(observation)
    change = InstanceChange(
        novita_instance_id=found.id,
        create_state=CreateState.DONE,
        novita_status=found.status or None,
        observation=observation,
        observed_at=now,
        billing_since=billing_since,
        billing_rate=billing_rate,
    )
    also = []
    if row.operation == Operation.CREATE.value:
        change = change.merged(InstanceChange(status=Status.STARTING))
        also.append(history(row, Status.STARTING, "adopted after an unknown create", now))
    return await write(ctx, lease, row, change, release=False, also=also)


async def create(ctx: StepContext, lease: Lease, row: Instance) -> None:
    """Create on Novita with the cheapest offer; on a capacity refusal (by reason or message,
    readings `capacity_error`) the next-cheapest offer in the region, before failing."""
    now = utcnow()
    started = row.operation_started_at or row.created_at
    if (now - started).total_seconds() > ctx.settings.instance_startup_timeout:
        reason = row.last_error or "Novita could not be reached"
        await fail(ctx, lease, row, f"instance was not created in time: {reason}")
        return
    try:
        offers = await offers_to_try(ctx.catalogue, row)
        template = await ctx.catalogue.template(row.template_id)
    except NoOffer as no_offer:
        if row.recovery is not None:  # a recreate waits for an offer until the deadline
            await retry(ctx, lease, row, no_offer)
        else:
            await fail(ctx, lease, row, no_offer.message)
        return
    except NovitaError as error:
        if is_transient(error):
            await retry(ctx, lease, row, error)
        else:
            await fail(ctx, lease, row, f"template {row.template_id!r}: {error.message}")
        return
    refused: list[str] = []
    for offer in offers:
        try:
            request = build_create_request(
                instance_id=row.id,
                name=row.name,
                gpu_num=row.gpu_num,
                rootfs_size=row.rootfs_size,
                offer=offer,
                template=template,
            )
        except UnacceptableName as bad_name:
            await fail(ctx, lease, row, str(bad_name))
            return
        marked = await write(
            ctx,
            lease,
            row,
            InstanceChange(
                create_state=CreateState.IN_FLIGHT,
                create_attempts=row.create_attempts + 1,
                product_id=offer.product_id,
                cluster_id=offer.cluster_id,
                cluster_name=offer.cluster_name,
                billing_mode=offer.billing_mode,
                price_per_hour=offer.instance_price(row.gpu_num),
            ),
            release=False,
        )
        if not marked:
            return
        try:
            novita_id = await ctx.client.create_instance(request)
        except NovitaOutcomeUnknown as error:
            log.warning("create_outcome_unknown", error=str(error))
            await retry(ctx, lease, row, error, extra=UNKNOWN)
            return
        except NovitaInsufficientResource as error:
            # Refused, so nothing was created: the next offer may have room.
            log.info(
                "create_refused_for_capacity",
                product_id=offer.product_id,
                cluster_id=offer.cluster_id,
                error=str(error),
            )
            refused.append(f"{offer.product_id} in {offer.cluster_id}: {error.message}")
            if not await write(ctx, lease, row, PENDING, release=False):
                return
            continue
        except NovitaError as error:
            if is_transient(error):  # refused before it was processed: nothing was created
                await retry(ctx, lease, row, error, extra=PENDING)
            else:
                await fail(
                    ctx,
                    lease,
                    row,
                    f"Novita rejected the create: {error}",
                    extra=PENDING,
                )
            return
        await created(ctx, lease, row, novita_id, offer, refused)
        return
    message = "no allowed offer has capacity (INSUFFICIENT_RESOURCE): " + "; ".join(refused)
    if row.recovery is not None:  # a recreate waits for capacity until the deadline
        await retry(ctx, lease, row, IncompleteListing(message), extra=PENDING)
        return
    await fail(ctx, lease, row, message, extra=PENDING)


async def created(
    ctx: StepContext, lease: Lease, row: Instance, novita_id: str, offer: Offer, refused: list[str]
) -> None:
    """Record the created instance and the offer it was created with (history and log)."""
    now = utcnow()
    price = offer.instance_price(row.gpu_num)
    reason = (
        f"created on Novita: {offer.product_id} in {offer.cluster_id}, "
        f"{offer.billing_mode} at ${price:g}/h"
    )
    if row.replaces_novita_id:
        reason += f" (recreate: replaces the reclaimed instance {row.replaces_novita_id})"
    if refused:
        reason += (
            f" (the next-cheapest offer: {len(refused)} refused for capacity: "
            + "; ".join(refused)
            + ")"
        )
    log.info(
        "instance_created_upstream",
        novita_instance_id=novita_id,
        product_id=offer.product_id,
        cluster_id=offer.cluster_id,
        price_per_hour=price,
        offers_refused=len(refused),
    )
    await write(
        ctx,
        lease,
        row,
        InstanceChange(
            novita_instance_id=novita_id,
            create_state=CreateState.DONE,
            status=Status.STARTING,
            operation_issued_at=now,
            attempts=0,
            last_error=None,
            # What the next step would decide now (no observation yet): wait for the status
            # sync, which wakes the row when an observation needs a reaction. A step one poll
            # interval later only wrote that wait: 0.7-0.8 of the 2.8 provisioning steps per
            # instance on the lifecycle benchmark.
            next_attempt_at=now + timedelta(seconds=ctx.recheck_after),
        ),
        release=True,
        also=[history(row, Status.STARTING, reason, now)],
    )
    ctx.on_upstream_change()
