"""Everything a running service owns, opened in order and closed in reverse.

The app's lifespan creates one `Runtime`: the database (migrated), the upstream client, the
catalogue cache, and the background work (provisioning pipeline, status sync, scheduled tasks,
webhook delivery).
Routers reach it through `api.deps.get_runtime`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from novita_manager.config import Settings
from novita_manager.cpu_idle import IdleCores
from novita_manager.domain.statuses import Status
from novita_manager.engine.pipeline import Pipeline
from novita_manager.engine.provisioning import (
    BILLING_UNANNOUNCED,
    Provisioner,
    backlog_observes_itself,
)
from novita_manager.engine.scheduled import ScheduledRunner, build_scheduled_runner
from novita_manager.engine.scheduled.limits import LimitOptions, LimitsTask, limits_task
from novita_manager.engine.status_sync import StatusSync
from novita_manager.engine.webhook_delivery import build_webhook_pipeline
from novita_manager.logging import get_logger
from novita_manager.metrics import Metrics
from novita_manager.novita.catalogue import Catalogue
from novita_manager.novita.client import NovitaClient
from novita_manager.services.create_writer import CreateWriter
from novita_manager.services.events import EventHub
from novita_manager.services.key_check import KeyCheck, check_key_once
from novita_manager.services.upstream import novita_client
from novita_manager.store.db import Database
from novita_manager.store.instance_reads import InstanceReads
from novita_manager.store.models import Instance, WebhookDelivery
from novita_manager.store.startup import open_database
from novita_manager.webhooks.sender import WebhookSender

log = get_logger(__name__)


# A spare background process (`Runtime.open(spare=True)`) claims provisioning rows due this many
# seconds ago or more, and looks for them this often when idle: it gets no hint when the status
# sync, in the first process, finds a burst.
SPARE_CLAIM_LAG = 0.2
SPARE_POLL = 0.25
# ... and only while this much of the machine's cores was idle since it last looked (cpu_idle.py).
SPARE_IDLE_CORES = 0.25


@dataclass
class Runtime:
    settings: Settings
    metrics: Metrics
    db: Database
    client: NovitaClient
    catalogue: Catalogue
    provisioning: Pipeline[Instance]
    webhook_pipeline: Pipeline[WebhookDelivery]
    webhook_sender: WebhookSender
    status_sync: StatusSync
    scheduled: ScheduledRunner
    instance_reads: InstanceReads
    events: EventHub
    create_writer: CreateWriter
    key_check: KeyCheck = field(default_factory=KeyCheck)
    _key_task: asyncio.Task[None] | None = None
    # Wakes the pipelines of another process (set by the app when they run in a sibling worker
    # process of `serve`): API-only processes would otherwise leave new work to their next poll.
    wake_worker: Callable[[], None] | None = None

    @classmethod
    async def open(
        cls, settings: Settings, *, background: bool = True, spare: bool = False
    ) -> Runtime:
        """`spare`: a background process beside a first one (`serve` on PostgreSQL,
        PIPELINE_PROCESSES): its provisioning pipeline takes only the rows that have waited
        `SPARE_CLAIM_LAG` (the backlog of a burst), polling for them every `SPARE_POLL` while a
        core is idle (`SPARE_IDLE_CORES`), and the status sync and the scheduled tasks are left
        to the first process."""
        metrics = Metrics()
        # DatabaseStartupError: one line. On SQLite only the process that runs the background
        # work holds the file's single-process guard; an API-only one writes beside it (WAL).
        db = await open_database(settings.database_url, exclusive=background)
        try:
            client = novita_client(settings, metrics)
            catalogue = Catalogue(client, settings.cache_ttl, metrics)
            sender = WebhookSender()
            webhook_pipeline = build_webhook_pipeline(
                db, settings, metrics, db.owner, sender=sender
            )
            status_sync = StatusSync(
                db=db,
                client=client,
                interval=settings.instance_poll_interval,
                owner=db.owner,
                startup_timeout=settings.instance_startup_timeout,
                metrics=metrics,
            )
            provisioner = Provisioner(
                db=db,
                client=client,
                catalogue=catalogue,
                settings=settings,
                on_outbox=webhook_pipeline.hint,
                on_upstream_change=status_sync.request,
            )
            provisioning: Pipeline[Instance] = Pipeline(
                name="provisioning",
                db=db,
                model=Instance,
                handler=provisioner,
                first=BILLING_UNANNOUNCED,
                workers=settings.pipeline_workers,
                lease_seconds=settings.lease_seconds,
                owner=db.owner,
                metrics=metrics,
                retry_base=max(settings.retry_backoff_base, 0.05),
                retry_cap=60.0,
                claim_lag=SPARE_CLAIM_LAG if spare else 0.0,
                idle_max=SPARE_POLL if spare else 1.0,
                claim_gate=IdleCores(SPARE_IDLE_CORES) if spare else None,
            )
            status_sync.on_changes = provisioning.hint
            status_sync.busy = lambda: (
                provisioning.backlogged and backlog_observes_itself(provisioning.last_claimed)
            )
            status_sync.idle = lambda: provisioning.in_work == 0
            events = EventHub(
                db,
                poll_interval=settings.events_poll_interval,
                heartbeat_interval=settings.events_heartbeat_interval,
                max_streams=settings.events_max_streams,
                on_count=metrics.event_streams.set,
            )
            # The steps' commits hold the status changes and webhooks: streams get them at once.
            provisioner.ctx.commits.on_commit = events.poke
            limits = LimitsTask(
                db,
                client,
                LimitOptions(
                    interval=settings.instance_poll_interval,
                    warning_lead=settings.expiry_warning_lead,
                    idle_threshold=settings.idle_gpu_threshold,
                ),
                on_request=provisioning.hint,
                on_outbox=webhook_pipeline.hint,
            )
            scheduled = build_scheduled_runner(
                db,
                client,
                status_sync,
                owner=db.owner,
                metrics=metrics,
                extra=[limits_task(limits)],
            )
            instance_reads = await InstanceReads.open(db)
        except BaseException:
            await db.close()
            raise
        runtime = cls(
            settings=settings,
            metrics=metrics,
            db=db,
            client=client,
            catalogue=catalogue,
            provisioning=provisioning,
            webhook_pipeline=webhook_pipeline,
            webhook_sender=sender,
            status_sync=status_sync,
            scheduled=scheduled,
            instance_reads=instance_reads,
            events=events,
            create_writer=CreateWriter(db),
        )
        if background:
            await runtime.provisioning.start()
            await runtime.webhook_pipeline.start()
            if not spare:
                await runtime.status_sync.start()
                await runtime.scheduled.start()
            # The key is checked once, in the background: start-up neither waits for Novita
            # nor fails when it is unreachable (services/health.py check_key_once).
            runtime._key_task = asyncio.create_task(check_key_once(runtime))
        return runtime

    async def close(self) -> None:
        """Stop taking work, let in-flight steps finish, then close connections."""
        if self._key_task is not None:
            self._key_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._key_task
        for stop in (
            self.create_writer.close,
            self.events.close,
            self.scheduled.stop,
            self.status_sync.stop,
            self.provisioning.stop,
            self.webhook_pipeline.stop,
        ):
            with contextlib.suppress(Exception):
                await stop()
        await self.webhook_sender.aclose()
        await self.client.aclose()
        await self.instance_reads.close()
        await self.db.close()

    def hint_provisioning(self) -> None:
        self.provisioning.hint()
        if self.wake_worker is not None:
            self.wake_worker()

    def upstream_stale(self) -> bool:
        """True when this process knows Novita could not be reached recently."""
        return (
            self.client.breaker.state == "open" or self.status_sync.health.consecutive_failures > 0
        )

    def staleness(self, now: datetime) -> Callable[[Mapping[str, Any]], bool]:
        """The rule for `stale` at `now`, for rows given as their columns (`novita_instance_id`,
        `status`, `last_synced_at`, `created_at`): true when Novita is unreachable from here, or
        (seen from a replica that does not run the sync) when the row has not been confirmed
        for longer than the sync would ever leave it. Built once per request, applied per row."""
        if self.upstream_stale():
            return lambda _columns: True
        limit = timedelta(
            seconds=self.status_sync.resync_write_interval
            + 3 * self.settings.instance_poll_interval
        )
        deleted = Status.DELETED.value

        def stale(columns: Mapping[str, Any]) -> bool:
            if columns["novita_instance_id"] is None or columns["status"] == deleted:
                return False
            confirmed = columns["last_synced_at"] or columns["created_at"]
            if isinstance(confirmed, str):  # the SQLite read path gives ISO-8601 text
                confirmed = datetime.fromisoformat(confirmed)
            return bool(now - confirmed > limit)

        return stale
