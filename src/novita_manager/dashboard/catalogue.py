"""What the dashboard reads besides instances: offers, templates and an instance's history.

Each comes from a use case in `services`, turned into the plain rows the templates show. The
offers and templates are optional on the page: when the catalogue cannot be read (Novita down)
the form still works with a typed product name, so these return an empty list then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from novita_manager.domain.catalogue import BILLING_MODES
from novita_manager.errors import ApiError
from novita_manager.logging import get_logger
from novita_manager.services import catalogue, events

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime

log = get_logger(__name__)
HISTORY_LIMIT = 500  # events shown on an instance page (oldest first)
OFFERS_SHOWN = 100  # cheapest first


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


async def offers(
    runtime: Runtime, billing_mode: str, gpu_num: int = 1
) -> tuple[list[dict[str, Any]], str | None]:
    """Deployable offers, cheapest first (the rows of GET /api/offers), and why there are none
    when the catalogue could not be read."""
    mode = next((known for known in BILLING_MODES if known == billing_mode), None)
    try:
        listed = await catalogue.list_offers(
            runtime,
            product_name=None,
            region=None,
            billing_mode=mode,
            gpu_num=gpu_num,
        )
    except Exception as error:  # Novita down and nothing cached: the form still works
        message = error.message if isinstance(error, ApiError) else type(error).__name__
        log.warning("dashboard_offers_unavailable", error=message)
        return [], message
    return [offer.model_dump() for offer in listed.offers[:OFFERS_SHOWN]], None


async def templates(runtime: Runtime) -> list[dict[str, Any]]:
    """Templates to create from (id, name), or none when they cannot be read now (the form
    then takes a typed template id)."""
    try:
        listed = await catalogue.list_templates(runtime)
    except Exception as error:
        message = error.message if isinstance(error, ApiError) else type(error).__name__
        log.warning("dashboard_templates_unavailable", error=message)
        return []
    return [{"id": t.id, "name": t.name or t.image or t.id} for t in listed.templates]
