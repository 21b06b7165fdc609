"""The `novita-manager` script keeps `rich` and `pydantic.v1` out of the service's processes,
and only of them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SERVICE_STACK = """
    import sys
    from novita_manager.entry import keep_out_optional_imports
    {keep_out}
    from novita_manager.cli import serve_app, servers
    from novita_manager.cli import pipeline_worker
    import novita_manager.app
    import novita_manager.services.runtime
    app = novita_manager.app.create_app()
    assert "/api/instances" in app.openapi()["paths"]
    for name in ("rich", "pydantic.v1"):
        print(name, "imported" if sys.modules.get(name) is not None else "kept out")
"""


def _service_imports(keep_out: bool) -> dict[str, str]:
    script = SERVICE_STACK.format(keep_out="keep_out_optional_imports()" if keep_out else "")
    env = {**os.environ, "NOVITA_API_BASE_URL": "http://127.0.0.1:9/gpu-instance/openapi"}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


@pytest.mark.parametrize("keep_out", [True, False])
def test_the_service_builds_with_or_without_the_optional_modules(keep_out: bool) -> None:
    expected = "kept out" if keep_out else "imported"
    assert _service_imports(keep_out) == {"rich": expected, "pydantic.v1": expected}


def _command(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m novita_manager ARGS`, as the script runs it; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "novita_manager", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_serve_help_renders_without_rich() -> None:
    result = _command("serve", "--help")
    assert "Run the service" in result.stdout
    assert "╭" not in result.stdout  # typer's rich panels: not used for serve


def test_other_commands_keep_rich_help() -> None:
    result = _command("--help")
    assert "serve" in result.stdout
    assert "╭" in result.stdout  # typer's rich panels, as before
