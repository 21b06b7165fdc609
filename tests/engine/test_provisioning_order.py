"""The provisioning pipeline claims the instances Novita bills unannounced before the others due
(engine/provisioning/provisioner.py `BILLING_UNANNOUNCED`), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from novita_manager.domain.statuses import CreateState, Operation, Status
from novita_manager.engine.leases import Lease, write_with_lease
from novita_manager.engine.pipeline import Pipeline
from novita_manager.engine.provisioning import BILLING_UNANNOUNCED, backlog_observes_itself
from novita_manager.store.db import Database
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow
from tests.engine.steps import insert_instance


async def test_running_unannounced_and_stops_of_running_instances_go_first(db: Database) -> None:
    now = utcnow()
    await insert_instance(db, id="create-old", next_attempt_at=now - timedelta(seconds=30))
    await insert_instance(
        db,
        id="at-rest",  # running and announced: due for another reason, not first
        status=Status.RUNNING.value,
        operation=None,
        create_state=CreateState.DONE.value,
        novita_instance_id="n-rest",
        novita_status="running",
        next_attempt_at=now - timedelta(seconds=20),
    )
    await insert_instance(
        db,
        id="reached-running",
        status=Status.STARTING.value,
        create_state=CreateState.DONE.value,
        novita_instance_id="n-new",
        novita_status="running",
        next_attempt_at=now,
    )
    await insert_instance(
        db,
        id="stop-waiting",
        status=Status.STOPPING.value,
        operation=Operation.STOP.value,
        create_state=CreateState.DONE.value,
        novita_instance_id="n-stop",
        novita_status="running",
        next_attempt_at=now - timedelta(seconds=1),
    )
    seen: list[str] = []

    async def handle(lease: Lease, row: Instance) -> None:
        seen.append(row.id)
        async with db.session() as session, session.begin():
            await write_with_lease(
                session, Instance, lease, {"next_attempt_at": None}, release=True
            )

    pipeline: Pipeline[Instance] = Pipeline(
        name="provisioning", db=db, model=Instance, handler=handle, first=BILLING_UNANNOUNCED,
        workers=2, idle_min=0.01, idle_max=0.1,
    )  # fmt: skip
    assert await pipeline.run_once() == 2
    assert sorted(seen) == ["reached-running", "stop-waiting"]
    assert backlog_observes_itself(pipeline.last_claimed)  # both read their instance
    assert await pipeline.run_once() == 2
    assert seen[2:] == ["create-old", "at-rest"]  # then in the order they became due
    assert not backlog_observes_itself(pipeline.last_claimed)  # a create: the sync must look


def test_only_a_backlog_of_steps_that_read_their_instance_holds_the_status_sync() -> None:
    created = Instance(id="a", novita_instance_id="n-a")
    creating = Instance(id="b", novita_instance_id=None)
    assert backlog_observes_itself([created, Instance(id="c", novita_instance_id="n-c")])
    assert not backlog_observes_itself([created, creating])
    assert backlog_observes_itself([])  # vacuous: `backlogged` says whether there is one
