"""The service's scheduled tasks, wired to the status sync they depend on."""

from __future__ import annotations

from collections.abc import Sequence

from novita_manager.engine.scheduled.idempotency import idempotency_purge_task
from novita_manager.engine.scheduled.runner import ScheduledRunner, ScheduledTask
from novita_manager.engine.scheduled.strays import STRAYS_TASK, stray_deletion_task
from novita_manager.engine.status_sync import StatusSync
from novita_manager.metrics import Metrics
from novita_manager.novita.client import NovitaClient
from novita_manager.store.db import Database


def build_scheduled_runner(
    db: Database,
    client: NovitaClient,
    status_sync: StatusSync,
    *,
    owner: str,
    metrics: Metrics | None = None,
    extra: Sequence[ScheduledTask] = (),
) -> ScheduledRunner:
    """The idempotency purge (its own lease), the stray deletion (follows the sync's lease,
    asked for by the sync as soon as it sights a stray) and `extra` tasks (the limits)."""
    strays = stray_deletion_task(
        db,
        client,
        status_sync.sightings,
        interval=status_sync.interval,
        follows=lambda: status_sync.holds_lease,
    )
    runner = ScheduledRunner(
        db=db,
        owner=owner,
        tasks=[idempotency_purge_task(db), strays, *extra],
        metrics=metrics,
    )
    status_sync.on_strays = lambda: runner.request(STRAYS_TASK)
    return runner
