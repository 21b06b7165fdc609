"""One attempt against a real receiver on 127.0.0.1: classification, timeouts, redirects."""

from __future__ import annotations

import base64
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from novita_manager.webhooks.sender import WebhookSender, parse_retry_after, send_webhook
from novita_manager.webhooks.signing import WebhookSigner
from tests.fixtures.webhook_receiver import Reply, WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"sender-test-secret-bytes").decode()
BODY = b'{"type":"instance.running","data":{"instanceId":"inst_1"}}'


@pytest.fixture
async def sender() -> AsyncIterator[WebhookSender]:
    async with WebhookSender() as sender:
        yield sender


async def _send(sender: WebhookSender, receiver: WebhookReceiver, timeout: float = 5.0):
    headers = WebhookSigner(SECRET).headers("dlv_s", datetime.now(UTC), BODY)
    return await sender.send(receiver.url, BODY, headers, timeout=timeout, allow_private=True)


async def test_delivered_request_is_signed_json(
    sender: WebhookSender, webhook_receiver: WebhookReceiver
) -> None:
    result = await _send(sender, webhook_receiver)
    assert result.delivered
    assert result.status_code == 200
    assert result.error is None
    assert result.duration_ms > 0
    (request,) = webhook_receiver.requests()
    assert request.method == "POST"
    assert request.body == BODY
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "dlv_s"
    assert Webhook(SECRET).verify(request.body, request.headers)["data"]["instanceId"] == "inst_1"
    wrong = "whsec_" + base64.b64encode(b"wrong-secret-bytes-here").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(wrong).verify(request.body, request.headers)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (400, False),
        (401, False),
        (404, False),
        (410, False),
        (422, False),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
    ],
)
async def test_status_classification(
    sender: WebhookSender, webhook_receiver: WebhookReceiver, status: int, retryable: bool
) -> None:
    webhook_receiver.script(Reply(status))
    result = await _send(sender, webhook_receiver)
    assert not result.delivered
    assert result.status_code == status
    assert result.retryable is retryable
    assert result.error == f"receiver answered {status}"


async def test_429_honours_retry_after(
    sender: WebhookSender, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.script(Reply(429, headers={"Retry-After": "7"}))
    result = await _send(sender, webhook_receiver)
    assert result.retryable
    assert result.retry_after == 7.0


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    http_date = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(http_date, now) == 30.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("999999") == 3600.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_hanging_receiver_times_out_and_is_retryable(
    sender: WebhookSender, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.script(Reply(delay=5))
    result = await _send(sender, webhook_receiver, timeout=0.3)
    assert result.retryable
    assert not result.delivered
    assert result.status_code is None
    assert result.error == "timed out after 0.3 s"
    assert 250 < result.duration_ms < 2000


async def test_redirect_is_not_followed(
    sender: WebhookSender, webhook_receiver: WebhookReceiver
) -> None:
    target = webhook_receiver.url_with_host("127.0.0.1", "/elsewhere")
    webhook_receiver.script(Reply(307, headers={"Location": target}))
    result = await _send(sender, webhook_receiver)
    assert result.status_code == 307
    assert not result.delivered
    assert not result.retryable
    assert "redirect" in (result.error or "")
    assert [request.path for request in webhook_receiver.requests()] == ["/hook"]


async def test_connection_refused_is_retryable(sender: WebhookSender) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await sender.send(f"http://127.0.0.1:{port}/", BODY, {}, timeout=2, allow_private=True)
    assert result.retryable
    assert not result.delivered
    assert result.error is not None


async def test_send_webhook_refuses_private_targets_without_allow_private(
    webhook_receiver: WebhookReceiver,
) -> None:
    result = await send_webhook(webhook_receiver.url, BODY, {}, 5, allow_private=False)
    assert result.refused
    assert not result.retryable
    assert result.error == "refused: 127.0.0.1 is a loopback address; webhooks need a public host"
    assert webhook_receiver.requests() == []
