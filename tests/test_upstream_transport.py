"""Novita is reached through the proxy the environment names (aiohttp's proxy support, chosen by
`proxy_for`), and directly otherwise; checked with a real forward proxy and the simulator on
127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from novita_manager.novita import NovitaClient
from novita_manager.simulator.server import SimulatorServer
from novita_manager.upstream_transport import proxy_for, upstream_transport

PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_no_proxy_in_the_environment_goes_directly() -> None:
    transport = upstream_transport(
        "https://api.novita.ai/gpu-instance/openapi",
        timeout=5,
        max_connections=4,
        keepalive_expiry=2,
    )
    assert transport.proxy is None


def test_the_proxy_for_the_scheme_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://api.novita.ai/gpu-instance/openapi"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    assert proxy_for(url) == "http://proxy.corp:3128"
    assert proxy_for("http://api.novita.ai/") is None  # only HTTPS_PROXY is set
    assert proxy_for("https://127.0.0.1:8080/") is None  # this machine is never proxied
    monkeypatch.setenv("NO_PROXY", "example.org, .novita.ai")
    assert proxy_for(url) is None
    monkeypatch.setenv("NO_PROXY", "*")
    assert proxy_for(url) is None
    monkeypatch.setenv("NO_PROXY", "ai.novita.ai")  # not a domain above the host
    assert proxy_for(url) == "http://proxy.corp:3128"
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("ALL_PROXY", "http://all.corp:8080")
    assert proxy_for(url) == "http://all.corp:8080"
    transport = upstream_transport(url, timeout=5, max_connections=4, keepalive_expiry=2)
    assert transport.proxy == "http://all.corp:8080"


class ForwardProxy:
    """A plain-HTTP forward proxy: takes absolute-form requests and answers with the response
    of `origin` (whatever host the request named: the name need not resolve); counts them."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.seen: list[str] = []
        self._client = httpx.AsyncClient(trust_env=False)
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._client.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                length = int(headers.get("Content-Length", headers.get("content-length", "0")))
                body = await reader.readexactly(length) if length else b""
                self.seen.append(f"{method} {target}")
                keep = {k: v for k, v in headers.items() if k.lower() == "authorization"}
                path = httpx.URL(target).raw_path.decode()
                answer = await self._client.request(
                    method, self.origin + path, headers=keep, content=body
                )
                writer.write(
                    f"HTTP/1.1 {answer.status_code} OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(answer.content)}\r\n\r\n".encode()
                    + answer.content
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def forward_proxy(simulator: SimulatorServer) -> AsyncIterator[ForwardProxy]:
    proxy = ForwardProxy(str(httpx.URL(simulator.base_url).copy_with(raw_path=b"")).rstrip("/"))
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_calls_go_through_the_environments_proxy(
    simulator: SimulatorServer, forward_proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    # A name only the proxy knows: the call can only succeed through it.
    base_url = str(httpx.URL(simulator.base_url).copy_with(host="novita.invalid"))
    client = NovitaClient(base_url=base_url, api_key=simulator.api_key, timeout=5.0)
    async with client:
        clusters = await client.list_clusters()
    assert clusters
    assert any("novita.invalid" in line and "/clusters" in line for line in forward_proxy.seen)


async def test_no_proxy_and_this_machine_go_directly(
    simulator: SimulatorServer, forward_proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    client = NovitaClient(base_url=simulator.base_url, api_key=simulator.api_key, timeout=5.0)
    async with client:
        assert await client.list_clusters()
    assert forward_proxy.seen == []  # 127.0.0.1 is never proxied
