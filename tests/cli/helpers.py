"""Run the command line as a user would: `python -m novita_manager.cli …` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

CLI = [sys.executable, "-m", "novita_manager.cli"]


def run_cli(
    *args: str, timeout: float = 60, cwd: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return _run(list(args), timeout, cwd, env)


def _run(
    args: list[str], timeout: float, cwd: str | None, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Wide, colourless output so tables are not folded; no inherited service URL or key."""
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in ("NOVITA_MANAGER_URL", "NOVITA_MANAGER_API_KEY")
    }
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**base, "COLUMNS": "200", "NO_COLOR": "1", **env},
        check=False,
    )


def instances(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _run(["instances", *args, "--url", url], 60, None, env)


def parsed(result: subprocess.CompletedProcess[str]) -> Any:
    """stdout of a `--json` command: exactly one JSON document."""
    return json.loads(result.stdout)


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
