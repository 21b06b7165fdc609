"""Calls in flight to Novita, at most a number at once, with a lane for urgent calls.

A waiting urgent call takes the next free slot before every other waiting call: the GET that
reads a running instance's connection details (an instance Novita bills, its user not yet told)
must not queue behind a burst of creates. First come, first served within each lane; an
`asyncio.Semaphore` served both in one queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class UpstreamSlots:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._free = limit
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._others: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._urgent) + len(self._others)

    @contextlib.asynccontextmanager
    async def slot(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self.acquire(urgent=urgent)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, *, urgent: bool = False) -> None:
        if self._free > 0 and not self._urgent and not self._others:
            self._free -= 1
            return
        lane = self._urgent if urgent else self._others
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    lane.remove(waiter)
            raise

    def release(self) -> None:
        """Hand the slot to the first urgent waiter, else to the first other one, else free it."""
        for lane in (self._urgent, self._others):
            while lane:
                waiter = lane.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1
