"""How the service's HTTP transport reports failures of a create, read the way
`novita/session.py` reads them (`bench.http_clients` prints the table before measuring)."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from typing import Any

from yarl import URL

from novita_manager.http_client import HttpTransport, Request, TransportError
from novita_manager.novita.session import _transport_error


def _stale_server() -> tuple[int, socket.socket, threading.Thread]:
    """Answers a first request on a kept-alive connection, then closes it while idle; answers a
    second connection's request too."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            time.sleep(0.05)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], listener, thread


async def failure_readings() -> list[tuple[str, str]]:
    """(case, aiohttp's error and the session's reading) for failures of a create."""

    async def close_after_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async def reset_after_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # with SO_LINGER 0: an RST

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read()

    def create(port: int) -> Request:
        url = URL(f"http://127.0.0.1:{port}/gpu/instance/create")
        return Request("POST", url, {"Content-Type": "application/json"}, b"{}")

    async def reading(transport: HttpTransport, port: int, reached: bool) -> str:
        try:
            await transport.send(create(port))
            return "no error (answered)"
        except TransportError as error:
            sent = _transport_error(error, "POST /gpu/instance/create").request_sent
            verdict = "right" if sent == reached else "WRONG"
            said = "may have been sent" if sent else "never sent"
            cause = type(error.__cause__).__name__
            return f"{cause} → {type(error).__name__}: {said} ({verdict})"

    rows = []
    cases: list[tuple[str, Any, bool]] = [
        ("server read the request, closed without answering", close_after_head, True),
        ("server read the request, reset the connection", reset_after_head, True),
        ("server read the request, never answered (read timeout)", silent, True),
        ("nothing listens (connection refused)", None, False),
    ]
    for case, handler, reached in cases:
        server = await asyncio.start_server(handler, "127.0.0.1", 0) if handler else None
        port = server.sockets[0].getsockname()[1] if server else 1
        transport = HttpTransport(timeout=0.5)
        rows.append((case, await reading(transport, port, reached)))
        await transport.aclose()
        if server:
            server.close()
    port, listener, thread = _stale_server()
    transport = HttpTransport(timeout=5)
    await transport.send(Request("GET", URL(f"http://127.0.0.1:{port}/"), {}))
    time.sleep(0.3)  # the loop is busy while the server closes the idle connection
    case = "kept-alive connection closed by the server, not yet seen by the loop"
    rows.append((case, await reading(transport, port, True)))
    await transport.aclose()
    thread.join(timeout=5)
    listener.close()
    return rows
