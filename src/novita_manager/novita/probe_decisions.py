"""The doctor's pure decisions: which reading an account shows, from what it answered.

Every `decide_*` is a function of plain answers (ids of two pages, a list item and its GET, two
product lists), tested without I/O on hand-made answers, including the odd ones nobody planned
for; the probes only fetch and hand the answers over. Kept apart so that these rules, the part
most likely to need a change when a real account surprises us, read without any HTTP around them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from novita_manager.domain.offers import is_deployable, unit_price
from novita_manager.domain.regions import offered_in, region_code
from novita_manager.novita.models import Cluster, Product
from novita_manager.novita.probe_report import Status

CONNECTION_FIELDS = (
    "connectComponentSSH",
    "connectComponentWebTerminal",
    "connectComponentJupyter",
)


@dataclass(frozen=True)
class Verdict:
    status: Status
    observed: str
    readings: dict[str, Any] = field(default_factory=dict)


def decide_page_base(
    zero: Sequence[str] | None, one: Sequence[str], total: int, size: int, what: str
) -> Verdict:
    """Which pageNum is the first page, from the ids of pageNum=0 (None: refused) and 1.

    Base 0: the two pages differ (or page 1 is empty because everything fit on page 0).
    Base 1: page 0 is refused, empty, or the same as page 1.
    """
    if zero is None:
        return Verdict(
            "ok",
            f"{what}: pageNum=1 is the first page; pageNum=0 is refused (400)",
            {"page_base": 1, "page_zero": "refused"},
        )
    if not zero and not one:
        if total > 0:
            return Verdict(
                "warn", f"{what}: both pages empty although total is {total}: unknown paging"
            )
        return Verdict("warn", f"{what}: undecidable: no items")
    if zero and one:
        if list(zero) == list(one):
            return Verdict(
                "ok",
                f"{what}: pageNum=1 is the first page; pageNum=0 answers the same page",
                {"page_base": 1, "page_zero": "same"},
            )
        if set(zero).isdisjoint(one):
            return Verdict(
                "ok",
                f"{what}: pageNum=0 is the first page, pageNum=1 the second",
                {"page_base": 0},
            )
        return Verdict("warn", f"{what}: pages 0 and 1 overlap without being equal: unknown")
    if zero:  # page 0 has items, page 1 none
        if total <= size:
            return Verdict(
                "ok",
                f"{what}: pageNum=0 is the first page (all {total} on it, pageNum=1 empty)",
                {"page_base": 0},
            )
        return Verdict("warn", f"{what}: pageNum=1 empty although total is {total}: unknown")
    return Verdict(
        "ok",
        f"{what}: pageNum=1 is the first page; pageNum=0 answers an empty page",
        {"page_base": 1, "page_zero": "empty"},
    )


def decide_page_cap(count: int, total: int, asked: int, what: str) -> Verdict:
    """Whether the server honours pageSize=`asked`: a shorter page while more items exist is a
    cap. Fewer items than asked in all means nothing is capped below that number."""
    if count == 0 and total > 0:
        return Verdict("warn", f"{what}: first page empty although total is {total}: unknown")
    if count < asked and count < total:
        return Verdict(
            "ok",
            f"{what}: pageSize capped at {count} (asked {asked}, total {total})",
            {"page_size_cap": count},
        )
    if count >= asked:
        return Verdict(
            "ok", f"{what}: pageSize {asked} honoured ({count} items)", {"page_size_cap": None}
        )
    if total == 0:
        return Verdict("warn", f"{what}: undecidable: no items")
    return Verdict(
        "ok",
        f"{what}: no cap seen: all {total} items on one page (asked {asked})",
        {"page_size_cap": None},
    )


def missing_connection_fields(item: Mapping[str, Any], full: Mapping[str, Any]) -> list[str]:
    """What the GET object carries for connecting that the list item lacks."""
    missing = [key for key in (*CONNECTION_FIELDS, "network") if key in full and key not in item]
    full_ports, item_ports = full.get("portMappings"), item.get("portMappings")
    if isinstance(full_ports, list) and any(
        isinstance(m, dict) and "endpoint" in m for m in full_ports
    ):
        has_all = isinstance(item_ports, list) and all(
            isinstance(m, dict) and "endpoint" in m for m in item_ports
        )
        if not has_all or (not item_ports and full_ports):
            missing.append("portMappings[].endpoint")
    return missing


def decide_list_shape(item: Mapping[str, Any], full: Mapping[str, Any]) -> Verdict:
    missing = missing_connection_fields(item, full)
    others = sorted(key for key in full if key not in item and key not in missing)
    extra = f"; other fields only on GET: {', '.join(others)}" if others else ""
    if missing:
        return Verdict(
            "ok",
            f"list items are reduced: no {', '.join(missing)}{extra}",
            {"list_shape": "reduced"},
        )
    return Verdict("ok", f"list items equal GET objects{extra}", {"list_shape": "full"})


def decide_node_shape(full: Mapping[str, Any]) -> Verdict:
    node = full.get("node")
    if isinstance(node, list):
        return Verdict("ok", "GET node is an array [{maxRootfsSize}]", {"node_shape": "array"})
    if isinstance(node, dict):
        return Verdict("ok", "GET node is an object {maxRootfsSize}", {"node_shape": "object"})
    if node is None:
        return Verdict("warn", "GET has no node field")
    return Verdict("warn", f"GET node is a {type(node).__name__}: unknown shape")


def decide_default_billing(unfiltered: Sequence[Product], spot: Sequence[Product]) -> Verdict:
    """Compare /products without billingMethod to billingMethod=spot: spot-only products missing
    or spot prices lost without the filter mean the default is on-demand only."""
    spot_offers = [p for p in spot if p.spot_price]
    if not spot_offers:
        return Verdict("warn", "undecidable: billingMethod=spot lists no spot offer")
    plain = {p.id: p for p in unfiltered}
    missing = [p.id for p in spot_offers if p.id not in plain]
    repriced = [p.id for p in spot_offers if p.id in plain and not plain[p.id].spot_price]
    if missing or repriced:
        parts = []
        if missing:
            parts.append(f"{len(missing)} spot product(s) missing (e.g. {missing[0]})")
        if repriced:
            parts.append(f"{len(repriced)} without a spot price (e.g. {repriced[0]})")
        return Verdict(
            "ok",
            "without billingMethod only on-demand offers: " + ", ".join(parts),
            {"products_default_billing": "onDemand"},
        )
    return Verdict(
        "ok",
        f"without billingMethod every offer is listed ({len(spot_offers)} spot offers agree)",
        {"products_default_billing": "all"},
    )


def decide_product_ids(products: Sequence[Product]) -> Verdict:
    """A product whose `regions` name two or more clusters is one id spanning clusters (then
    availability is product-wide unless clusterId is sent). `regions: []` (everywhere) is
    ambiguous and does not count."""
    spanning = [p for p in products if len({region_code(r) for r in p.regions}) >= 2]
    everywhere = sum(1 for p in products if not p.regions)
    note = f"; {everywhere} offered everywhere (regions [])" if everywhere else ""
    if spanning:
        first = spanning[0]
        return Verdict(
            "ok",
            f"{len(spanning)} product id(s) span clusters (e.g. {first.id} in "
            f"{len(first.regions)} regions){note}",
            {"product_ids": "spanning"},
        )
    if not products:
        return Verdict("warn", "undecidable: no products")
    return Verdict(
        "ok",
        f"each product id names one cluster ({len(products)} ids){note}",
        {"product_ids": "per_cluster"},
    )


def offers_in(products: Sequence[Product], cluster: Cluster, billing_mode: str) -> list[Product]:
    """Deployable offers of `billing_mode` in `cluster`, cheapest first (the service's rules)."""
    found = [
        (price, p.id, p)
        for p in products
        if offered_in(p.regions, cluster)
        and is_deployable(p)
        and (price := unit_price(p, billing_mode)) is not None
    ]
    return [p for _, _, p in sorted(found, key=lambda item: (item[0], item[1]))]


def describe_offers(offers: Sequence[Product], billing_mode: str, region: str) -> str:
    if not offers:
        return f"no deployable {billing_mode} offer in {region}"
    cheapest = offers[0]
    price = unit_price(cheapest, billing_mode)
    return (
        f"{len(offers)} deployable {billing_mode} offer(s) in {region}; cheapest "
        f"{cheapest.name or cheapest.id} ({cheapest.id}) at ${price:.2f}/GPU-hour"
    )
