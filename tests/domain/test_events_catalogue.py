"""Pure parts of the events and the catalogue: the SSE wire form (and the SDK's reading of it),
Last-Event-ID, and offers built from products."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from novita_manager.domain.catalogue import closest_names, cluster_offers, ranked
from novita_manager.domain.events import (
    EventRecord,
    parse_last_event_id,
    sse_comment,
    sse_frame,
    sse_position,
    sse_preamble,
    status_body,
)
from novita_manager.sdk.events import SseParser

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


def read_all(wire: bytes) -> tuple[list[tuple[int, str, dict[str, Any]]], int | None]:
    parser = SseParser()
    events = []
    for line in wire.decode().split("\n"):
        event = parser.feed(line)
        if event is not None:
            events.append((event.id, event.type, event.body))
    return events, parser.position


@given(
    st.integers(min_value=1, max_value=2**62),
    st.text(min_size=1, max_size=30),
    st.dictionaries(st.text(), json_values, max_size=4),
)
def test_any_event_survives_the_wire(event_id: int, kind: str, data: dict[str, object]) -> None:
    """Whatever the body (newlines, unicode), the SDK reads back exactly what was framed."""
    body = {"type": kind, "timestamp": "2026-01-01T00:00:00Z", "data": data}
    record = EventRecord(id=event_id, instance_id="i", type=kind, body=body)
    wire = sse_preamble() + sse_position(7) + sse_frame(record) + sse_comment("heart\nbeat")
    events, position = read_all(wire)
    one_line_kind = kind.replace("\r", " ").replace("\n", " ")
    assert events == [(event_id, one_line_kind, body)]
    assert position == event_id


def test_status_body_is_shaped_like_a_webhook() -> None:
    body = status_body(
        instance_id="abc",
        name="train",
        at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        from_status=None,
        to_status="creating",
        novita_status=None,
        reason="accepted",
    )
    assert body == {
        "type": "instance.status",
        "timestamp": "2026-01-01T12:00:00Z",
        "data": {
            "instanceId": "abc",
            "name": "train",
            "fromStatus": None,
            "status": "creating",
            "novitaStatus": None,
            "reason": "accepted",
        },
    }


def test_last_event_id() -> None:
    assert parse_last_event_id("42") == 42
    assert parse_last_event_id(" 0 ") == 0
    for value in (None, "", "-1", "4.2", "abc", "9" * 19):
        assert parse_last_event_id(value) is None


@dataclass
class FakeProduct:
    id: str
    name: str | None
    price: float | None = 0.5
    spot: float | None = 0.2
    available_deploy: bool = True
    regions: list[str] = field(default_factory=list)
    billing_methods: list[str] = field(default_factory=list)
    inventory_state: str | None = "normal"
    min_rootfs: int | None = 10
    max_rootfs: int | None = 100

    @property
    def price_usd(self) -> float | None:
        return self.price

    @property
    def spot_price_usd(self) -> float | None:
        return self.spot


@dataclass
class FakeCluster:
    id: str
    name: str | None


def test_offers_are_the_deployable_products_priced_for_the_whole_instance() -> None:
    hk = FakeCluster("cn-hongkong-1", "CN-HK-01")
    products = [
        FakeProduct("a", "RTX 4090 24GB", spot=0.3, inventory_state="high"),
        FakeProduct("b", "RTX 4090 24GB", spot=0.25, inventory_state="low"),
        FakeProduct("c", "RTX 4090 24GB", available_deploy=False),
        FakeProduct("d", "RTX 4090 24GB", inventory_state="none"),
        FakeProduct("e", "H100 80GB", spot=None),
    ]
    spot = cluster_offers(
        products, hk, billing_mode="spot", gpu_num=2, product_name="rtx 4090 24gb"
    )
    assert [(o.productId, o.pricePerHour, o.availability) for o in ranked(spot)] == [
        ("b", 0.5, "low"),
        ("a", 0.6, "high"),
    ]
    assert {(o.region, o.clusterId, o.gpuNum) for o in spot} == {("CN-HK-01", "cn-hongkong-1", 2)}
    on_demand = cluster_offers(products, hk, billing_mode="onDemand", gpu_num=1, product_name=None)
    assert {o.productId for o in on_demand} == {"a", "b", "e"}
    assert ranked(on_demand)[0].pricePerHour == 0.5


def test_closest_names() -> None:
    names = ["RTX 4090 24GB", "RTX 3090 24GB", "H100 80GB", "L40S 48GB"]
    assert closest_names("rtx 4909 24gb", names)[0] == "RTX 4090 24GB"
    assert closest_names("zzzzzz", names) == []
