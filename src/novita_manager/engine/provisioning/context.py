"""What every provisioning step needs: the database, Novita, the catalogue, the settings, and
the callbacks that wake other background work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from novita_manager.config import Settings
from novita_manager.engine.group_commit import GroupCommit
from novita_manager.novita.catalogue import Catalogue
from novita_manager.novita.client import NovitaClient
from novita_manager.store.db import Database
from novita_manager.store.models import Instance

# A waiting row is rechecked after this many poll intervals even without news (a safety net:
# the status sync wakes it as soon as an observation needs a reaction).
RECHECK_INTERVALS = 10


def _nothing() -> None:
    return None


@dataclass
class StepContext:
    db: Database
    client: NovitaClient
    catalogue: Catalogue
    settings: Settings
    on_outbox: Callable[[], None] = field(default=_nothing)  # wakes the webhook pipeline
    # asks the status sync for an early look
    on_upstream_change: Callable[[], None] = field(default=_nothing)
    # The steps' writes, in transactions shared by the workers (made from `db` when not given).
    commits: GroupCommit = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.commits is None:
            self.commits = GroupCommit(self.db, model=Instance)

    @property
    def recheck_after(self) -> float:
        """Seconds a waiting row sleeps without news (`decide`'s `recheck_after`)."""
        return self.settings.instance_poll_interval * RECHECK_INTERVALS
