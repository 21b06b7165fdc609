"""Run the simulator for tests, the demo and benchmarks, and drive its control API.

- `SimulatorServer`: a real uvicorn server on a free 127.0.0.1 port in a background thread
  (fast to start; its state is also reachable in-process through `.state`).
- `SimulatorProcess`: `python -m novita_manager.cli simulator` as a child process, so a
  benchmark measures the service, not a simulator sharing its interpreter.
- `SimulatorControl` / `AsyncSimulatorControl`: typed clients of `/_simulator` (defined in
  control_client.py, re-exported here).
The service's base URL is `http://127.0.0.1:<port>/gpu-instance/openapi` (`.base_url`).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

from novita_manager.config import SIMULATOR_API_KEY
from novita_manager.simulator.app import create_simulator_app
from novita_manager.simulator.config import SimulatorConfig
from novita_manager.simulator.control_client import AsyncSimulatorControl, SimulatorControl
from novita_manager.simulator.state import SimulatorState

__all__ = [
    "AsyncSimulatorControl",
    "SimulatorControl",
    "SimulatorProcess",
    "SimulatorServer",
    "free_port",
]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Endpoints:
    host: str
    port: int
    api_key: str

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the service takes as NOVITA_API_BASE_URL."""
        return f"{self.root_url}/gpu-instance/openapi"

    @property
    def v1_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


class SimulatorServer(_Endpoints):
    """The simulator on a free 127.0.0.1 port, served by uvicorn in a daemon thread."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1") -> None:
        self.config = config or SimulatorConfig()
        self.host = host
        self.port = 0
        self.api_key = self.config.api_key or SIMULATOR_API_KEY
        self.app = create_simulator_app(self.config)
        self.state: SimulatorState = self.app.state.simulator
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._control: SimulatorControl | None = None

    @property
    def control(self) -> SimulatorControl:
        if self._control is None:
            self._control = SimulatorControl(self.root_url)
        return self._control

    def start(self, timeout: float = 10.0) -> Self:
        # IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only then
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="simulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("simulator server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()


class SimulatorProcess(_Endpoints):
    """`novita-manager simulator` in a child process on a free port, ready when it answers.

    Runs the console script's entry point (`novita_manager.cli:main`) with this interpreter,
    the same as `python -m novita_manager.cli simulator ...`.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_level: str = "warning",
    ) -> None:
        self.config = config or SimulatorConfig()
        self.host = host
        self.port = port or free_port(host)
        self.api_key = self.config.api_key or SIMULATOR_API_KEY
        self.log_level = log_level
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None  # the child's stderr, a temporary file (a pipe could fill up)
        self._control: SimulatorControl | None = None

    @property
    def control(self) -> SimulatorControl:
        if self._control is None:
            self._control = SimulatorControl(self.root_url)
        return self._control

    def command(self) -> list[str]:
        cfg = self.config
        args = [
            sys.executable, "-c", "from novita_manager.cli import main; main()", "simulator",
            "--host", self.host, "--port", str(self.port), "--seed", str(cfg.seed),
            "--time-scale", repr(cfg.time_scale), "--log-level", self.log_level,
            "--autostart" if cfg.autostart else "--no-autostart", "--profile", cfg.profile,
        ]  # fmt: skip
        for name, value in cfg.overrides().items():
            text = (
                "none"
                if value is None
                else str(value).lower()
                if isinstance(value, bool)
                else value
            )
            args += ["--reading", f"{name}={text}"]
        if cfg.api_key:
            args += ["--api-key", cfg.api_key]
        return args

    def start(self, timeout: float = 20.0) -> Self:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=self._log)
        deadline = time.monotonic() + timeout
        while not self.control.health():
            if self.process.poll() is not None:
                self._log.seek(0)
                err = self._log.read().decode(errors="replace")
                self.stop()
                raise RuntimeError(f"simulator process exited: {err[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("simulator process did not answer in time")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        self.process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
