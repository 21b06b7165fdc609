"""Instances carrying our marker that no row owns (a last line of defence for creating exactly
once): adopted here by a row still creating; the others are recorded as sightings, which the
scheduled task `scheduled/strays.py` deletes upstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from novita_manager.domain import observations
from novita_manager.domain.statuses import CreateState, Status
from novita_manager.engine.changes import InstanceChange
from novita_manager.logging import get_logger
from novita_manager.novita.listed import ListedInstance
from novita_manager.novita.models import Instance as NovitaInstance
from novita_manager.store.db import Database
from novita_manager.store.models import Instance
from novita_manager.store.types import utcnow

log = get_logger(__name__)

# Rows in these statuses adopt an instance that carries their marker; others have it deleted.
ADOPTING = frozenset({Status.CREATING.value, Status.STARTING.value})


@dataclass(frozen=True)
class Sighting:
    """An upstream instance carrying the marker of row `marker` that the row does not own."""

    novita_instance_id: str
    marker: str
    seen_at: datetime


class StraySightings:
    """What the last listing showed of strays, kept in this process for the deletion task."""

    def __init__(self) -> None:
        self._sightings: dict[str, Sighting] = {}

    def record(self, sightings: list[Sighting]) -> None:
        """Replace the sightings with those of the latest listing."""
        self._sightings = {sighting.novita_instance_id: sighting for sighting in sightings}

    def take(self) -> list[Sighting]:
        """The sightings to act on, forgotten here (the next listing shows those still there)."""
        taken, self._sightings = list(self._sightings.values()), {}
        return taken

    def __len__(self) -> int:
        return len(self._sightings)


async def owners_of(db: Database, markers: set[str]) -> dict[str, tuple[str | None, str]]:
    """The rows the markers name: id -> (novita_instance_id, status)."""
    async with db.read_session() as session:
        rows = (
            await session.execute(
                select(Instance.id, Instance.novita_instance_id, Instance.status).where(
                    Instance.id.in_(markers)
                )
            )
        ).all()
    return {row.id: (row.novita_instance_id, row.status) for row in rows}


def is_stray(owner: tuple[str | None, str] | None, novita_id: str) -> bool:
    """Whether an instance with this owner's marker belongs to nobody (and is not adoptable)."""
    if owner is None:
        return False  # someone else's marker: left alone
    owned_id, status = owner
    if owned_id == novita_id:
        return False  # adopted since the listing was read
    return not (owned_id is None and status in ADOPTING)


async def settle_strays(
    db: Database,
    strays: Mapping[str, tuple[str, NovitaInstance | ListedInstance]],
    started: datetime,
) -> tuple[int, list[Sighting]]:
    """Instances carrying our marker that no row owns: a row still creating (its create's
    answer was lost) adopts its instance; the others are returned as sightings to delete (a
    duplicate, or the late result of a create whose request already failed or was deleted).
    Instances with a marker we never issued belong to someone else and are left alone.
    Returns how many were adopted, and the sightings.
    """
    owners = await owners_of(db, {marker for marker, _ in strays.values()})
    sightings: list[Sighting] = []
    adopted = 0
    for novita_id, (marker, item) in strays.items():
        owner = owners.get(marker)
        if owner is None or owner[0] == novita_id:
            continue
        if is_stray(owner, novita_id):
            sightings.append(Sighting(novita_id, marker, started))
            continue
        adopted += 1
        log.warning("stray_instance_adopted", instance_id=marker, novita_instance_id=novita_id)
        async with db.session() as session, session.begin():
            await session.execute(
                update(Instance)
                .where(Instance.id == marker, Instance.novita_instance_id.is_(None))
                # never the reclaimed instance a recreate deleted (engine/.../recover.py)
                .where(
                    Instance.replaces_novita_id.is_(None)
                    | (Instance.replaces_novita_id != novita_id)
                )
                .values(
                    InstanceChange(
                        novita_instance_id=novita_id,
                        create_state=CreateState.DONE,
                        observation=observations.summarize(item),
                        observed_at=started,
                        novita_status=item.status or None,
                        next_attempt_at=utcnow(),
                    ).columns()
                )
                .execution_options(synchronize_session=False)
            )
    return adopted, sightings
