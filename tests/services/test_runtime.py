"""`stale` as every replica computes it (the sync runs on one replica only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from novita_manager.services.runtime import Runtime
from novita_manager.store.models import Instance

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


def row(synced_ago: float | None, novita_id: str | None = "abc", status: str = "running"):
    return Instance(
        id="x",
        status=status,
        novita_instance_id=novita_id,
        created_at=NOW - timedelta(hours=1),
        last_synced_at=None if synced_ago is None else NOW - timedelta(seconds=synced_ago),
    )


def is_stale(runtime: Any, instance: Instance) -> bool:
    return Runtime.is_stale(runtime, instance, NOW)


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
