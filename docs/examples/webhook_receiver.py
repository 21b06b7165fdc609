"""A minimal webhook receiver for novita-manager that verifies Standard Webhooks signatures.

    pip install standardwebhooks
    WEBHOOK_SECRET='whsec_...' python webhook_receiver.py --port 9000

Point the service at it with WEBHOOK_URL=http://<host>:9000/hook (and WEBHOOK_ALLOW_PRIVATE=true
when the receiver is on a private or loopback address). Use the same WEBHOOK_SECRET as the service.
Each verified event is printed; a bad signature or a stale timestamp (more than 5 minutes) gets
400. Delivery is at least once: events are deduplicated by `webhook-id`, which stays the same for
every retry and redelivery of one event. Answer 2xx quickly and do slow work elsewhere, because
the service times out after WEBHOOK_TIMEOUT (10 s) and retries.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


def library_secret(secret: str) -> str:
    """The secret as Standard Webhooks libraries take it: `whsec_<base64 key>`.

    novita-manager uses a `whsec_...` secret as is and any other string as raw key bytes.
    """
    if secret.startswith("whsec_"):
        return secret
    return "whsec_" + base64.b64encode(secret.encode("utf-8")).decode("ascii")


def verify(secret: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The event, if the signature and timestamp are valid; raises WebhookVerificationError."""
    event: dict[str, Any] = Webhook(library_secret(secret)).verify(body, headers)
    return event


class Receiver(BaseHTTPRequestHandler):
    secret = ""
    seen: OrderedDict[str, None] = OrderedDict()  # recent webhook-ids, for deduplication

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            event = verify(self.secret, body, headers)
        except WebhookVerificationError as error:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(f"invalid signature: {error}\n".encode())
            return
        webhook_id = headers["webhook-id"]
        if webhook_id not in self.seen:
            self.seen[webhook_id] = None
            if len(self.seen) > 10_000:
                self.seen.popitem(last=False)
            data = event["data"]
            print(
                json.dumps(
                    {
                        "id": webhook_id,
                        "type": event["type"],
                        "instanceId": data["instanceId"],
                        "status": data["status"],
                        "error": data.get("error"),
                    }
                ),
                flush=True,
            )
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet access log
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description="Verify and print novita-manager webhooks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET", "")
    if not secret:
        raise SystemExit("set WEBHOOK_SECRET to the service's secret")
    Receiver.secret = secret
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    print(f"listening on http://{args.host}:{args.port}/hook", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
