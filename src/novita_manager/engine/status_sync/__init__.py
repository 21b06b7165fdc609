"""The status sync: one listing of the account per interval updates every managed instance.

Polling each instance with its own GET costs N calls per interval; listing the account page by
page costs one call per page, whatever the number of instances. A single GET is the fallback for
a managed instance the listing did not show (it may just have been removed: 404 means gone), but
only when the listing was proved complete (readings `page_base`, `page_size_cap`): absence from
an incomplete listing proves nothing. List items may lack connection details (`list_shape`);
`observations.merge` keeps those of the last GET while the instance runs.
Observations are written without taking leases (they touch only observation columns), and a row
whose observation changed in a way that needs a reaction is made due at once, so the
provisioning pipeline reacts within milliseconds of the sync. With several replicas a service
lease lets one of them sync at a time.

Modules:
- `sync`: `StatusSync`, the loop under the service lease and one run (`run_once`);
- `listing`: what the listing is completed with (the fallback GETs) and when to list at all;
- `record`: writing observations and waking the rows whose next step would act on them;
- `strays`: instances carrying our marker that no row owns: adopted by a row still creating,
  else recorded as sightings for the stray deletion task (`engine/scheduled/strays.py`).
"""

from novita_manager.engine.status_sync.listing import (
    INCOMPLETE_FALLBACK_GETS,
    PAGE_SIZE,
    STRAY_WINDOW,
    fallback_ids,
)
from novita_manager.engine.status_sync.record import needs_reaction
from novita_manager.engine.status_sync.sync import LEASE_NAME, StatusSync, SyncHealth, SyncReport

__all__ = [
    "INCOMPLETE_FALLBACK_GETS",
    "LEASE_NAME",
    "PAGE_SIZE",
    "STRAY_WINDOW",
    "StatusSync",
    "SyncHealth",
    "SyncReport",
    "fallback_ids",
    "needs_reaction",
]
