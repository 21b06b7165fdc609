"""`stale` as every replica computes it (the sync runs on one replica only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from novita_manager.domain.payloads import iso
from novita_manager.services.runtime import Runtime

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def fake_runtime(circuit: str = "closed", sync_failures: int = 0) -> Any:
    return SimpleNamespace(
        client=SimpleNamespace(breaker=SimpleNamespace(state=circuit)),
        status_sync=SimpleNamespace(
            health=SimpleNamespace(consecutive_failures=sync_failures),
            resync_write_interval=60.0,
        ),
        settings=SimpleNamespace(instance_poll_interval=1.0),
        upstream_stale=lambda: circuit == "open" or sync_failures > 0,
    )


def row(
    synced_ago: float | None, novita_id: str | None = "abc", status: str = "running"
) -> dict[str, Any]:
    return {
        "id": "x",
        "status": status,
        "novita_instance_id": novita_id,
        "created_at": NOW - timedelta(hours=1),
        "last_synced_at": None if synced_ago is None else NOW - timedelta(seconds=synced_ago),
    }


def is_stale(runtime: Any, columns: dict[str, Any]) -> bool:
    return Runtime.staleness(runtime, NOW)(columns)


def test_timestamps_given_as_iso_text_count_the_same() -> None:
    """The SQLite read path hands timestamps over as the API's ISO-8601 text."""
    as_text = {**row(64), "last_synced_at": iso(NOW - timedelta(seconds=64))}
    assert is_stale(fake_runtime(), as_text)
    as_text = {**row(10), "last_synced_at": iso(NOW - timedelta(seconds=10))}
    assert not is_stale(fake_runtime(), as_text)


def test_fresh_row_is_not_stale() -> None:
    assert not is_stale(fake_runtime(), row(10))


def test_unreachable_novita_makes_every_row_stale() -> None:
    assert is_stale(fake_runtime(circuit="open"), row(1))
    assert is_stale(fake_runtime(sync_failures=2), row(1))


def test_a_row_not_confirmed_for_too_long_is_stale_on_any_replica() -> None:
    assert is_stale(fake_runtime(), row(64))  # 60 s rewrite interval + 3 poll intervals
    assert not is_stale(fake_runtime(), row(62))
    assert is_stale(fake_runtime(), row(None))  # never confirmed, created an hour ago


def test_rows_with_nothing_upstream_are_never_stale_by_age() -> None:
    assert not is_stale(fake_runtime(), row(None, novita_id=None, status="creating"))
    assert not is_stale(fake_runtime(), row(None, status="deleted"))
