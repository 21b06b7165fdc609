"""One provisioning step at a time, against a real database file and the simulator over HTTP:
each test runs one step on a claimed row and reads the row, the history, the outbox and the
request rows afterwards."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from novita_manager.domain.lifecycle import Action, Decision
from novita_manager.domain.statuses import CreateState, Event, Operation, Status
from novita_manager.engine.changes import InstanceChange
from novita_manager.engine.leases import Lease
from novita_manager.engine.provisioning import Provisioner
from novita_manager.engine.provisioning.calls import call
from novita_manager.engine.provisioning.create import create, find_earlier_create
from novita_manager.engine.provisioning.offers import offers_to_try
from novita_manager.engine.provisioning.requests import take_requests
from novita_manager.engine.provisioning.transitions import fail, finish, transition, wait
from novita_manager.engine.provisioning.write import retry, write
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow
from tests.engine.steps import (
    Steps,
    add_request,
    claim,
    create_upstream,
    deliveries,
    history,
    insert_instance,
    load,
    requests_of,
    upstream,
)
from tests.fixtures.waiting import wait_until


async def running_upstream(steps: Steps, marker: str) -> str:
    novita_id = create_upstream(steps.simulator, marker)

    async def running() -> bool:
        return upstream(steps.simulator)[novita_id]["status"] == "running"

    await wait_until(running, timeout=15, what="the simulator's instance running")
    return novita_id


# -- requests --------------------------------------------------------------------------------


async def test_take_requests_takes_up_a_stop_of_a_running_instance(steps: Steps) -> None:
    instance_id = await insert_instance(
        steps.db, status="running", operation=None, create_state="done", novita_instance_id="n1"
    )
    await add_request(steps.db, instance_id, 1, Operation.STOP)
    lease, row = await claim(steps.db, instance_id)
    assert await take_requests(steps.ctx, lease, row)
    after = await load(steps.db, instance_id)
    assert (after.status, after.operation, after.consumed_seq) == ("stopping", "stop", 1)
    assert after.operation_issued is False
    assert after.lock_token == lease.token  # not released: the step goes on to decide
    assert await requests_of(steps.db, instance_id) == {1: ("in_progress", None)}
    assert [e.reason for e in await history(steps.db, instance_id)] == ["stop requested (#1)"]
    assert row.status == "stopping"  # the step's row mirrors the write


async def test_take_requests_without_pending_ones_only_catches_up(steps: Steps) -> None:
    instance_id = await insert_instance(steps.db, status="running", operation=None)
    async with steps.db.session() as session, session.begin():
        await session.execute(
            update(Instance).where(Instance.id == instance_id).values(request_seq=2)
        )
    lease, row = await claim(steps.db, instance_id)
    assert await take_requests(steps.ctx, lease, row)
    after = await load(steps.db, instance_id)
    assert (after.consumed_seq, after.status, after.operation) == (2, "running", None)
    assert await history(steps.db, instance_id) == []


# -- create ----------------------------------------------------------------------------------


async def test_create_creates_once_and_records_the_offer(steps: Steps) -> None:
    instance_id = await insert_instance(steps.db)
    lease, row = await claim(steps.db, instance_id)
    await create(steps.ctx, lease, row)
    after = await load(steps.db, instance_id)
    assert after.novita_instance_id is not None
    assert (after.status, after.create_state, after.create_attempts) == ("starting", "done", 1)
    assert after.product_id is not None
    assert after.price_per_hour is not None
    assert after.lock_token is None  # released
    assert after.next_attempt_at is not None
    assert after.next_attempt_at > utcnow()
    [event] = await history(steps.db, instance_id)
    assert (event.from_status, event.to_status) == ("creating", "starting")
    assert event.reason is not None
    assert event.reason.startswith("created on Novita")
    item = upstream(steps.simulator)[after.novita_instance_id]
    assert {"key": "NOVITA_MANAGER_ID", "value": instance_id} in item["envs"]
    assert steps.wakes.upstream == 1
    assert await deliveries(steps.db, instance_id) == []


async def test_a_create_novita_rejects_fails_with_an_outbox_row(steps: Steps) -> None:
    steps.simulator.control.set_faults(
        [{"endpoint": "POST /gpu/instance/create", "kind": "error", "status": 400, "times": 1}]
    )
    instance_id = await insert_instance(steps.db)
    lease, row = await claim(steps.db, instance_id)
    await create(steps.ctx, lease, row)
    after = await load(steps.db, instance_id)
    assert (after.status, after.operation, after.create_state) == ("failed", None, "pending")
    assert after.failure_reason is not None
    assert after.failure_reason.startswith("Novita rejected the create")
    assert after.failed_at is not None
    assert after.next_attempt_at is None
    [delivery] = await deliveries(steps.db, instance_id)
    assert (delivery.event_type, delivery.status, delivery.url) == (
        "instance.failed",
        "pending",
        "http://127.0.0.1:9/hook",
    )
    assert delivery.payload["data"]["instance"]["status"] == "failed"
    assert steps.wakes.outbox == 1


async def test_offers_try_the_quoted_offer_first(steps: Steps) -> None:
    instance_id = await insert_instance(steps.db)
    row = await load(steps.db, instance_id)
    ranked = await offers_to_try(steps.ctx.catalogue, row)
    assert ranked
    quoted = ranked[-1]
    instance_id = await insert_instance(
        steps.db,
        product_id=quoted.product_id,
        cluster_id=quoted.cluster_id,
        price_per_hour=quoted.instance_price(1),
    )
    offers = await offers_to_try(steps.ctx.catalogue, await load(steps.db, instance_id))
    assert (offers[0].product_id, offers[0].cluster_id) == (quoted.product_id, quoted.cluster_id)
    assert len(offers) == len(ranked)


async def test_an_earlier_create_is_found_by_its_marker_and_adopted(steps: Steps) -> None:
    instance_id = await insert_instance(steps.db, create_state="unknown", create_attempts=1)
    novita_id = create_upstream(steps.simulator, instance_id)
    lease, row = await claim(steps.db, instance_id)
    assert await find_earlier_create(steps.ctx, lease, row)
    after = await load(steps.db, instance_id)
    assert (after.novita_instance_id, after.create_state, after.status) == (
        novita_id,
        "done",
        "starting",
    )
    assert after.observation is not None
    assert [e.reason for e in await history(steps.db, instance_id)] == [
        "adopted after an unknown create"
    ]


async def test_no_earlier_create_in_a_complete_listing_means_create_again(steps: Steps) -> None:
    instance_id = await insert_instance(steps.db, create_state="in_flight", create_attempts=1)
    lease, row = await claim(steps.db, instance_id)
    assert await find_earlier_create(steps.ctx, lease, row)
    after = await load(steps.db, instance_id)
    assert (after.create_state, after.novita_instance_id, after.status) == (
        "pending",
        None,
        "creating",
    )


# -- calls -----------------------------------------------------------------------------------


async def test_a_stop_is_sent_and_recorded(steps: Steps) -> None:
    instance_id = await insert_instance(steps.db)
    novita_id = await running_upstream(steps, instance_id)
    async with steps.db.session() as session, session.begin():
        await session.execute(
            update(Instance)
            .where(Instance.id == instance_id)
            .values(
                status="stopping",
                operation="stop",
                novita_instance_id=novita_id,
                create_state="done",
            )
        )
    lease, row = await claim(steps.db, instance_id)
    await call(steps.ctx, lease, row, Operation.STOP)
    after = await load(steps.db, instance_id)
    assert after.operation_issued is True
    assert after.operation_issued_at is not None
    assert after.lock_token is None
    assert after.next_attempt_at is not None
    assert after.next_attempt_at > after.operation_issued_at  # the next look after the sync
    assert upstream(steps.simulator)[novita_id]["status"] != "running"
    assert steps.wakes.upstream == 1


async def test_a_call_to_an_instance_novita_no_longer_knows_records_it_gone(
    steps: Steps,
) -> None:
    instance_id = await insert_instance(
        steps.db, status="deleting", operation="delete", novita_instance_id="0" * 16
    )
    lease, row = await claim(steps.db, instance_id)
    before = utcnow()
    await call(steps.ctx, lease, row, Operation.DELETE)
    after = await load(steps.db, instance_id)
    assert after.observation is not None
    assert after.observation["gone"] is True
    assert after.operation_issued is True
    assert after.next_attempt_at is not None
    assert after.next_attempt_at <= utcnow()  # due at once: decide sees it gone
    assert after.observed_at is not None
    assert after.observed_at >= before


# -- transitions -----------------------------------------------------------------------------


async def test_reaching_running_reads_the_details_and_notifies(steps: Steps) -> None:
    instance_id = await insert_instance(steps.db, status="starting", create_state="done")
    novita_id = await running_upstream(steps, instance_id)
    async with steps.db.session() as session, session.begin():
        await session.execute(
            update(Instance).where(Instance.id == instance_id).values(novita_instance_id=novita_id)
        )
    lease, row = await claim(steps.db, instance_id)
    decision = Decision(Action.TRANSITION, Status.RUNNING, Event.RUNNING, "running")
    await transition(steps.ctx, lease, row, decision)
    after = await load(steps.db, instance_id)
    assert (after.status, after.operation, after.novita_status) == ("running", None, "running")
    assert after.ready_at is not None
    assert after.next_attempt_at is None
    assert after.lock_token is None
    assert after.observed_at is not None  # the GET's observation, written with the change
    [delivery] = await deliveries(steps.db, instance_id)
    assert delivery.event_type == "instance.running"
    assert delivery.payload["data"]["instance"]["status"] == "running"
    [event] = await history(steps.db, instance_id)
    assert (event.from_status, event.to_status) == ("starting", "running")


async def test_finishing_an_operation_resolves_its_requests(steps: Steps) -> None:
    instance_id = await insert_instance(
        steps.db, status="stopping", operation="stop", novita_instance_id="n2", webhook_url=None
    )
    await add_request(steps.db, instance_id, 1, Operation.STOP, state="in_progress")
    await add_request(steps.db, instance_id, 2, Operation.STOP, state="in_progress")
    lease, row = await claim(steps.db, instance_id)
    await finish(steps.ctx, lease, row, Status.STOPPED, Event.STOPPED, "stopped")
    after = await load(steps.db, instance_id)
    assert (after.status, after.operation) == ("stopped", None)
    assert after.stopped_at is not None
    assert await requests_of(steps.db, instance_id) == {
        1: ("succeeded", None),
        2: ("succeeded", None),
    }
    [delivery] = await deliveries(steps.db, instance_id)
    assert (delivery.status, delivery.next_attempt_at) == ("skipped", None)  # no URL


async def test_fail_keeps_the_extra_columns_with_the_failure(steps: Steps) -> None:
    instance_id = await insert_instance(steps.db, create_state="in_flight")
    lease, row = await claim(steps.db, instance_id)
    extra = InstanceChange(create_state=CreateState.UNKNOWN)
    await fail(steps.ctx, lease, row, "no luck", extra=extra)
    after = await load(steps.db, instance_id)
    assert (after.status, after.failure_reason, after.create_state) == (
        "failed",
        "no luck",
        "unknown",
    )
    [delivery] = await deliveries(steps.db, instance_id)
    assert delivery.payload["data"]["error"] == "no luck"


async def test_wait_sleeps_until_the_deadline_or_a_newer_observation(steps: Steps) -> None:
    observed = utcnow() - timedelta(seconds=5)
    instance_id = await insert_instance(steps.db, status="starting", observed_at=observed)
    lease, row = await claim(steps.db, instance_id)
    await wait(steps.ctx, lease, row, 30.0)
    after = await load(steps.db, instance_id)
    assert after.next_attempt_at is not None
    assert after.next_attempt_at > utcnow() + timedelta(seconds=25)
    # The sync wrote a newer observation while the step decided: due at once.
    lease, row = await claim(steps.db, instance_id)
    async with steps.db.session() as session, session.begin():
        await session.execute(
            update(Instance).where(Instance.id == instance_id).values(observed_at=utcnow())
        )
    await wait(steps.ctx, lease, row, 30.0)
    after = await load(steps.db, instance_id)
    assert after.next_attempt_at is not None
    assert after.next_attempt_at <= utcnow()


# -- the guarded write and the retry ---------------------------------------------------------


async def test_a_write_after_the_lease_was_lost_changes_nothing(steps: Steps) -> None:
    instance_id = await insert_instance(steps.db)
    _, row = await claim(steps.db, instance_id)
    stale = Lease(instance_id, "not-the-token", "other")
    assert not await write(
        steps.ctx, stale, row, InstanceChange(status=Status.FAILED), release=True
    )
    assert (await load(steps.db, instance_id)).status == "creating"
    assert row.status == "creating"


async def test_a_release_never_sleeps_past_a_request_accepted_meanwhile(steps: Steps) -> None:
    instance_id = await insert_instance(steps.db, status="running", operation=None)
    lease, row = await claim(steps.db, instance_id)
    await add_request(steps.db, instance_id, 1, Operation.STOP)  # after the claim read the row
    later = utcnow() + timedelta(hours=1)
    assert await write(steps.ctx, lease, row, InstanceChange(next_attempt_at=later), release=True)
    after = await load(steps.db, instance_id)
    assert after.next_attempt_at is not None
    assert after.next_attempt_at <= utcnow()
    assert after.lock_token is None


async def test_retry_counts_the_attempt_and_backs_off(steps: Steps) -> None:
    instance_id = await insert_instance(steps.db, attempts=2)
    lease, row = await claim(steps.db, instance_id)
    retried_at = utcnow()
    await retry(steps.ctx, lease, row, RuntimeError("upstream said no"))
    after = await load(steps.db, instance_id)
    assert (after.attempts, after.last_error) == (3, "upstream said no")
    assert after.next_attempt_at is not None
    # Later than the retry itself (not than the assertion: the backoff is short in the tests,
    # and a loaded machine reaches this line after it has passed).
    assert after.next_attempt_at > retried_at
    assert after.lock_token is None


# -- dispatch --------------------------------------------------------------------------------


async def test_the_provisioner_puts_an_idle_row_to_sleep(steps: Steps) -> None:
    ctx = steps.ctx
    provisioner = Provisioner(
        db=ctx.db, client=ctx.client, catalogue=ctx.catalogue, settings=ctx.settings
    )
    instance_id = await insert_instance(steps.db, status="stopped", operation=None)
    lease, row = await claim(steps.db, instance_id)
    await provisioner(lease, row)
    after = await load(steps.db, instance_id)
    assert (after.status, after.next_attempt_at, after.lock_token) == ("stopped", None, None)


async def test_the_provisioner_creates_a_new_row(steps: Steps) -> None:
    ctx = steps.ctx
    provisioner = Provisioner(
        db=ctx.db, client=ctx.client, catalogue=ctx.catalogue, settings=ctx.settings
    )
    instance_id = await insert_instance(steps.db)
    lease, row = await claim(steps.db, instance_id)
    await provisioner(lease, row)
    after = await load(steps.db, instance_id)
    assert (after.status, after.create_state) == ("starting", "done")
    assert after.novita_instance_id in upstream(steps.simulator)
