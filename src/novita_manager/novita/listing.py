"""Walking GET /gpu/instances page by page, correctly under every paging reading.

Novita's paging is one of the points its documentation leaves open (readings `page_base`,
`page_zero`, `page_size_cap` in `readings.py`), and the status sync may only conclude that an
instance is gone from a listing that provably saw everything. That logic is the hardest part of
the client and has nothing to do with sending requests, so it lives here as a walk over a `fetch`
function (one page for given query parameters); `NovitaClient` supplies its request loop.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from novita_manager.novita.errors import NovitaBadRequest
from novita_manager.novita.listed import ListedPage
from novita_manager.novita.models import Instance, InstancePage
from novita_manager.novita.parsing import Params, params

MAX_LISTING_PAGES = 2000  # 40,000 instances at a cap of 20 per page
# Pages asked for ahead of their turn once the base and size are known and pages bring news:
# the status sync's listing of a large account waits for one round trip in PAGES_AHEAD.
PAGES_AHEAD = 4

# The pages walked: the model's (`InstancePage`) or the status sync's cheap reading (`ListedPage`).
PageT = TypeVar("PageT", InstancePage, ListedPage)
FetchPage = Callable[[Params], Awaitable[PageT]]


@dataclass
class ListingProgress:
    """What one walk over GET /gpu/instances learnt (filled while it runs)."""

    pages: int = 0  # pages received
    distinct: int = 0  # distinct instance ids seen
    total: int = 0  # `total` of the last page
    total_reported: bool = True
    ended: bool = False  # an empty or short page proved the end
    first_page_num: int = 0  # 1 when pageNum=0 was refused
    zero_is_one: bool = False  # pageNum=0 answered like pageNum=1
    capped_page_size: int | None = None  # the size the server actually gave, when capped

    @property
    def complete(self) -> bool:
        """Provably every match: `total` distinct ids seen (when a total was reported), or the
        end reached without a total to compare with."""
        if self.total_reported:
            return self.distinct >= self.total
        return self.ended


@dataclass(frozen=True)
class Listing:
    """The result of listing instances: each id once, and whether that is provably all."""

    instances: list[Instance]
    complete: bool
    progress: ListingProgress = field(default_factory=ListingProgress)


def _with_instances(page: PageT, fresh: list[Any]) -> PageT:
    if isinstance(page, InstancePage):
        return page.model_copy(update={"instances": fresh})
    return replace(page, instances=fresh)


async def walk_instance_pages(
    fetch: FetchPage[PageT],
    *,
    name: str | None,
    status: str | None,
    product_name: str | None,
    page_size: int,
    progress: ListingProgress | None = None,
) -> AsyncIterator[PageT]:
    """Yield pages of GET /gpu/instances, each with only ids not yielded before.

    Correct whichever page base applies (readings `page_base`, `page_zero`) and when the
    server silently caps pageSize (`page_size_cap`): starts at pageNum=0 (restarts at 1 when
    0 is refused), drops items already seen (a shifted list, or pageNum 0 answering like 1),
    continues with the page size actually returned, and stops when `total` distinct ids
    were seen, a page is empty or short, or a page brings nothing new twice (a server that
    ignores paging). Whether the walk proved it saw everything ends up in `progress`.
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    state = progress if progress is not None else ListingProgress()
    seen: set[str] = set()
    page_num = 0
    size = page_size
    repeats = 0
    ahead: dict[int, asyncio.Future[PageT]] = {}  # pages asked for before their turn

    def query_for(num: int) -> Params:
        return params(
            name=name, status=status, productName=product_name, pageSize=size, pageNum=num
        )

    try:
        while True:
            try:
                pending = ahead.pop(page_num, None)
                page = await (pending if pending is not None else fetch(query_for(page_num)))
            except NovitaBadRequest:
                if page_num == 0 and state.pages == 0:
                    page_num = 1  # base 1 with pageNum=0 refused
                    state.first_page_num = 1
                    continue
                raise
            state.pages += 1
            state.total = page.total
            state.total_reported = page.total_reported
            items = page.instances
            if state.pages == 1 and len(items) < size and len(items) < page.total:
                size = max(len(items), 1)  # a silent cap: continue with what the server gives
                state.capped_page_size = size
            fresh = [item for item in items if item.id not in seen]
            if items and not fresh:
                repeats += 1
                if page_num == 1 and state.first_page_num == 0 and repeats == 1:
                    state.zero_is_one = True  # base 1 with pageNum=0 answering page 1
                else:
                    break  # the server ignores paging: stop, not proved complete
            seen.update(item.id for item in fresh)
            state.distinct = len(seen)
            if fresh:
                yield _with_instances(page, fresh)
            if not items:
                state.ended = True
                break
            if page.total_reported and len(seen) >= page.total:
                break
            if len(items) < size and not (page_num == 1 and state.zero_is_one and not fresh):
                state.ended = True  # a short page is the last one
                break
            if state.pages >= MAX_LISTING_PAGES or (
                page.total_reported and state.pages > page.total // size + 3
            ):
                break  # bounded: a server that keeps bringing a trickle of new ids
            if fresh and state.pages >= 2 and page.total_reported:
                _ask_ahead(ahead, fetch, query_for, page_num, _last_page(state, size), state)
            page_num += 1
    finally:
        for waiting in ahead.values():
            waiting.cancel()
        await asyncio.gather(*ahead.values(), return_exceptions=True)


def _last_page(state: ListingProgress, size: int) -> int:
    """The last page's number by the reported total, once the base is known (two pages in)."""
    base_one = state.first_page_num == 1 or state.zero_is_one
    return max(math.ceil(state.total / size) - 1, 0) + (1 if base_one else 0)


def _ask_ahead(
    ahead: dict[int, asyncio.Future[PageT]],
    fetch: FetchPage[PageT],
    query_for: Callable[[int], Params],
    page_num: int,
    last: int,
    state: ListingProgress,
) -> None:
    """Ask for the next pages up to `PAGES_AHEAD` before their turn, never past the last page
    the total names nor past `MAX_LISTING_PAGES`: the walk reads them in order as before, and
    waits for about one round trip per `PAGES_AHEAD` pages instead of one per page."""
    in_flight = len(ahead)
    for num in range(page_num + 1, min(page_num + PAGES_AHEAD, last) + 1):
        if num in ahead:
            continue
        if state.pages + in_flight >= MAX_LISTING_PAGES:
            break
        ahead[num] = asyncio.ensure_future(fetch(query_for(num)))
        in_flight += 1
