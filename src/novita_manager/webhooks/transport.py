"""The connect-time SSRF check: an aiohttp resolver that answers only with addresses it checked.

`GuardedResolver` is the resolver of the webhook transport's connector. For every new connection
aiohttp asks it for the host's addresses; it resolves the host itself, refuses the connection when
*any* resolved address is forbidden (stricter than checking only the address picked, and immune
to round-robin luck), and otherwise answers with exactly those checked addresses, which are the
only ones aiohttp then connects to. aiohttp's DNS cache is off for this connector
(`use_dns_cache=False`), so every connect asks again and a name that re-resolves between two
connections (DNS rebinding) is checked again; the check and the connect use one resolution. TLS
still uses the URL's host name for SNI and certificate verification (the answers carry it as
`hostname`).

aiohttp does not ask the resolver for an IP literal (`http://10.0.0.1/`): those are refused by
`ssrf.validate_webhook_url`, which the sender runs before every attempt. Environment proxies are
never used (the guard would check the proxy's address instead of the target's), and redirects
are never followed by the sender.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

from novita_manager.http_client import HttpTransport, ssl_context
from novita_manager.webhooks.ssrf import WebhookUrlRefused, address_refusal

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolve (host, port) to IP address strings; tests inject one to map names."""


class WebhookAddressRefused(WebhookUrlRefused):
    """Raised at connect time when the target resolves to a forbidden address."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo), addresses in its preference order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedResolver(AbstractResolver):
    """Resolve, check every address, answer with the checked ones (see the module docstring)."""

    def __init__(self, *, allow_private: bool = False, resolver: Resolver | None = None) -> None:
        self._allow_private = allow_private
        self._resolve = resolver or system_resolver

    async def resolve_checked(self, host: str, port: int) -> list[str]:
        """The addresses of `host`; WebhookAddressRefused if any of them is forbidden; OSError
        when it has none (aiohttp reports that as a failed connect: nothing was sent)."""
        addresses = await self._resolve(host, port)
        if not addresses:
            raise OSError(f"{host} has no address")
        if not self._allow_private:
            for address in addresses:
                reason = address_refusal(ipaddress.ip_address(address))
                if reason is not None:
                    raise WebhookAddressRefused(f"{host} resolves to {address}, a {reason}")
        return addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self.resolve_checked(host, port)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"GuardedResolver(allow_private={self._allow_private})"


def guarded_transport(
    *, allow_private: bool = False, resolver: Resolver | None = None, **options: Any
) -> HttpTransport:
    """The webhook transport: every connection goes to addresses `GuardedResolver` checked; no
    proxy; certificates verified against certifi's bundle (not the environment's). `options`
    go to `HttpTransport` (a default timeout; each delivery gives its own)."""
    options.setdefault("timeout", 10.0)
    options.setdefault("keepalive", 5.0)
    return HttpTransport(
        resolver=GuardedResolver(allow_private=allow_private, resolver=resolver),
        ssl=ssl_context(trust_env=False),
        proxy=None,
        **options,
    )
