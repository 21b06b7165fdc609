"""`serve` with role all: the API in this process, the background work in a child process (two
on PostgreSQL by default: `background_processes`).

Why two processes: in one, reads and the pipelines share one event loop, and reads offered faster
than the process serves them starve every lifecycle (docs/benchmarks.md "Overload": 4-6 % of the
unloaded speed in one process, even with the excess refused), because each await of a pipeline
step waits for a full turn of a loop crowded with requests. As two processes the kernel schedules
each on its own, and the pipelines keep their speed whatever the API is offered (docs/design.md
"Processes").

How they share the work and the file:
- The child runs the pipelines, the status sync and the scheduled tasks (role worker, only
  /health and /metrics over HTTP on a UNIX socket). It holds the SQLite file's single-process
  guard (store/locking.py), so exactly one process claims rows; the API process opens the file
  without the guard and only stores requests and reads (WAL lets it write beside the child).
  A second `serve` on the same file stops at its start-up check, as before.
- The API wakes the child over a datagram socket when it stored new work, and its /metrics
  merges the child's series (api/worker_link.py).

Lifetime rules:
- The child dies with the parent: PR_SET_PDEATHSIG(SIGKILL) on Linux (elsewhere a thread watches
  the parent's pid), so `kill -9` of `serve` leaves no orphan holding the file or its leases; a
  crash stays a crash, and the next start continues the rows whose leases expired.
- SIGTERM or Ctrl-C: the API stops first (uvicorn's graceful shutdown), then the child gets SIGTERM
  and lets in-flight steps finish (Runtime.close), then the socket directory is removed.
- The child exits on its own (a crash, or a failed start): the parent logs it and stops as well,
  with exit code 1 (3 when the child never started), so whatever supervises `serve` restarts the
  whole service; it never serves requests without its pipelines.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from novita_manager.api.worker_link import WorkerLink, child_directories
from novita_manager.cli.exit_codes import ServeExitCode
from novita_manager.config import Settings
from novita_manager.logging import get_logger

log = get_logger("novita_manager.serve")
PR_SET_PDEATHSIG = 1
STOP_TIMEOUT = 30.0  # seconds for the child's graceful stop (pipelines drain up to 10 s each)
LINK_ENV = "NOVITA_MANAGER_WORKER_LINK"  # internal: tells `--workers N` API processes the link


def background_processes(settings: Settings) -> int:
    """PIPELINE_PROCESSES resolved: as set, else one on SQLite (its file allows one process)
    and on PostgreSQL two on a machine of two cores or more. One process's core bounds a burst:
    when 1,000 instances reach running at once it is busy throughout while the machine's other
    core is half idle (bench.burst). Claims skip each other's rows as replicas' do; the children
    after the first are spare (`Runtime.open(spare=True)`: backlog only, while a core is idle,
    no status sync or scheduled tasks)."""
    if settings.pipeline_processes or settings.uses_sqlite:
        return settings.pipeline_processes or 1
    return min(2, os.cpu_count() or 1)


class PipelineWorker:
    """The child processes of one `serve`, seen from the parent (`background_processes`)."""

    def __init__(self, settings: Settings) -> None:
        # model_copy skips validation on purpose: SERVICE_ROLE=worker alone is refused on SQLite,
        # but beside this process's API it is exactly the one process the file allows.
        self.settings = settings.model_copy(update={"service_role": "worker"})
        self.directory = Path(tempfile.mkdtemp(prefix="novita-manager-"))
        self.child_directories = child_directories(self.directory, background_processes(settings))
        self.link = WorkerLink(self.directory)
        self.processes: list[BaseProcess] = []
        self.exit_code: int | None = None  # set when a child ended on its own
        self._stopping = threading.Event()
        self._on_exit: Callable[[], None] = lambda: None

    def start(self, on_exit: Callable[[], None]) -> None:
        """Start the children; `on_exit` runs (in a thread) if one ends before `stop()`."""
        self._on_exit = on_exit
        # fork starts in milliseconds with the modules already imported (spawn re-imports them:
        # seconds); it is safe while this is the only thread and no event loop runs, which holds
        # here, before uvicorn starts (the watch threads start after the last fork). Otherwise
        # spawn.
        fork = threading.active_count() == 1 and sys.platform.startswith("linux")
        context = multiprocessing.get_context("fork" if fork else "spawn")
        for index, directory in enumerate(self.child_directories):
            # Forked, a child gets its server built here: what building it allocates and imports
            # is then shared with this process instead of copied in the child (docs/design.md
            # "Memory"). Spawned, it builds its own (an app cannot be pickled).
            server = worker_server(self.settings, directory, index) if fork else None
            process: BaseProcess = context.Process(  # type: ignore[attr-defined]
                target=worker_main,
                args=(self.settings, str(directory), os.getpid(), server, index),
                name=f"novita-manager-worker-{index}",
            )
            if fork:
                # Everything imported and built so far moves out of the collector's reach, in
                # both processes: a collection writes to every object it examines, which copied
                # the pages the child shares with this process (idle, 27 MiB more of PSS:
                # 146 -> 119).
                gc.freeze()
            process.start()
            self.processes.append(process)
        for process in self.processes:
            threading.Thread(
                target=self._watch, args=(process,), name="worker-watch", daemon=True
            ).start()

    def _watch(self, process: BaseProcess) -> None:
        process.join()
        if self._stopping.is_set():
            return
        code = process.exitcode
        if code in (0, -signal.SIGINT, -signal.SIGTERM):  # stopped like us (Ctrl-C, SIGTERM)
            log.info("pipeline_worker_stopped", pid=process.pid, exit_code=code)
        else:
            self.exit_code = ServeExitCode.SERVER_START if code == ServeExitCode.SERVER_START else 1
            log.error("pipeline_worker_exited", pid=process.pid, exit_code=code)
        self._on_exit()

    def stop(self) -> None:
        """SIGTERM the children and wait for their graceful stop (SIGKILL after STOP_TIMEOUT)."""
        self._stopping.set()
        alive = [process for process in self.processes if process.is_alive()]
        for process in alive:
            process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in alive:
            process.join(max(deadline - time.monotonic(), 0))
            if process.is_alive():
                log.warning("pipeline_worker_killed", pid=process.pid, after_seconds=STOP_TIMEOUT)
                process.kill()
                process.join(5)
        self.link.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def worker_server(settings: Settings, directory: Path, index: int = 0) -> Any:
    """The child's uvicorn server: the worker-role app on the link's UNIX socket, its
    configuration loaded (protocol classes imported), not started. Children after the first
    are spare (`Runtime.open(spare=True)`)."""
    import uvicorn

    from novita_manager.app import create_app

    link = WorkerLink(directory)
    config = uvicorn.Config(
        create_app(settings, worker_link=link, spare=index > 0),
        uds=str(link.http_path),
        log_config=None,
        access_log=False,
        lifespan="on",
        ws="none",  # no WebSocket routes: nothing to import for them
        timeout_graceful_shutdown=15,
    )
    config.load()
    return uvicorn.Server(config)


def worker_main(
    settings: Settings, directory: str, parent: int, server: Any = None, index: int = 0
) -> None:
    """The child: the worker-role app on a UNIX socket, until SIGTERM or the parent's death.
    `server`: built by the parent before a fork (`worker_server`); None when spawned. `index`:
    which child; those after the first are spare work (`run_as_spare_work`)."""
    die_with_parent(parent)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's `quiet_signals` (fork)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from novita_manager.cli.batch_scheduling import run_as_batch_work, run_as_spare_work
    from novita_manager.gc_tuning import tune_collector
    from novita_manager.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format, settings.secret_values())
    run_as_batch_work()  # the API process's reads first on a busy machine
    if index > 0:
        run_as_spare_work()  # the cores the machine has left, not the first child's share
    if server is None:  # spawned: nothing of the parent's state, its collector thresholds too
        tune_collector()
        server = worker_server(settings, Path(directory), index)
    server.run()
    if not server.started:
        sys.exit(ServeExitCode.SERVER_START)


def die_with_parent(parent: int) -> None:
    """Make the kernel SIGKILL this process when `parent` dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    else:  # pragma: no cover - Linux is where the service runs and is tested
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _watch_parent(parent: int) -> None:  # pragma: no cover - see die_with_parent
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)


class StopRequest:
    """A SIGINT or SIGTERM that arrived while `quiet_signals` held them: before uvicorn took
    the signals over (it is applied to `server` once there is one) or after it gave them back."""

    def __init__(self) -> None:
        self.requested = False
        self.server: Any = None  # a uvicorn.Server, once made

    def __call__(self, *_: object) -> None:
        self.requested = True
        if self.server is not None:
            self.server.should_exit = True


@contextlib.contextmanager
def quiet_signals() -> Iterator[StopRequest]:
    """While the API's uvicorn runs it owns SIGINT and SIGTERM; afterwards it raises again the one
    it caught. Catching that second delivery here lets the parent stop the child before exiting
    (the default action would end the parent at once, and PDEATHSIG the child with it); one that
    comes before uvicorn runs is kept in the StopRequest."""
    stop = StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
