"""Standard Webhooks signatures (standardwebhooks.com), made by the `standardwebhooks` library.

Headers sent with every attempt:

- `webhook-id`: the delivery id; the same for every retry and redelivery of one event, so receivers
  can deduplicate (delivery is at least once).
- `webhook-timestamp`: Unix seconds of this attempt (receivers reject stale timestamps).
- `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, only when a secret
  is configured.

The secret (`WEBHOOK_SECRET`):

- Recommended: `whsec_<base64 of random bytes>`, e.g. `whsec_$(openssl rand -base64 32)`. Receivers
  pass the same string to their library: `standardwebhooks.Webhook("whsec_...")`.
- Any other string is used as raw key bytes (its UTF-8 encoding). Receivers must then pass
  `"whsec_" + base64(secret.encode())` (or the raw bytes) to their library, because Standard
  Webhooks libraries base64-decode a string secret. `receiver_secret()` computes that string.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from math import floor

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret


class InvalidWebhookSecret(ValueError):
    """A `whsec_` secret whose remainder is not valid base64, or an empty secret."""


def secret_key(secret: str) -> bytes:
    """The HMAC key bytes for a configured secret (see the module docstring for the two forms)."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :].strip()
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error as error:
            raise InvalidWebhookSecret("the part after whsec_ is not valid base64") from error
    else:
        key = secret.encode("utf-8")
    if not key:
        raise InvalidWebhookSecret("the webhook secret is empty")
    return key


def receiver_secret(secret: str) -> str:
    """The `whsec_` form of a secret, which any Standard Webhooks library accepts for verifying."""
    return SECRET_PREFIX + base64.b64encode(secret_key(secret)).decode("ascii")


class WebhookSigner:
    """Builds the Standard Webhooks headers of one attempt; unsigned when there is no secret."""

    def __init__(self, secret: str | None) -> None:
        self._webhook = Webhook(secret_key(secret)) if secret else None

    @property
    def signs(self) -> bool:
        return self._webhook is not None

    def headers(self, webhook_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
        """`webhook-id`, `webhook-timestamp` and, with a secret, `webhook-signature`."""
        timestamp = timestamp.astimezone(UTC)  # the library assumes UTC
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(floor(timestamp.timestamp())),
        }
        if self._webhook is not None:
            headers["webhook-signature"] = self._webhook.sign(
                msg_id=webhook_id, timestamp=timestamp, data=body.decode("utf-8")
            )
        return headers


def signed_headers(
    secret: str | None, webhook_id: str, timestamp: datetime, body: bytes
) -> Mapping[str, str]:
    """One-shot form of `WebhookSigner(secret).headers(...)`."""
    return WebhookSigner(secret).headers(webhook_id, timestamp, body)
