"""Where an address points: the built-in simulator runs on this machine, and some defaults
(keys, warnings) depend on whether the service or Novita's URL is local."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_url(url: str) -> bool:
    """True when `url` points at this machine, which is where the built-in simulator runs."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
