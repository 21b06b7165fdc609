"""The provisioning pipeline's handler: advances one managed instance by one step.

Each step is safe to repeat after a crash at any line:
- Create exactly once: `create_state` is set to `in_flight` (committed) before Novita's create is
  sent. A row found `in_flight` or `unknown` (a crash, a timeout, a dropped connection) first looks
  for the instance by name and our marker env var, adopts it when found, and only creates again
  when it is certainly absent. So one request never pays for two instances.
- Start, stop and delete are sent, then recorded; sending one twice is harmless upstream (an
  `invalid state change` or 404 answer is read as "already done", then re-read by the sync).
- A status change, its history entry and its webhook (the outbox row) commit in one transaction.
The status sync (`engine/status_sync/`) brings observations; `domain.lifecycle.decide` says what
to do.

Modules, one per kind of step (each step writes its result with `write.write` under the lease):
- `provisioner`: the pipeline's handler, dispatching `decide()`'s action to a step;
- `requests`: taking up the operation requests the API accepted;
- `create`: finding an earlier create, creating (`offers`: which offers, in which order), and
  recording the created instance;
- `calls`: sending start, stop and delete;
- `transitions`: reaching a status (history, webhook outbox and request outcomes), failing,
  waiting;
- `records`: the rows a step adds beside its write (history, outbox, request outcomes);
- `write`: the guarded write under the lease, and the retry of a step.
"""

from novita_manager.engine.provisioning.context import RECHECK_INTERVALS
from novita_manager.engine.provisioning.provisioner import (
    BILLING_UNANNOUNCED,
    Provisioner,
    backlog_observes_itself,
)
from novita_manager.engine.provisioning.write import IncompleteListing

__all__ = [
    "BILLING_UNANNOUNCED",
    "RECHECK_INTERVALS",
    "IncompleteListing",
    "Provisioner",
    "backlog_observes_itself",
]
