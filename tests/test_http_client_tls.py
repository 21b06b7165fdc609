"""TLS through the HTTP client, against a server on 127.0.0.1 with a self-signed certificate: the
certificate is verified (certifi's bundle; SSL_CERT_FILE only for Novita calls, as httpx read it)
and a failed handshake counts as "never sent"."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from yarl import URL

from novita_manager.http_client import (
    ConnectError,
    HttpTransport,
    Request,
    TransportError,
    ssl_context,
)
from novita_manager.upstream_transport import upstream_transport
from novita_manager.webhooks.transport import guarded_transport

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def tls_server(certificate: tuple[Path, Path]) -> AsyncIterator[tuple[str, list[str]]]:
    """(https URL of a server answering `{}`, the request lines it received)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    lines: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines.append(head.split(b"\r\n")[0].decode())
                length = [h for h in head.lower().split(b"\r\n") if h.startswith(b"content-length")]
                if length:
                    await reader.readexactly(int(length[0].split(b":")[1]))
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    yield f"https://127.0.0.1:{port}", lines
    server.close()


def post(url: str) -> Request:
    return Request("POST", URL(url + "/create"), {}, b"{}")


async def send(transport: HttpTransport, url: str) -> TransportError | int:
    try:
        return (await transport.send(post(url))).status_code
    except TransportError as error:
        return error
    finally:
        await transport.aclose()


async def test_an_untrusted_certificate_is_refused_before_sending(
    tls_server: tuple[str, list[str]],
) -> None:
    url, lines = tls_server
    for transport in (
        upstream_transport(url, timeout=5, max_connections=2, keepalive_expiry=2),
        guarded_transport(allow_private=True),
    ):
        error = await send(transport, url)
        assert isinstance(error, ConnectError)
        assert not error.sent
        assert "certificate" in str(error).lower()
    assert lines == []


async def test_ssl_cert_file_is_trusted_for_novita_calls_only(
    tls_server: tuple[str, list[str]],
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, lines = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    upstream = upstream_transport(url, timeout=5, max_connections=2, keepalive_expiry=2)
    assert await send(upstream, url) == 200  # verified against the named bundle
    refused = await send(guarded_transport(allow_private=True), url)
    assert isinstance(refused, ConnectError)  # webhooks do not read the environment
    assert lines == ["POST /create HTTP/1.1"]


def test_transports_trusting_the_same_roots_share_one_context(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    shared = ssl_context(trust_env=False)
    assert ssl_context(trust_env=True) is shared  # certifi's roots for both: loaded once
    assert shared.verify_mode == ssl.CERT_REQUIRED
    assert shared.check_hostname
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    named = ssl_context(trust_env=True)
    assert named is not shared  # other roots, another context
    assert ssl_context(trust_env=True) is named
    assert ssl_context(trust_env=False) is shared  # webhooks still ignore the environment
