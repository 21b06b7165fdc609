"""MAX_REQUEST_BYTES, enforced while the body streams in (plain ASGI).

A Content-Length over the limit answers 413 PAYLOAD_TOO_LARGE at once, before anything is read.
A body without one (chunked) is counted as it arrives; the chunk that crosses the limit is not
handed to the app: whatever the app then answers is replaced by the 413. Either way the answer
carries `Connection: close`, so the server stops reading what the client is still sending.
It runs inside the authentication middleware, so a client without a valid key gets 401 before
its body is looked at.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novita_manager.api.auth import header, refuse
from novita_manager.errors import PayloadTooLarge


class BodyTooLarge(Exception):
    """Raised into the app by `receive` once the body has grown past the limit."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The request body is larger than {self.max_bytes} bytes (MAX_REQUEST_BYTES)",
            details={"maxBytes": self.max_bytes},
            headers={"Connection": "close"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = header(scope, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = 0  # the HTTP parser refuses malformed lengths before we see them
            if declared > self.max_bytes:
                await refuse(scope, receive, send, self._error())
                return

        received = 0
        exceeded = False
        app_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal app_started
            if exceeded and not app_started:
                return  # the app's answer to a cut-off body is replaced by the 413 below
            if message["type"] == "http.response.start":
                app_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if app_started:
                raise
        if exceeded and not app_started:
            await refuse(scope, receive, send, self._error())
