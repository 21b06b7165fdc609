"""The create's "was it sent?" reading through the real HTTP client, over sockets on 127.0.0.1:
a create that may have reached the server is never sent again blindly, one that certainly did not
is retried, and a kept-alive connection the server closed unseen does not cost an unknown outcome.
The API key never appears in the log."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator

import pytest

from novita_manager.novita import (
    CreateInstanceRequest,
    NovitaClient,
    NovitaOutcomeUnknown,
    NovitaTransportError,
)

KEY = "sk_socket_test_key_0123456789"
REQUEST = CreateInstanceRequest(
    name="nm-1", product_id="p1", gpu_num=1, rootfs_size=60, image_url="nginx:latest"
)
CREATED = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{"id":"new1"}'
)


def client(base: str, timeout: float = 2.0) -> NovitaClient:
    return NovitaClient(
        base_url=base, api_key=KEY, timeout=timeout, max_retries=2, backoff_base=0.01
    )


@pytest.fixture
async def dropping_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """Reads each request whole, then closes the connection without answering."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n")[0])
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen
    server.close()


async def test_a_create_the_server_read_then_dropped_is_sent_once(
    dropping_server: tuple[str, list[bytes]],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    base, seen = dropping_server
    async with client(base) as novita:
        with pytest.raises(NovitaOutcomeUnknown) as caught:
            await novita.create_instance(REQUEST)
    assert caught.value.outcome == "network_error"
    assert seen == [b"POST /v1/gpu/instance/create HTTP/1.1"]
    captured = capsys.readouterr()
    logged = captured.out + captured.err + caplog.text  # wherever the log is configured to go
    assert "novita_create_outcome_unknown" in logged
    assert KEY not in logged


async def test_a_create_that_timed_out_reading_is_sent_once() -> None:
    seen: list[bytes] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append((await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[0])
        await reader.read()  # no answer

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        async with client(
            f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", timeout=0.3
        ) as n:
            with pytest.raises(NovitaOutcomeUnknown) as caught:
                await n.create_instance(REQUEST)
    finally:
        server.close()
    assert caught.value.outcome == "timeout"
    assert len(seen) == 1


async def test_a_create_that_could_not_connect_is_retried_and_never_unknown() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: refused
        async with client(f"http://127.0.0.1:{sock.getsockname()[1]}") as novita:
            with pytest.raises(NovitaTransportError) as caught:
                await novita.create_instance(REQUEST)
    assert not isinstance(caught.value, NovitaOutcomeUnknown)
    assert not caught.value.request_sent
    assert caught.value.outcome == "network_error"


async def test_a_create_after_an_unseen_idle_close_goes_out_once_on_a_new_connection() -> None:
    """The server closes the kept-alive connection of a GET while the client's loop is blocked;
    the create must not be written into it (that would be an unknown outcome)."""
    listener = socket.create_server(("127.0.0.1", 0))
    lines: list[bytes] = []

    def serve() -> None:
        for reply in (b'{"data":[]}', None):
            conn, _ = listener.accept()
            lines.append(conn.recv(65536).split(b"\r\n")[0])
            if reply is None:
                conn.sendall(CREATED)
            else:
                head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(reply)}\r\n\r\n".encode()
                conn.sendall(head + reply)
                time.sleep(0.05)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        async with client(f"http://127.0.0.1:{listener.getsockname()[1]}") as novita:
            assert await novita.list_clusters() == []
            time.sleep(0.3)  # blocks the loop: the close arrives unseen
            assert await novita.create_instance(REQUEST) == "new1"
    finally:
        thread.join(timeout=5)
        listener.close()
    assert lines == [b"GET /v1/clusters HTTP/1.1", b"POST /v1/gpu/instance/create HTTP/1.1"]
