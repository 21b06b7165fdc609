"""The SSRF policy: which webhook targets are refused, and why.

Webhook URLs come from users, so without a guard a webhook is a way to make the service call its
own network (admin ports on loopback, databases on private ranges, the cloud metadata service).
Refused, unless `WEBHOOK_ALLOW_PRIVATE=true`: loopback, private (RFC 1918), carrier-grade NAT
(100.64.0.0/10), link-local (incl. 169.254.169.254), unique-local (fc00::/7), site-local,
multicast, unspecified, reserved and any other non-global address, and cloud-metadata addresses
and names. IPv4 embedded in IPv6 (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4
`2002::/16`, Teredo clients) is judged as the IPv4 address it stands for.

Two checks use this policy:

- `validate_webhook_url` (pure, no DNS): when a URL is accepted by the API, so a bad URL is a 400
  at once; it refuses literal addresses and obviously internal names.
- `webhooks.transport` (at connect time): resolves the host itself, refuses when *any* resolved
  address is forbidden, and connects to exactly the checked address, so a name that resolves (or
  re-resolves, DNS rebinding) to an internal address is refused when the request is sent.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from urllib.parse import urlsplit

IPAddress = IPv4Address | IPv6Address

MAX_URL_LENGTH = 2048

_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        IPv4Address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean ...
        IPv4Address("169.254.170.2"),  # AWS ECS task metadata
        IPv6Address("fd00:ec2::254"),  # AWS IMDS over IPv6
        IPv4Address("100.100.100.200"),  # Alibaba Cloud
        IPv4Address("192.0.0.192"),  # Oracle Cloud
    }
)
_METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
# Suffixes that never name a public host (RFC 6761 `.localhost`, ICANN `.internal`, mDNS `.local`).
_INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".home.arpa")

_CGNAT = IPv4Network("100.64.0.0/10")
_UNIQUE_LOCAL = IPv6Network("fc00::/7")
_NAT64 = IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = IPv6Network("2002::/16")
_LEGACY_IPV4 = re.compile(r"[0-9a-fx.]+")


class WebhookUrlRefused(ValueError):
    """A webhook target the SSRF guard (or basic URL rules) will not call; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4, Teredo client), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why a webhook must not connect to `address`, or None when it is a public address."""
    if address in _METADATA_ADDRESSES:
        return "cloud metadata address"
    if isinstance(address, IPv6Address):
        address = IPv6Address(address.compressed.split("%")[0])  # drop a zone id
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = address_refusal(embedded)
            if reason is not None:
                return f"{reason} ({embedded} embedded in IPv6)"
            if address.ipv4_mapped is not None or address in _NAT64:
                return None  # stands for a public IPv4 address
    if address.is_unspecified:
        return "unspecified address"
    if address.is_loopback:
        return "loopback address"
    if isinstance(address, IPv4Address) and address in _CGNAT:
        return "carrier-grade NAT address"
    if address.is_link_local:
        return "link-local address"
    if isinstance(address, IPv6Address) and address in _UNIQUE_LOCAL:
        return "unique-local address"
    if isinstance(address, IPv6Address) and address.is_site_local:
        return "site-local address"
    if address.is_multicast:
        return "multicast address"
    if address.is_private:
        return "private address"
    if address.is_reserved:
        return "reserved address"
    if not address.is_global:
        return "non-public address"
    return None


def parse_literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, including legacy IPv4 forms (`0x7f.1`, `2130706433`)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def host_refusal(host: str) -> str | None:
    """Why a host name or literal address is refused without resolving it, or None."""
    name = host.lower().rstrip(".")
    address = parse_literal_address(name)
    if address is not None:
        return address_refusal(address)
    if name in _METADATA_NAMES:
        return "cloud metadata host name"
    if name == "localhost" or name.endswith(".localhost"):
        return "localhost name"
    if name.endswith(_INTERNAL_SUFFIXES):
        return "internal host name"
    return None


def validate_webhook_url(url: str, allow_private: bool) -> None:
    """Accept an http(s) URL with a host that is not obviously internal; raise WebhookUrlRefused.

    Names are not resolved here (request handling stays fast and DNS can change before sending);
    the connect-time check in `webhooks.transport` sees what a name resolves to.
    """
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(char.isspace() or ord(char) < 32 for char in url):
        raise WebhookUrlRefused("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on an invalid port
    except ValueError as error:
        raise WebhookUrlRefused(f"the URL is not valid ({error})") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlRefused("the URL must use http:// or https://")
    if not parts.hostname:
        raise WebhookUrlRefused("the URL has no host")
    if allow_private:
        return
    reason = host_refusal(parts.hostname)
    if reason is not None:
        raise WebhookUrlRefused(f"{parts.hostname} is a {reason}; webhooks need a public host")
