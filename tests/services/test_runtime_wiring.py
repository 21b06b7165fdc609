"""How `Runtime.open` wires the provisioning pipeline to the status sync: which rows are claimed
first, and which backlog the sync waits for (a real runtime on a SQLite file, nothing started)."""

from __future__ import annotations

from pathlib import Path

from novita_manager.config import load_settings
from novita_manager.services.runtime import Runtime
from novita_manager.store.models import Instance
from tests.engine.steps import insert_instance
from tests.fixtures.service import service_env


async def test_the_sync_waits_only_for_a_backlog_of_steps_that_read_their_instance(
    tmp_path: Path,
) -> None:
    env = service_env("http://127.0.0.1:9", f"sqlite+aiosqlite:///{tmp_path}/w.db")
    runtime = await Runtime.open(
        load_settings(**{k.lower(): v for k, v in env.items()}), background=False
    )
    try:
        pipeline = runtime.provisioning
        pipeline.backlogged = True
        pipeline.last_claimed = [Instance(id="a", novita_instance_id="n-a")]
        assert runtime.status_sync.busy()
        pipeline.last_claimed.append(Instance(id="b", novita_instance_id=None))  # a create
        assert not runtime.status_sync.busy()
        pipeline.backlogged = False
        pipeline.last_claimed = [Instance(id="a", novita_instance_id="n-a")]
        assert not runtime.status_sync.busy()

        # The running, unannounced row is claimed before the create that became due first.
        await insert_instance(runtime.db, id="create")
        await insert_instance(
            runtime.db, id="unannounced", status="starting", create_state="done",
            novita_instance_id="n-u", novita_status="running",
        )  # fmt: skip
        claimed = await pipeline._claim(1)
        assert [row.id for _, row in claimed] == ["unannounced"]
    finally:
        await runtime.close()
