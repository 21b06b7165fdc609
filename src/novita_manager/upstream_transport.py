"""The transport that reaches Novita. The lean HTTP/1.1 transport (`http1.py`) speaks no proxy,
so when the environment names one for the API's URL (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
lower case too, with `NO_PROXY` honoured, as httpx and curl read them) the calls go through
httpx's own transport and that proxy instead: a service behind a corporate proxy still reaches
Novita. Webhook deliveries never use a proxy (the SSRF guard checks the address it connects to).
"""

from __future__ import annotations

import urllib.request

import httpx

from novita_manager.http1 import Http1Transport

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})  # never proxied (the simulator)


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url`, or None (none set, NO_PROXY covers it, or
    the host is this machine)."""
    target = httpx.URL(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if not proxy:
        return None
    if target.host in LOOPBACK or _bypassed(target.host, proxies.get("no", "")):
        return None
    return proxy


def _bypassed(host: str, no_proxy: str) -> bool:
    """curl's reading of NO_PROXY: `*`, or a name that is the host or a domain above it."""
    for entry in (part.strip().lower().lstrip(".") for part in no_proxy.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return True
    return False


def upstream_transport(
    url: str, *, max_connections: int, keepalive_expiry: float
) -> httpx.AsyncBaseTransport:
    """Http1Transport, or httpx's transport through the environment's proxy for `url`."""
    proxy = proxy_for(url)
    if proxy is not None:
        limits = httpx.Limits(max_connections=max_connections, keepalive_expiry=keepalive_expiry)
        return httpx.AsyncHTTPTransport(proxy=proxy, limits=limits)
    return Http1Transport(max_connections=max_connections, keepalive_expiry=keepalive_expiry)
