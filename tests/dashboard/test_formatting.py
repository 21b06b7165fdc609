"""How the dashboard shows values (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from novita_manager.dashboard.formatting import (
    actions,
    age,
    duration,
    money,
    parse_time,
    status_class,
    timestamp,
    until,
    web_url,
)

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h 00m"),
        (3 * 3600 + 300, "3h 05m"),
        (86400 * 2 + 3600 * 4, "2d 04h"),
        (-5, "0s"),
    ],
)
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_age_and_until_read_the_views_timestamps():
    assert age("2026-01-02T11:58:30Z", NOW) == "1m"
    assert age("2026-01-02T11:58:30.123456+00:00", NOW) == "1m"
    assert until("2026-01-02T12:05:00Z", NOW) == "in 5m"
    assert until("2026-01-02T11:55:00Z", NOW) == "5m ago"
    for missing in (None, "", "not a time", 42):
        assert age(missing, NOW) == "-"
        assert until(missing, NOW) == "-"


def test_a_naive_timestamp_is_read_as_utc():
    assert parse_time("2026-01-02T12:00:00") == NOW
    assert timestamp("2026-01-02T12:00:00Z") == "2026-01-02 12:00:00 UTC"
    assert timestamp(None) == "-"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "$0.00"),
        (0.1, "$0.10"),
        (0.175, "$0.175"),
        (0.0042, "$0.0042"),
        (0.00004, "<$0.0001"),
        (1.5, "$1.50"),
        (1234.5, "$1,234.50"),
        (-0.25, "-$0.25"),
        (None, "-"),
        (True, "-"),
        ("0.5", "-"),
    ],
)
def test_money(value, text):
    assert money(value) == text


def test_money_per_hour():
    assert money(0.35, per_hour=True) == "$0.35/h"
    assert money(None, per_hour=True) == "-"


def test_only_http_urls_become_links():
    assert web_url("https://x.example/lab") == "https://x.example/lab"
    assert web_url("HTTP://x.example/") == "HTTP://x.example/"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil.example", "", None):
        assert web_url(bad) == "#"


def test_status_classes_and_actions():
    assert status_class("running") == "ok"
    assert status_class("starting") == "moving"
    assert status_class("failed") == "bad"
    assert status_class("something new") == "idle"
    assert actions("running") == ("stop", "delete")
    assert actions("stopped") == ("start", "delete")
    assert actions("deleted") == ()
