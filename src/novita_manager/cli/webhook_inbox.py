"""The demo's webhook receiver: a tiny HTTP server on 127.0.0.1 that checks every signature.

It verifies with the `standardwebhooks` library, as any receiver of the service would, and keeps
what arrived so the demo can show it. Answers 204 when the signature holds, 401 when it does not.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

MAX_BODY = 1_000_000


@dataclass(frozen=True)
class ReceivedWebhook:
    webhook_id: str
    type: str
    verified: bool
    problem: str | None  # why verification failed, when it did
    payload: dict[str, Any]
    received_at: float

    @property
    def instance_id(self) -> str | None:
        data = self.payload.get("data")
        return data.get("instanceId") if isinstance(data, dict) else None


class WebhookInbox:
    """`ThreadingHTTPServer` in a daemon thread; `url` is where the service should post."""

    def __init__(self, secret: str, host: str = "127.0.0.1") -> None:
        self._verifier = Webhook(secret)
        self._received: list[ReceivedWebhook] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-webhook-inbox", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/webhooks"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() would wait forever on a server never started
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def received(self) -> list[ReceivedWebhook]:
        with self._changed:
            return list(self._received)

    def wait_for(
        self, match: Callable[[ReceivedWebhook], bool], timeout: float
    ) -> ReceivedWebhook | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((hook for hook in self._received if match(hook)), None)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    return found
                self._changed.wait(remaining)

    def _record(self, headers: dict[str, str], body: bytes) -> bool:
        try:
            payload = self._verifier.verify(body, headers)
            verified, problem = True, None
        except WebhookVerificationError as error:
            verified, problem = False, str(error) or "signature mismatch"
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {}
        if not isinstance(payload, dict):
            payload = {"body": payload}
        hook = ReceivedWebhook(
            webhook_id=headers.get("webhook-id", "-"),
            type=str(payload.get("type", "?")),
            verified=verified,
            problem=problem,
            payload=payload,
            received_at=time.time(),
        )
        with self._changed:
            self._received.append(hook)
            self._changed.notify_all()
        return verified

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
                body = self.rfile.read(length)
                headers = {key.lower(): value for key, value in self.headers.items()}
                ok = inbox._record(headers, body)
                self.send_response(204 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the demo prints what matters itself."""

        return Handler
