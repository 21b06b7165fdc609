"""The gate in front of the v1 surface: fault injection, Bearer auth and call counting.

A pure ASGI middleware (outermost, in uvicorn's own task) so that it can hang, answer garbage
or close the TCP connection without any HTTP response, which a higher layer cannot do.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novita_manager.logging import get_logger
from novita_manager.simulator.config import API_PREFIX, HANG_SECONDS
from novita_manager.simulator.errors import SimulatorError
from novita_manager.simulator.faults import Fault
from novita_manager.simulator.responses import send_error, send_raw
from novita_manager.simulator.state import SimulatorState

log = get_logger(__name__)

MALFORMED_BODY = b'{"instances": [{"id": "3560b7fe'  # truncated JSON, answered with 200


def _unauthorized(message: str) -> SimulatorError:
    return SimulatorError(401, "UNAUTHORIZED", message)


async def _wait_for_disconnect(receive: Receive, timeout: float) -> bool:
    """True when the client went away within `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return False
    return True


async def drop_connection(receive: Receive, send: Send) -> None:
    """Close the TCP connection without sending a byte (the client sees a RemoteProtocolError).

    ASGI has no 'abort'; uvicorn's request task is a coroutine of its request cycle, which holds
    the transport, so close that. Elsewhere, fall back to headers followed by a cut-off body.
    """
    task = asyncio.current_task()
    frame = getattr(task.get_coro(), "cr_frame", None) if task else None
    cycle = frame.f_locals.get("self") if frame is not None else None
    transport: Any = getattr(cycle, "transport", None)
    if transport is not None and hasattr(transport, "close"):
        transport.close()
        await _wait_for_disconnect(receive, 1.0)
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"1000")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"id', "more_body": True})
    raise ConnectionAbortedError("simulated dropped connection")


class V1Gate:
    def __init__(self, app: ASGIApp, state: SimulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path = scope["path"][len(API_PREFIX) :].rstrip("/") or "/"
        key = f"{method} {path}"
        fault = self.state.faults.pick(method, path)
        if fault is None:
            await self._answer(key, scope, receive, send)
            return
        await self._apply(fault, key, scope, receive, send)

    async def _answer(self, key: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the key, then let the routes answer; count the status."""
        error = self._check_auth(scope)
        if error is not None:
            self.state.stats.record(key, str(error.status))
            await send_error(send, error)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.state.stats.record(key, str(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except ClientDisconnect:
            # The client hung up before its body arrived (a killed service, say): nothing to
            # answer and nothing wrong on this side, so count it instead of logging a crash.
            self.state.stats.record(key, "client_gone")

    def _check_auth(self, scope: Scope) -> SimulatorError | None:
        header = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        scheme, _, token = header.decode("latin-1").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _unauthorized("missing or malformed Authorization: Bearer <key>")
        expected = self.state.config.api_key
        if expected is not None and token != expected:
            return _unauthorized("invalid api key")
        return None

    async def _apply(
        self, fault: Fault, key: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        stats = self.state.stats
        kind = fault.kind
        if kind == "delay":
            await asyncio.sleep(max(fault.seconds, 0.0))
            await self._answer(key, scope, receive, send)
        elif kind == "error":
            stats.record(key, str(fault.status))
            await send_error(send, fault.error())
        elif kind == "rate_limit":
            stats.record(key, "429")
            retry = fault.retry_after
            shown = str(int(retry)) if float(retry).is_integer() else str(math.ceil(retry))
            error = SimulatorError(
                429,
                fault.reason or "RATE_LIMIT_EXCEEDED",
                fault.message or "rate limit exceeded",
                headers={"Retry-After": shown},
            )
            await send_error(send, error)
        elif kind == "hang":
            await self._hang(key, receive, send)
        elif kind == "drop":
            stats.record(key, "drop")
            await drop_connection(receive, send)
        elif kind == "malformed":
            stats.record(key, "200")
            await send_raw(send, 200, MALFORMED_BODY)
        else:  # commit_then_fail
            await self._commit_then_fail(fault, key, scope, receive, send)

    async def _hang(self, key: str, receive: Receive, send: Send) -> None:
        self.state.stats.record(key, "hang")
        if not await _wait_for_disconnect(receive, HANG_SECONDS):
            await send_error(send, SimulatorError(504, "GATEWAY_TIMEOUT", "simulated hang"))

    async def _commit_then_fail(
        self, fault: Fault, key: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the real handler (the action happens), then answer with the fault instead."""
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        error = self._check_auth(scope)
        if error is not None:
            self.state.stats.record(key, str(error.status))
            await send_error(send, error)
            return
        await self.app(scope, receive, capture)
        status = next(
            (int(m["status"]) for m in captured if m["type"] == "http.response.start"), 500
        )
        if not 200 <= status < 300:  # nothing was committed: show the real answer
            self.state.stats.record(key, str(status))
            for message in captured:
                await send(message)
            return
        log.debug("simulator_commit_then_fail", endpoint=key, then=fault.then)
        if fault.then == "hang":
            await self._hang(key, receive, send)
        elif fault.then == "drop":
            self.state.stats.record(key, "drop")
            await drop_connection(receive, send)
        else:
            self.state.stats.record(key, str(fault.status))
            await send_error(send, fault.error())
