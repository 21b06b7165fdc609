"""The price a start pays: read from Novita's product listing when the start is sent.

Novita prices an instance when it (re)starts; the price quoted at create may have changed since.
The listing is asked afresh (not from the catalogue cache), once per start, so the billed period
the start opens (engine/billing.py) carries today's price. When it cannot be read the price
recorded before is kept.
"""

from __future__ import annotations

from novita_manager.domain.offers import unit_price
from novita_manager.logging import get_logger
from novita_manager.novita.client import NovitaClient
from novita_manager.novita.errors import NovitaError
from novita_manager.store.models import Instance

log = get_logger(__name__)


async def current_price(client: NovitaClient, row: Instance) -> float | None:
    """The instance's price per hour now (per-GPU price x GPUs), or None when unknown."""
    if not row.product_id:
        return None
    try:
        products = await client.list_products(
            cluster_id=row.cluster_id, billing_method=row.billing_mode
        )
    except NovitaError as error:
        log.info("start_price_unread", error=str(error))
        return None
    for product in products:
        if product.id == row.product_id:
            price = unit_price(product, row.billing_mode)
            return None if price is None else round(price * max(row.gpu_num, 1), 6)
    return None
