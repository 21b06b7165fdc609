"""The fleet's costs: `GET /api/costs` and the Prometheus cost series.

Both read what the engine recorded (engine/billing.py): closed periods in `billing_periods`,
open ones on the instance rows; the arithmetic is domain/costs.py.
"""

from __future__ import annotations

import weakref
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import Gauge
from sqlalchemy import select

from novita_manager.domain.cost_views import CostGroupView, CostReport, CostTotalView
from novita_manager.domain.costs import Billed, GroupBy, Period, cost_to_date, summarize
from novita_manager.domain.payloads import iso
from novita_manager.errors import ValidationFailed
from novita_manager.metrics import Metrics
from novita_manager.store.models import BillingPeriod, Instance
from novita_manager.store.types import utcnow

if TYPE_CHECKING:
    from novita_manager.services.runtime import Runtime


async def billed_periods(
    runtime: Runtime, start: datetime | None, end: datetime
) -> tuple[list[Billed], float]:
    """Every billed period overlapping [start, end) (closed ones, and the open ones up to
    now), and the USD per hour of the open ones."""
    now = utcnow()
    closed = (
        select(
            BillingPeriod.instance_id,
            Instance.name,
            Instance.product_name,
            Instance.region,
            BillingPeriod.started_at,
            BillingPeriod.ended_at,
            BillingPeriod.rate,
        )
        .join(Instance, Instance.id == BillingPeriod.instance_id)
        .where(BillingPeriod.started_at < end)
    )
    if start is not None:
        closed = closed.where(BillingPeriod.ended_at > start)
    running = select(
        Instance.id,
        Instance.name,
        Instance.product_name,
        Instance.region,
        Instance.billing_since,
        Instance.billing_rate,
    ).where(Instance.billing_since.is_not(None), Instance.billing_since < end)
    async with runtime.db.read_session() as session:
        rows = (await session.execute(closed)).all()
        open_rows = (await session.execute(running)).all()
    billed = [
        Billed(iid, name, product, region, Period(started, ended, rate))
        for iid, name, product, region, started, ended, rate in rows
    ]
    billed += [
        Billed(iid, name, product, region, Period(since, max(since, now), rate or 0.0))
        for iid, name, product, region, since, rate in open_rows
        if since is not None
    ]
    return billed, sum(rate or 0.0 for *_, rate in open_rows)


async def cost_report(
    runtime: Runtime, start: datetime | None, end: datetime | None, group_by: GroupBy
) -> CostReport:
    now = utcnow()
    end = min(end or now, now)
    if start is not None and start >= end:
        message = "`from` must be before `to` (and before now)"
        raise ValidationFailed(message, details=[{"field": "from", "message": message}])
    billed, spend = await billed_periods(runtime, start, end)
    groups = summarize(billed, start=start, end=end, group_by=group_by)
    names = {item.instance_id: item.name for item in billed}
    every = {iid for group in groups for iid in (group.instances or set())}
    return CostReport.model_validate(
        {
            "from": iso(start),
            "to": iso(end),
            "groupBy": group_by,
            "groups": [
                CostGroupView(
                    key=group.key,
                    name=names.get(group.key) if group_by is GroupBy.INSTANCE else None,
                    cost=round(group.cost, 6),
                    billedSeconds=round(group.billed_seconds, 3),
                    instances=len(group.instances or ()),
                )
                for group in groups
            ],
            "total": CostTotalView(
                cost=round(sum(group.cost for group in groups), 6),
                billedSeconds=round(sum(group.billed_seconds for group in groups), 3),
                instances=len(every),
            ),
            "spendRatePerHour": round(spend, 6),
        }
    )


_GAUGES: weakref.WeakKeyDictionary[Metrics, tuple[Gauge, Gauge]] = weakref.WeakKeyDictionary()


def _gauges(metrics: Metrics) -> tuple[Gauge, Gauge]:
    gauges = _GAUGES.get(metrics)
    if gauges is None:
        labels = ["product", "region"]
        gauges = _GAUGES[metrics] = (
            Gauge(
                "novita_manager_spend_rate_usd_per_hour",
                "USD per hour of the instances billed now, by product and region.",
                labels,
                registry=metrics.registry,
            ),
            Gauge(
                "novita_manager_cost_to_date_usd",
                "USD billed so far by every instance the service manages (deleted ones "
                "included), by product and region.",
                labels,
                registry=metrics.registry,
            ),
        )
    return gauges


async def refresh_cost_gauges(runtime: Runtime) -> None:
    """Bring the cost series up to date just before a scrape."""
    now = utcnow()
    statement = select(
        Instance.product_name,
        Instance.region,
        Instance.billed_cost,
        Instance.billed_seconds,
        Instance.billing_since,
        Instance.billing_rate,
    ).where((Instance.billed_cost > 0) | Instance.billing_since.is_not(None))
    async with runtime.db.read_session() as session:
        rows = (await session.execute(statement)).all()
    rate: dict[tuple[str, str], float] = {}
    spent: dict[tuple[str, str], float] = {}
    for product, region, cost, seconds, since, open_rate in rows:
        key = (product, region)
        spent[key] = spent.get(key, 0.0) + cost_to_date(cost, seconds, since, open_rate, now)[0]
        if since is not None:
            rate[key] = rate.get(key, 0.0) + (open_rate or 0.0)
    spend_gauge, cost_gauge = _gauges(runtime.metrics)
    spend_gauge.clear()
    cost_gauge.clear()
    for (product, region), value in spent.items():
        cost_gauge.labels(product, region).set(round(value, 6))
        spend_gauge.labels(product, region).set(round(rate.get((product, region), 0.0), 6))
