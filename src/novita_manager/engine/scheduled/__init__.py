"""Scheduled tasks: named periodic work, each run in one replica at a time.

`runner.ScheduledRunner` runs each `ScheduledTask` every `interval` seconds (or at once when
asked with `request(name)`), logs every run that did something and every failure, and counts runs
by outcome in `novita_manager_scheduled_task_runs_total{task,outcome}`. A task either takes its
own service lease (`engine/service_lease.py`, named `scheduled:<name>`), so that with several
replicas it runs in one of them, or follows another holder (`follows`): it runs only while that
returns True. The tasks:

- `idempotency`: idempotency keys older than 24 h are purged, hourly, under its own lease;
- `strays`: instances carrying our marker that no row owns are deleted upstream. It follows the
  status sync's lease; see that module for why.

`tasks.build_scheduled_runner` builds the service's runner; `services/runtime.py` starts it after
the status sync and stops it before.
"""

from novita_manager.engine.scheduled.idempotency import idempotency_purge_task
from novita_manager.engine.scheduled.runner import ScheduledRunner, ScheduledTask
from novita_manager.engine.scheduled.strays import STRAYS_TASK, stray_deletion_task
from novita_manager.engine.scheduled.tasks import build_scheduled_runner

__all__ = [
    "STRAYS_TASK",
    "ScheduledRunner",
    "ScheduledTask",
    "build_scheduled_runner",
    "idempotency_purge_task",
    "stray_deletion_task",
]
