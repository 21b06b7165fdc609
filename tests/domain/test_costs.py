"""Cost arithmetic without I/O: billed edges, the open period carried through observations,
restarts, price changes, deletes, and the fleet summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from novita_manager.domain.costs import (
    BILLED_SINCE,
    Billed,
    GroupBy,
    Period,
    billing_edge,
    billing_rate,
    carry_billing,
    cost_reached_at,
    cost_to_date,
    edge_time,
    open_period,
    summarize,
)

T0 = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_rate_is_the_price_plus_the_container_disk_beyond_60_gb() -> None:
    assert billing_rate(0.35, 60) == 0.35
    assert billing_rate(0.35, 10) == 0.35
    assert billing_rate(0.35, 100) == pytest.approx(0.35 + 40 * 0.005 / 24)
    assert billing_rate(None, 84) == pytest.approx(24 * 0.005 / 24)


def test_an_edge_is_placed_halfway_between_the_last_and_first_sighting() -> None:
    assert edge_time(at(0), at(2)) == at(1)
    assert edge_time(None, at(2)) == at(2)
    assert edge_time(at(3), at(2)) == at(2)  # a lower bound after the sighting: the sighting
    opening = billing_edge("pulling", open_since=None, lower=at(0), seen_at=at(4))
    assert opening is not None
    assert opening.opens == at(2)
    assert billing_edge("running", open_since=at(1), lower=at(0), seen_at=at(4)) is None
    assert billing_edge("starting", open_since=None, lower=at(0), seen_at=at(4)) is None
    closing = billing_edge("exited", open_since=at(1), lower=at(10), seen_at=at(12))
    assert closing is not None
    assert closing.closes == at(11)
    # Never before the period began.
    early = billing_edge("removed", open_since=at(5), lower=at(0), seen_at=at(6))
    assert early is not None
    assert early.closes == at(5)


def observe(previous: dict | None, status: str, lower: float, seen: float, rate: float = 1.0):
    return carry_billing(previous, {"status": status}, lower=at(lower), seen_at=at(seen), rate=rate)


def test_a_life_of_stops_restarts_a_price_change_and_a_delete() -> None:
    """Created, running 1 h at $1/h, stopped 1 h, started at $2/h for 30 min, deleted."""
    periods: list[Period] = []
    obs, closed = observe(None, "creating", 0, 0)
    assert closed is None
    assert BILLED_SINCE not in obs
    obs, _ = observe(obs, "pulling", 0, 10)  # opens at 5 s
    obs, _ = observe(obs, "running", 10, 20)
    assert open_period(obs) == (at(5), 1.0)
    obs, closed = observe(obs, "exited", 3600, 3610)  # closes at 3605 s
    assert closed is not None
    periods.append(closed)
    assert open_period(obs) == (None, None)
    obs, closed = observe(obs, "exited", 3610, 7000)
    assert closed is None  # stopped: nothing billed
    obs, _ = observe(obs, "running", 7205, 7205, rate=2.0)  # started at the new price
    obs, _ = observe(obs, "running", 7205, 8000, rate=3.0)  # a later price: not this period
    assert open_period(obs) == (at(7205), 2.0)
    obs, closed = observe({**obs}, "removed", 9005, 9005)
    assert closed is not None
    periods.append(closed)
    assert [(p.seconds(at(0)), p.rate) for p in periods] == [(3600.0, 1.0), (1800.0, 2.0)]
    cost = sum(p.cost(at(0)) for p in periods)
    assert cost == pytest.approx(1.0 + 1.0)


def test_a_delete_ends_billing_when_it_was_accepted() -> None:
    edge = billing_edge(
        "removing", open_since=at(0), lower=at(10), seen_at=at(14), removal_accepted_at=at(10)
    )
    assert edge is not None
    assert edge.closes == at(10)  # not halfway: a removal is not billed
    stopped = billing_edge(
        "exited", open_since=at(0), lower=at(10), seen_at=at(14), removal_accepted_at=at(10)
    )
    assert stopped is not None
    assert stopped.closes == at(12)  # a stop bills until exited: halfway


def test_gone_closes_the_period() -> None:
    obs, _ = observe(None, "running", 0, 0)
    _, closed = carry_billing(
        obs, {"status": "removed", "gone": True}, lower=at(10), seen_at=at(10), rate=1.0
    )
    assert closed == Period(at(0), at(10), 1.0)


def test_cost_to_date_adds_the_open_period_up_to_now() -> None:
    assert cost_to_date(1.0, 3600, None, None, at(99)) == (1.0, 3600.0)
    assert cost_to_date(1.0, 3600, at(0), 2.0, at(1800)) == (2.0, 5400.0)


def test_when_a_budget_is_reached() -> None:
    assert cost_reached_at(3.0, 1.0, at(0), 2.0) == at(3600)
    assert cost_reached_at(0.5, 1.0, at(0), 2.0) == at(0)  # already spent: at once
    assert cost_reached_at(3.0, 1.0, None, None) is None  # not billed now: never


def test_summaries_by_day_instance_product_and_region_clip_to_the_window() -> None:
    billed = [
        # 23:00 to 01:00 across midnight at $1/h
        Billed("a", "one", "RTX 4090 24GB", "CN-HK-01", Period(at(0), at(7200), 1.0)),
        # open since 00:30 at $2/h (runs until the window's end)
        Billed("b", "two", "A100 80GB", "US-CA-06", Period(at(5400), None, 2.0)),
    ]
    end = at(9000)  # 01:30
    days = summarize(billed, start=None, end=end, group_by=GroupBy.DAY)
    assert [(g.key, round(g.cost, 6)) for g in days] == [
        ("2026-12-01", 1.0),
        ("2026-12-02", 1.0 + 2.0),
    ]
    by_instance = summarize(billed, start=None, end=end, group_by=GroupBy.INSTANCE)
    assert [(g.key, round(g.cost, 6)) for g in by_instance] == [
        ("a", 2.0),
        ("b", 2.0),
    ]  # a tie: by key
    window = summarize(billed, start=at(3600), end=at(5400), group_by=GroupBy.REGION)
    assert [(g.key, g.billed_seconds, g.cost) for g in window] == [("CN-HK-01", 1800.0, 0.5)]
    products = summarize(billed, start=None, end=end, group_by=GroupBy.PRODUCT)
    assert {g.key for g in products} == {"RTX 4090 24GB", "A100 80GB"}
