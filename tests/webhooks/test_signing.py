"""Signatures verify with the standardwebhooks library, and only with the right secret."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from novita_manager.webhooks.signing import (
    InvalidWebhookSecret,
    WebhookSigner,
    receiver_secret,
    secret_key,
)

BODY = b'{"type":"instance.running","timestamp":"2026-01-01T00:00:00Z","data":{}}'
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_whsec_secret_verifies_with_the_library() -> None:
    headers = WebhookSigner(WHSEC).headers("dlv_1", datetime.now(UTC), BODY)
    assert headers["webhook-id"] == "dlv_1"
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(WHSEC).verify(BODY, headers)["type"] == "instance.running"


def test_wrong_secret_or_tampered_body_fails() -> None:
    headers = WebhookSigner(WHSEC).headers("dlv_1", datetime.now(UTC), BODY)
    other = "whsec_" + base64.b64encode(b"another-key-another-key!").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(BODY.replace(b"running", b"failed"), headers)


def test_plain_string_secret_is_used_as_utf8_bytes() -> None:
    secret = "my plain secret ✓"
    headers = WebhookSigner(secret).headers("dlv_2", datetime.now(UTC), BODY)
    assert secret_key(secret) == secret.encode()
    Webhook(receiver_secret(secret)).verify(BODY, headers)
    Webhook(secret.encode()).verify(BODY, headers)


def test_no_secret_sends_id_and_timestamp_only() -> None:
    now = datetime.now(UTC)
    headers = WebhookSigner(None).headers("dlv_3", now, BODY)
    assert headers == {"webhook-id": "dlv_3", "webhook-timestamp": str(int(now.timestamp()))}


def test_invalid_whsec_secret_is_rejected() -> None:
    with pytest.raises(InvalidWebhookSecret):
        WebhookSigner("whsec_not*base64!")
    with pytest.raises(InvalidWebhookSecret):
        WebhookSigner("whsec_")
