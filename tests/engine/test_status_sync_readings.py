"""Which rows the status sync looks up one by one after a listing (novita-api.md §12 #1, #7).

Under page_base=0 the old sync listed from pageNum=1: on an account of one page it saw none of
its instances and sent one GET per instance every interval (and a 404 would have marked a row
gone). Absence from a listing that is not proved complete now proves nothing.
"""

from __future__ import annotations

from types import SimpleNamespace

from novita_manager.engine.status_sync import INCOMPLETE_FALLBACK_GETS, fallback_ids


def rows(count: int, *, busy: bool = False) -> list[SimpleNamespace]:
    operation = "start" if busy else None
    return [
        SimpleNamespace(novita_instance_id=f"{'b' if busy else 'r'}{n}", operation=operation)
        for n in range(count)
    ]


def test_a_complete_listing_looks_up_every_row_it_did_not_show() -> None:
    managed = rows(3)
    assert fallback_ids(managed, {"r0"}, complete=True) == ["r1", "r2"]


def test_an_incomplete_listing_looks_up_only_a_few_busy_rows() -> None:
    managed = rows(50) + rows(30, busy=True)
    chosen = fallback_ids(managed, set(), complete=False)
    assert len(chosen) == INCOMPLETE_FALLBACK_GETS
    assert all(novita_id.startswith("b") for novita_id in chosen)
    assert fallback_ids(rows(50), set(), complete=False) == []
