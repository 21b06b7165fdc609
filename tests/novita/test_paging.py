"""Paging GET /gpu/instances under every reading of novita-api.md §12 (#1 page base, #7 page-size
cap), against an exact fake server (a scripted transport): the readings are combined here more
finely than the simulator's profiles do.

The old client started at pageNum=1 and advanced by the page size it asked for; each test says
which reading broke it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import Any, cast

import pytest

from novita_manager.http_client import Request, Response
from novita_manager.novita import NovitaClient
from novita_manager.novita import listing as listing_module
from novita_manager.novita.listed import ListedInstance, ListedPage
from novita_manager.novita.listing import ListingProgress

from .test_client_unit import Recorder, make_client


def paging_server(
    total: int,
    *,
    base: int = 1,
    zero: str = "same",
    cap: int | None = None,
    offset_by_requested: bool = False,
    ignore_paging: bool = False,
    report_total: bool = True,
) -> Any:
    """A listing of `total` instances `i0..`, newest first, playing one reading of each point."""

    def handle(request: Request) -> Response:
        asked = int(request.url.query["pageSize"])
        num = int(request.url.query["pageNum"])
        if base == 1 and num == 0:
            if zero == "refused":
                return Response(400, json={"reason": "INVALID_PARAMS", "message": "pageNum"})
            num = 1
        index = 0 if ignore_paging else num - base
        size = min(asked, cap) if cap else asked
        start = index * (asked if offset_by_requested else size)
        ids = range(start, min(start + size, total))
        body: dict[str, Any] = {"instances": [{"id": f"i{n}"} for n in ids]}
        if report_total:
            body["total"] = total
        return Response(200, json=body)

    return handle


async def listing(recorder: Recorder, page_size: int = 10, **kwargs: Any) -> Any:
    client: NovitaClient
    async with make_client(recorder) as client:
        return await client.list_all_instances(page_size=page_size, **kwargs)


READINGS = [
    pytest.param({"base": 0}, id="base0"),
    pytest.param({"base": 1, "zero": "same"}, id="base1-zero-same"),
    pytest.param({"base": 1, "zero": "refused"}, id="base1-zero-refused"),
    pytest.param({"base": 0, "cap": 4}, id="base0-cap4"),
    pytest.param({"base": 1, "zero": "same", "cap": 4}, id="base1-same-cap4"),
    pytest.param({"base": 1, "zero": "refused", "cap": 4}, id="base1-refused-cap4"),
    pytest.param({"base": 0, "cap": 4, "offset_by_requested": True}, id="base0-cap4-offset"),
]


@pytest.mark.parametrize("reading", READINGS)
@pytest.mark.parametrize("total", [0, 3, 10, 25, 30])
async def test_every_instance_exactly_once_and_complete(
    reading: dict[str, Any], total: int
) -> None:
    """Under base 0 the old client (from pageNum=1) skipped the first page: an account with at
    most one page listed as empty, so a create with an unknown outcome was sent again. Under a
    cap of 4 it advanced by 10 per page and skipped 6 of every 10."""
    recorder = Recorder(paging_server(total, **reading))
    result = await listing(recorder)
    assert [i.id for i in result.instances] == [f"i{n}" for n in range(total)]
    assert result.complete
    nums = [int(r.url.query["pageNum"]) for r in recorder.requests]
    assert nums[0] == 0  # the first page is never skipped, whichever base applies
    assert len(recorder.requests) <= total // 4 + 4


async def test_a_listing_of_one_page_costs_one_call_under_base_0() -> None:
    recorder = Recorder(paging_server(7, base=0))
    result = await listing(recorder)
    assert result.complete
    assert len(result.instances) == 7
    assert len(recorder.requests) == 1


async def test_a_cap_continues_with_the_size_actually_returned() -> None:
    """Reading page_size_cap=20 with 100 asked: the old client asked for the next 100."""
    recorder = Recorder(paging_server(45, base=0, cap=20))
    result = await listing(recorder, page_size=100)
    assert len(result.instances) == 45
    assert result.complete
    sizes = [int(r.url.query["pageSize"]) for r in recorder.requests]
    assert sizes == [100, 20, 20]
    assert result.progress.capped_page_size == 20


async def test_zero_answering_like_one_is_detected_and_skipped() -> None:
    recorder = Recorder(paging_server(25, base=1, zero="same"))
    result = await listing(recorder)
    assert result.complete
    assert len(result.instances) == 25
    assert result.progress.zero_is_one
    assert [int(r.url.query["pageNum"]) for r in recorder.requests] == [0, 1, 2, 3]


async def test_zero_refused_restarts_at_one() -> None:
    recorder = Recorder(paging_server(25, base=1, zero="refused"))
    result = await listing(recorder)
    assert result.complete
    assert len(result.instances) == 25
    assert result.progress.first_page_num == 1
    assert [int(r.url.query["pageNum"]) for r in recorder.requests] == [0, 1, 2, 3]


async def test_a_server_that_ignores_paging_gives_an_incomplete_listing() -> None:
    """The old client returned the first page as if it were everything (no completeness)."""
    recorder = Recorder(paging_server(25, ignore_paging=True))
    result = await listing(recorder)
    assert [i.id for i in result.instances] == [f"i{n}" for n in range(10)]
    assert not result.complete
    assert len(recorder.requests) <= 3


async def test_a_listing_that_never_ends_is_bounded_and_incomplete(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def endless(request: Request) -> Response:
        num = int(request.url.query["pageNum"])
        ids = [{"id": f"p{num}-{n}"} for n in range(10)]
        return Response(200, json={"instances": ids, "total": 10**9})

    monkeypatch.setattr(listing_module, "MAX_LISTING_PAGES", 5)
    recorder = Recorder(endless)
    result = await listing(recorder)
    assert not result.complete
    assert len(recorder.requests) == 5


async def test_without_total_only_an_empty_or_short_page_proves_the_end() -> None:
    recorder = Recorder(paging_server(20, base=0, report_total=False))
    result = await listing(recorder)
    assert len(result.instances) == 20
    assert result.complete
    assert len(recorder.requests) == 3  # 10, 10, then an empty page


async def test_list_instance_pages_yields_each_id_once() -> None:
    recorder = Recorder(paging_server(25, base=1, zero="same"))
    async with make_client(recorder) as client:
        pages = client.list_instance_pages(page_size=10)
        ids = [i.id async for page in pages for i in page.instances]
    assert ids == [f"i{n}" for n in range(25)]


class SlowPages:
    """An async page source for the walk itself: records each page asked for and how many
    were in flight at once (a round trip of 10 ms each)."""

    def __init__(self, total: int, *, base: int = 0, size: int = 10) -> None:
        self.total, self.base, self.size = total, base, size
        self.asked: list[int] = []
        self.in_flight = self.most_in_flight = 0

    async def __call__(self, query: Mapping[str, str | int]) -> ListedPage:
        num = int(query["pageNum"])
        self.asked.append(num)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
        finally:
            self.in_flight -= 1
        index = max(num, 1) - 1 if self.base == 1 else num
        start = index * self.size
        ids = range(start, min(start + self.size, self.total))
        items = [ListedInstance(id=f"i{n}", status="running", marker=None) for n in ids]
        return ListedPage(instances=items, total=self.total)


async def walk(pages: SlowPages, progress: ListingProgress) -> list[str]:
    walked = listing_module.walk_instance_pages(
        pages, name=None, status=None, product_name=None, page_size=10, progress=progress
    )
    return [item.id async for page in walked for item in page.instances]


@pytest.mark.parametrize(("base", "total"), [(0, 95), (0, 100), (1, 95), (1, 100), (0, 15)])
async def test_pages_are_asked_ahead_in_order_and_never_past_the_last(
    base: int, total: int
) -> None:
    """Once two pages showed the base and the size, the next pages are asked for before their
    turn (a large account's listing waits one round trip per PAGES_AHEAD pages), yet exactly
    the pages a walk in turn would ask for are asked, and the result is the same."""
    pages, progress = SlowPages(total, base=base), ListingProgress()
    ids = await walk(pages, progress)
    assert ids == [f"i{n}" for n in range(total)]
    assert progress.complete
    last = -(-total // 10) - 1 + base
    assert sorted(pages.asked) == list(range(last + 1))
    if last >= 3:
        assert pages.most_in_flight == listing_module.PAGES_AHEAD


async def test_pages_asked_ahead_are_cancelled_when_the_walk_stops_early() -> None:
    pages = SlowPages(1000)
    walked = cast(
        AsyncGenerator[ListedPage, None],
        listing_module.walk_instance_pages(
            pages, name=None, status=None, product_name=None, page_size=10
        ),
    )
    seen = 0
    async for _ in walked:
        seen += 1
        if seen == 3:
            break
    await walked.aclose()
    await asyncio.sleep(0.02)
    assert pages.in_flight == 0
    assert len(pages.asked) <= 3 + listing_module.PAGES_AHEAD
