"""How the doctor asks Novita: raw GETs through the client, with the rate-limit headers seen.

The probes need what the typed client methods hide on purpose: the raw JSON (to compare a list
item with its GET field by field), arbitrary page numbers (to tell page 0 from page 1) and the
headers of every answer, 429s included. `Prober` sends those GETs through the client's request
loop (so the breaker, retries and logging apply as for the service), and `HeaderRecorder` wraps
the transport to see headers the loop never hands to a parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from novita_manager.http_client import Request, Response, Transport
from novita_manager.novita.client import NovitaClient
from novita_manager.novita.errors import NovitaBadRequest
from novita_manager.novita.models import Product

RATE_LIMIT_PREFIXES = ("x-ratelimit", "ratelimit", "retry-after")
LIST_KEYS = ("template", "templates", "instances", "data")  # /templates answers `template`


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in headers.items()
        if name.lower().startswith(RATE_LIMIT_PREFIXES)
    }


class HeaderRecorder:
    """Wraps the real transport to see the rate-limit headers of every answer, 429s included:
    the client hands only successful replies to a parser, and a 429's Retry-After is the most
    telling header of all."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.seen: dict[str, str] = {}

    async def send(self, request: Request) -> Response:
        response = await self.inner.send(request)
        self.seen.update(rate_limit_headers(response.headers))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class Prober:
    """Runs the probes over one client; remembers rate-limit headers of every answer."""

    def __init__(self, client: NovitaClient, recorder: HeaderRecorder | None = None) -> None:
        self.client = client
        self.recorder = recorder
        self._rate_headers: dict[str, str] = {}
        self.calls = 0

    @property
    def rate_headers(self) -> dict[str, str]:
        seen = dict(self._rate_headers)
        if self.recorder is not None:
            seen.update(self.recorder.seen)
        return seen

    async def get(self, path: str, **params: str | int) -> Any:
        def parse(response: Response) -> Any:
            self._rate_headers.update(rate_limit_headers(response.headers))
            return response.json()

        self.calls += 1
        return await self.client.call("GET", path, parse, params=params)

    async def products(self, **params: str | int) -> list[Product]:
        data = await self.get("/products", **params)
        items = data.get("data") if isinstance(data, dict) else data
        return [Product.model_validate(item) for item in items or []]

    async def page(self, path: str, key: str, page_num: int, size: int) -> tuple[list[Any], int]:
        data = await self.get(path, pageNum=page_num, pageSize=size)
        if not isinstance(data, dict):
            raise TypeError(f"{path}: expected an object")
        items: list[Any] = next(
            (data[k] for k in (key, *LIST_KEYS) if isinstance(data.get(k), list)), []
        )
        total = data.get("total")
        count = int(total) if isinstance(total, int | str) and str(total).isdigit() else 0
        return list(items), count

    async def page_ids(
        self, path: str, key: str, page_num: int, size: int
    ) -> tuple[list[str] | None, int]:
        """Ids of one page, or None when the server refuses this pageNum (400)."""
        try:
            items, total = await self.page(path, key, page_num, size)
        except NovitaBadRequest:
            return None, 0
        ids = [str(item.get("id") or item.get("Id")) for item in items if isinstance(item, dict)]
        return ids, total
