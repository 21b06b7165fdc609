"""The transport that reaches Novita: `HttpTransport` (aiohttp), through the proxy the environment
names for the API's URL (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, lower case too, with
`NO_PROXY` honoured as curl reads it), so a service behind a corporate proxy still reaches Novita.

The proxy is chosen here once, not by aiohttp's `trust_env` (which looks it up again in a thread
at every request, and would also read `.netrc`). Webhook deliveries never use a proxy (the SSRF
guard checks the address it connects to).
"""

from __future__ import annotations

import urllib.request

from yarl import URL

from novita_manager.http_client import HttpTransport

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})  # never proxied (the simulator)


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url`, or None (none set, NO_PROXY covers it, or
    the host is this machine)."""
    target = URL(url)
    host = (target.host or "").lower()
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if not proxy:
        return None
    if host in LOOPBACK or _bypassed(host, proxies.get("no", "")):
        return None
    return proxy


def _bypassed(host: str, no_proxy: str) -> bool:
    """curl's reading of NO_PROXY: `*`, or a name that is the host or a domain above it."""
    for entry in (part.strip().lower().lstrip(".") for part in no_proxy.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return True
    return False


def upstream_transport(
    url: str, *, timeout: float, max_connections: int, keepalive_expiry: float
) -> HttpTransport:
    """The transport for Novita at `url`: direct, or through the environment's proxy."""
    return HttpTransport(
        timeout=timeout, limit=max_connections, keepalive=keepalive_expiry, proxy=proxy_for(url)
    )
