"""Everything the demo runs on this machine: simulator, webhook receiver and service, in threads.

The service gets explicit settings only (`_ExplicitSettings` ignores the environment and `.env`),
so a user's configuration can neither break the demo nor point it at the real Novita API.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import secrets
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import uvicorn
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from novita_manager.app import create_app
from novita_manager.cli.webhook_inbox import WebhookInbox
from novita_manager.config import Settings
from novita_manager.http_server import uvicorn_options
from novita_manager.logging import configure_logging
from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.server import SimulatorServer


class _ExplicitSettings(Settings):
    """Settings taken only from the constructor's arguments."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def bind_socket(port: int, host: str = "127.0.0.1") -> socket.socket:
    """Bind `port` when it is free, else any free port (0 asks for any free port directly)."""
    # IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only then
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        if error.errno != errno.EADDRINUSE or port == 0:
            sock.close()
            raise
        sock.bind((host, 0))
    return sock


class ServiceServer:
    """The service under uvicorn in a thread with its own event loop, on a pre-bound socket."""

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self.settings = settings
        self._sock = sock
        app = create_app(settings)
        # The protocol `serve` uses: among its duties, it closes open event streams (the demo
        # follows its instance on one) at shutdown instead of waiting out the grace period.
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=3,
            **uvicorn_options(settings, app),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="demo-service", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the service stopped during start-up (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start within {timeout:g} s")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()


class DemoStack:
    """Starts the three parts in order and stops them in reverse, whatever happened."""

    def __init__(self, port: int = 3000, time_scale: float = 0.05) -> None:
        self.port = port
        self.time_scale = time_scale
        self.webhook_secret = new_webhook_secret()
        self._tmp = tempfile.TemporaryDirectory(prefix="novita-manager-demo-")
        self.data_dir = Path(self._tmp.name)
        self.simulator = SimulatorServer(SimulatorConfig(time_scale=time_scale))
        self.inbox = WebhookInbox(self.webhook_secret)
        self.service: ServiceServer | None = None

    @property
    def base_url(self) -> str:
        assert self.service is not None
        return self.service.base_url

    def start_simulator(self) -> None:
        self.simulator.start()

    def start_inbox(self) -> None:
        self.inbox.start()

    def start_service(self) -> None:
        configure_logging("warning", "console", [self.webhook_secret])
        sock = bind_socket(self.port)
        port = int(sock.getsockname()[1])
        settings = _ExplicitSettings(
            novita_api_base_url=self.simulator.base_url,
            database_url=f"sqlite+aiosqlite:///{self.data_dir / 'novita-manager.db'}",
            host="127.0.0.1",
            port=port,
            instance_poll_interval=0.5,
            instance_startup_timeout=120,
            request_timeout=5,
            retry_backoff_base=0.2,
            circuit_reset_timeout=2,
            webhook_url=self.inbox.url,
            webhook_secret=self.webhook_secret,
            webhook_allow_private=True,
            webhook_timeout=5,
            webhook_retry_base=0.5,
            log_level="warning",
            log_format="console",
        )
        self.service = ServiceServer(settings, sock)
        self.service.start()

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
        self.inbox.stop()
        self.simulator.stop()
        self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
