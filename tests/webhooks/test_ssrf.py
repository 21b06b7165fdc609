"""The SSRF guard, table-driven: pure URL checks and the connect-time check on addresses."""

from __future__ import annotations

import socket

import pytest

from novita_manager.webhooks.sender import WebhookSender
from novita_manager.webhooks.ssrf import WebhookUrlRefused, validate_webhook_url
from novita_manager.webhooks.transport import GuardedResolver, WebhookAddressRefused
from tests.fixtures.webhook_receiver import Reply, WebhookReceiver

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "metadata"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("0.0.0.0", "unspecified"),
    ("[::1]", "loopback"),
    ("[fe80::1]", "link-local"),
    ("[fc00::1]", "unique-local"),
    ("[fd00:ec2::254]", "metadata"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:10.0.0.1]", "private"),
    ("[64:ff9b::7f00:1]", "loopback"),  # NAT64 of 127.0.0.1
    ("[2002:a00:1::]", "private"),  # 6to4 of 10.0.0.1
    ("224.0.0.1", "multicast"),
    ("[ff02::1]", "multicast"),
    ("2130706433", "loopback"),  # 127.0.0.1 as one integer
    ("0x7f.1", "loopback"),
    ("metadata.google.internal", "metadata"),
    ("localhost", "localhost"),
    ("api.localhost", "localhost"),
    ("LOCALHOST.", "localhost"),
]


@pytest.mark.parametrize(("host", "reason"), REFUSED)
def test_request_time_check_refuses(host: str, reason: str) -> None:
    with pytest.raises(WebhookUrlRefused, match=reason):
        validate_webhook_url(f"https://{host}:8443/hook", allow_private=False)


@pytest.mark.parametrize(("host", "_reason"), REFUSED)
def test_allow_private_accepts_internal_targets(host: str, _reason: str) -> None:
    validate_webhook_url(f"http://{host}/hook", allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hooks",
        "http://8.8.8.8/x",
        "https://[2606:4700:4700::1111]/x",
        "https://[::ffff:8.8.8.8]/x",
        "https://hooks.example.org:8443/a?b=c",
    ],
)
def test_public_targets_pass_the_pure_check(url: str) -> None:
    validate_webhook_url(url, allow_private=False)  # no DNS, no connection


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "http"),
        ("file:///etc/passwd", "http"),
        ("https:///path", "no host"),
        ("https://example.com:99999/", "not valid"),
        ("https://exa mple.com/", "whitespace"),
        ("https://example.com/" + "a" * 2100, "longer"),
    ],
)
def test_malformed_urls_are_refused_even_when_private_is_allowed(url: str, reason: str) -> None:
    with pytest.raises(WebhookUrlRefused, match=reason):
        validate_webhook_url(url, allow_private=True)


async def _resolve_to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


async def test_resolver_refuses_a_name_resolving_to_loopback() -> None:
    with pytest.raises(WebhookAddressRefused, match="loopback"):
        await GuardedResolver().resolve("localhost", 80)


async def test_resolver_refuses_when_any_address_is_forbidden() -> None:
    async def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.1.2.3"]

    with pytest.raises(WebhookAddressRefused, match=r"10\.1\.2\.3"):
        await GuardedResolver(resolver=mixed).resolve("mixed.example", 443)


async def test_resolver_answers_exactly_the_checked_addresses_with_the_name() -> None:
    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]

    answers = await GuardedResolver(resolver=public).resolve("hooks.example", 443)
    assert [(a["host"], a["port"], a["hostname"]) for a in answers] == [
        ("93.184.216.34", 443, "hooks.example"),  # the name: TLS verifies it, not the address
        ("2606:2800:220:1:248:1893:25c8:1946", 443, "hooks.example"),
    ]
    assert [a["family"] for a in answers] == [socket.AF_INET, socket.AF_INET6]


async def test_every_new_connection_resolves_again(webhook_receiver: WebhookReceiver) -> None:
    """aiohttp's DNS cache is off for the guarded transport: a name that re-resolves to an
    internal address after a first, allowed connection (DNS rebinding) is checked again."""
    answers = [["127.0.0.1"], ["127.0.0.1"]]
    asked: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers.pop(0)

    url = webhook_receiver.url_with_host("rebind.example.com")
    webhook_receiver.script(Reply(headers={"Connection": "close"}), Reply())
    async with WebhookSender(resolver=rebinding) as sender:
        for _ in range(2):  # the receiver closed the first connection: a second one is made
            assert (await sender.send(url, b"{}", {}, timeout=5, allow_private=True)).delivered
    assert asked == ["rebind.example.com", "rebind.example.com"]


async def test_a_literal_address_is_refused_before_connecting(
    webhook_receiver: WebhookReceiver,
) -> None:
    """aiohttp never asks the resolver about an IP literal; the URL check refuses it."""
    async with WebhookSender() as sender:
        for host in ("127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1"):
            url = webhook_receiver.url_with_host(host)
            result = await sender.send(url, b"{}", {}, timeout=5, allow_private=False)
            assert result.refused, host
    assert webhook_receiver.requests() == []


async def test_name_resolving_to_loopback_is_refused_at_send_time(
    webhook_receiver: WebhookReceiver,
) -> None:
    """The pure check passes the name; the connect-time check sees 127.0.0.1 and refuses."""
    url = webhook_receiver.url_with_host("rebind.example.com")
    validate_webhook_url(url, allow_private=False)
    async with WebhookSender(resolver=_resolve_to_loopback) as sender:
        result = await sender.send(url, b"{}", {}, timeout=5, allow_private=False)
        assert result.refused
        assert not result.retryable
        assert not result.delivered
        assert result.error is not None
        assert "rebind.example.com resolves to 127.0.0.1" in result.error
        # The same mapping with private targets allowed reaches the receiver (the guard is real).
        allowed = await sender.send(url, b"{}", {}, timeout=5, allow_private=True)
        assert allowed.delivered
    assert len(webhook_receiver.requests()) == 1
    assert (
        webhook_receiver.requests()[0].headers["host"]
        == f"rebind.example.com:{webhook_receiver.port}"
    )


async def test_localhost_is_refused_at_send_time(webhook_receiver: WebhookReceiver) -> None:
    async with WebhookSender() as sender:
        result = await sender.send(
            webhook_receiver.url_with_host("localhost"), b"{}", {}, timeout=5, allow_private=False
        )
    assert result.refused
    assert webhook_receiver.requests() == []
