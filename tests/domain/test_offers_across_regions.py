"""Offers across the allowed regions under a price cap (domain/offers.plan_offers) and the
allowed clusters of a request (domain/regions.allowed_clusters)."""

from __future__ import annotations

import pytest

from novita_manager.domain.offers import NoOffer, Offer, PriceCap, plan_offers
from novita_manager.domain.regions import UnknownRegion, allowed_clusters
from novita_manager.novita.models import Cluster

HK = Cluster.model_validate({"id": "cn-hongkong-1", "name": "CN-HK-01"})
SG = Cluster.model_validate({"id": "as-sgp-2", "name": "AS-SGP-02"})
US = Cluster.model_validate({"id": "us-ca-6", "name": "US-CA-06"})


def offer(pid: str, cluster: str, price: float, mode: str = "spot") -> Offer:
    return Offer(pid, "RTX 4090 24GB", cluster, price, mode)


def plan(primary, fallback=(), **cap) -> list[str]:
    offers = plan_offers(
        primary, fallback, gpu_num=2, cap=PriceCap(**cap), product_name="RTX 4090 24GB"
    )
    return [f"{o.product_id}@{o.cluster_id}:{o.billing_mode}" for o in offers]


def test_region_order_comes_first_then_price_within_a_region() -> None:
    primary = [[offer("a", "hk", 0.3), offer("b", "hk", 0.4)], [offer("c", "sg", 0.1)]]
    assert plan(primary) == ["a@hk:spot", "b@hk:spot", "c@sg:spot"]


def test_any_orders_every_cluster_by_price() -> None:
    primary = [[offer("a", "hk", 0.3)], [offer("c", "sg", 0.1)], NoOffer("no_offer_in_region", "x")]
    assert plan(primary, any_region=True) == ["c@sg:spot", "a@hk:spot"]


def test_the_cap_is_on_the_whole_instance() -> None:
    primary = [[offer("a", "hk", 0.2), offer("b", "hk", 0.3)]]
    assert plan(primary, max_price_per_hour=0.4) == ["a@hk:spot"]  # 2 GPUs: 0.4 and 0.6
    with pytest.raises(NoOffer) as refused:
        plan(primary, max_price_per_hour=0.3)
    assert refused.value.kind == "over_price_cap"
    assert "maxPricePerHour $0.3/h" in refused.value.message
    assert "$0.4/h" in refused.value.message


def test_on_demand_is_paid_only_after_every_spot_offer_under_the_cap() -> None:
    primary = [[offer("a", "hk", 0.5)], [offer("c", "sg", 0.15)]]
    fallback = [[offer("d", "hk", 0.18, "onDemand")], [offer("e", "sg", 0.3, "onDemand")]]
    assert plan(primary, fallback, max_price_per_hour=0.4) == ["c@sg:spot", "d@hk:onDemand"]
    assert plan([[offer("a", "hk", 0.5)]], fallback, max_price_per_hour=0.4) == ["d@hk:onDemand"]


def test_without_offers_the_most_telling_reason_is_raised() -> None:
    with pytest.raises(NoOffer) as refused:
        plan([NoOffer("no_offer_in_region", "none here"), NoOffer("rootfs_out_of_range", "r")])
    assert refused.value.kind == "rootfs_out_of_range"


def test_allowed_clusters_keep_the_users_order_without_repeats() -> None:
    clusters = [HK, SG, US]
    assert [c.id for c in allowed_clusters("AS-SGP-02", None, clusters)] == ["as-sgp-2"]
    ordered = allowed_clusters("CN-HK-01", ["us-ca-6", "CN-HK-01", "as-sgp-2"], clusters)
    assert [c.id for c in ordered] == ["cn-hongkong-1", "us-ca-6", "as-sgp-2"]
    every = allowed_clusters("AS-SGP-02", ["any"], clusters)
    assert [c.id for c in every] == ["as-sgp-2", "cn-hongkong-1", "us-ca-6"]
    with pytest.raises(UnknownRegion):
        allowed_clusters("CN-HK-01", ["XX-01"], clusters)
