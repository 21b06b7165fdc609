from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novita_manager.domain.offers import NoOffer, select_offer
from novita_manager.novita.models import Cluster, Product

HK = Cluster.model_validate({"id": "cn-hongkong-1", "name": "CN-HK-01"})
SG = Cluster.model_validate({"id": "as-sgp-2", "name": "AS-SGP-02"})


def product(**fields: Any) -> Product:
    raw: dict[str, Any] = {
        "id": "4090.a",
        "name": "RTX 4090 24GB",
        "availableDeploy": True,
        "minRootFS": 10,
        "maxRootFS": 1000,
        "regions": ["CN-HK-01 (Hong Kong)"],
        "price": "35000",
        "spotPrice": "17500",
        "billingMethods": ["onDemand", "spot"],
        "inventoryState": "normal",
    }
    raw.update(fields)
    return Product.model_validate(raw)


def pick(products: list[Product], **kwargs: Any):
    options: dict[str, Any] = {
        "product_name": "RTX 4090 24GB",
        "cluster": HK,
        "billing_mode": "spot",
        "rootfs_size": 60,
    }
    options.update(kwargs)
    return select_offer(products, **options)


def test_cheapest_spot_wins_with_prices_as_strings_or_ints() -> None:
    offer = pick(
        [
            product(id="a", spotPrice="20000"),
            product(id="b", spotPrice=15000),
            product(id="c", spotPrice="18000", price=1),
        ]
    )
    assert offer.product_id == "b"
    assert offer.price_per_gpu_hour == pytest.approx(0.15)
    assert offer.cluster_id == "cn-hongkong-1"


def test_on_demand_uses_price() -> None:
    offer = pick(
        [product(id="a", price="30000", spotPrice="1000"), product(id="b", price=25000)],
        billing_mode="onDemand",
    )
    assert offer.product_id == "b"
    assert offer.price_per_gpu_hour == pytest.approx(0.25)


@pytest.mark.parametrize("spot", [None, "", "0", 0])
def test_missing_or_zero_spot_price_means_no_spot(spot: Any) -> None:
    fields: dict[str, Any] = {"id": "nospot"}
    if spot is None:
        fields["spotPrice"] = None
    else:
        fields["spotPrice"] = spot
    with pytest.raises(NoOffer) as caught:
        pick([product(**fields)])
    assert caught.value.kind == "no_offer_in_region"
    assert pick([product(**fields)], billing_mode="onDemand").product_id == "nospot"


def test_spot_not_in_billing_methods_is_skipped() -> None:
    offer = pick(
        [
            product(id="a", spotPrice="100", billingMethods=["onDemand"]),
            product(id="b", spotPrice="20000"),
        ]
    )
    assert offer.product_id == "b"


@pytest.mark.parametrize(
    "regions", [["CN-HK-01 (Hong Kong)"], ["CN-HK-01"], ["cn-hongkong-1"], ["cn-hk-01"], []]
)
def test_labelled_bare_id_and_empty_regions_match(regions: list[str]) -> None:
    assert pick([product(regions=regions)]).product_id == "4090.a"


def test_other_regions_do_not_match() -> None:
    with pytest.raises(NoOffer) as caught:
        pick([product(regions=["AS-SGP-02 (Singapore)"])])
    assert caught.value.kind == "no_offer_in_region"
    assert "CN-HK-01" in caught.value.message


def test_several_clusters_choose_the_region_asked_for() -> None:
    products = [
        product(id="hk", regions=["CN-HK-01 (Hong Kong)"], spotPrice="20000"),
        product(id="sg", regions=["AS-SGP-02 (Singapore)"], spotPrice="10000"),
    ]
    assert pick(products).product_id == "hk"
    offer = pick(products, cluster=SG)
    assert offer.product_id == "sg"
    assert offer.cluster_id == "as-sgp-2"


def test_not_deployable_and_no_inventory_are_skipped() -> None:
    products = [
        product(id="a", spotPrice="1000", availableDeploy=False),
        product(id="b", spotPrice="2000", inventoryState="none"),
        product(id="c", spotPrice="30000", inventoryState="low"),
    ]
    assert pick(products).product_id == "c"
    with pytest.raises(NoOffer):
        pick(products[:2])


def test_unknown_product_is_its_own_reason() -> None:
    with pytest.raises(NoOffer) as caught:
        pick([product()], product_name="Voodoo 2")
    assert caught.value.kind == "unknown_product"


def test_name_match_is_exact_first_then_contains() -> None:
    products = [
        product(id="a", name="RTX 4090 24GB", spotPrice="20000"),
        product(id="b", name="RTX 4090 24GB PCIe", spotPrice="10000"),
    ]
    assert pick(products, product_name="rtx  4090 24gb").product_id == "a"
    assert pick(products, product_name="4090 24GB PCIe").product_id == "b"


def test_rootfs_out_of_range_says_the_range() -> None:
    with pytest.raises(NoOffer) as caught:
        pick([product(maxRootFS=500)], rootfs_size=900)
    assert caught.value.kind == "rootfs_out_of_range"
    assert "10..500" in caught.value.message


def test_ties_prefer_inventory_then_id() -> None:
    products = [
        product(id="z", inventoryState="high"),
        product(id="b", inventoryState="low"),
        product(id="a", inventoryState="normal"),
    ]
    assert pick(products).product_id == "z"
    assert pick([product(id="y"), product(id="x")]).product_id == "x"


@given(
    st.lists(
        st.tuples(st.integers(1, 10**6), st.booleans(), st.sampled_from(["a", "b", "c"])),
        min_size=1,
        max_size=12,
    )
)
def test_choice_is_the_minimum_and_independent_of_order(rows) -> None:
    products = [
        product(id=f"p{index}", spotPrice=str(price) if as_str else price, inventoryState="normal")
        for index, (price, as_str, _) in enumerate(rows)
    ]
    offer = pick(products)
    assert offer.price_per_gpu_hour == pytest.approx(min(price for price, _, _ in rows) / 100000)
    assert pick(list(reversed(products))).product_id == offer.product_id
