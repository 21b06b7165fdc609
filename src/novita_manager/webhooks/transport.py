"""The connect-time SSRF check: an httpx transport that connects only to addresses it checked.

`GuardedNetworkBackend` wraps httpcore's network backend. For every new connection it resolves the
host itself, refuses the connection when *any* resolved address is forbidden (stricter than
checking only the address picked, and immune to round-robin luck), then connects to one of exactly
those checked IP addresses. Because the check and the connect use the same resolution, a name
that re-resolves between check and connect (DNS rebinding) cannot slip through. TLS still uses
the URL's host name for SNI and certificate verification: httpcore passes the origin's host to
`start_tls`, independently of the address connected to.

The sender's transport (`guarded_transport`) connects through it. Environment proxies are
ignored (`trust_env=False`); otherwise the guard would check the proxy's
address instead of the target's. Redirects are never followed by the sender.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

import anyio
import httpcore
import httpx

from novita_manager.http1 import Http1Transport
from novita_manager.webhooks.ssrf import WebhookUrlRefused, address_refusal

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolve (host, port) to IP address strings; tests inject one to map names."""


class WebhookAddressRefused(WebhookUrlRefused):
    """Raised at connect time when the target resolves to a forbidden address."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo), addresses in its preference order."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, connect to a checked address (see the module docstring)."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._resolve = resolver or system_resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def resolve_checked(self, host: str, port: int, timeout: float | None) -> list[str]:
        """The addresses of `host`; WebhookAddressRefused if any of them is forbidden."""
        try:
            with anyio.fail_after(timeout):
                addresses = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        if not self._allow_private:
            for address in addresses:
                reason = address_refusal(ipaddress.ip_address(address))
                if reason is not None:
                    raise WebhookAddressRefused(f"{host} resolves to {address}, a {reason}")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolve_checked(host, port, timeout)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise WebhookAddressRefused("webhooks cannot use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    *, allow_private: bool = False, resolver: Resolver | None = None
) -> Http1Transport:
    """An httpx transport whose every connection goes to addresses `GuardedNetworkBackend`
    resolved and checked (the lean HTTP/1.1 transport, `novita_manager/http1.py`: httpcore's
    pool over anyio cost more than the rest of a delivery attempt on the lifecycle benchmark).
    """
    backend = GuardedNetworkBackend(allow_private=allow_private, resolver=resolver)

    async def addresses(host: str, port: int, timeout: float | None) -> list[str]:
        try:
            return await backend.resolve_checked(host, port, timeout)
        except httpcore.ConnectTimeout as error:
            raise httpx.ConnectTimeout(str(error)) from None
        except httpcore.ConnectError as error:
            raise httpx.ConnectError(str(error)) from None

    return Http1Transport(
        ssl_context=httpx.create_ssl_context(trust_env=False), addresses=addresses
    )
