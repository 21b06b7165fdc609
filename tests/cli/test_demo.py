"""`novita-manager demo --once` from a clean environment ends well (the README's first command)."""

from __future__ import annotations

import re

from tests.cli.helpers import explain, run_cli


def test_demo_once_reaches_running_with_a_verified_webhook(tmp_path) -> None:
    # A .env in the working directory must not be read (it would point at the real Novita API).
    (tmp_path / ".env").write_text("NOVITA_API_BASE_URL=https://example.invalid\nLOG_LEVEL=bogus\n")
    # Nor the environment: an API key there would lock the demo's own client out.
    result = run_cli(
        "demo", "--once", "--port", "0", timeout=90, cwd=str(tmp_path),
        API_KEYS="not-for-the-demo", DATABASE_URL="mysql://nope",
    )  # fmt: skip
    assert result.returncode == 0, explain(result)
    out = result.stdout
    for text in ("creating", "starting", "running", "instance.running", "verified ✓"):
        assert text in out, explain(result)
    assert "Demo complete" in out
    assert re.search(r"dashboard +http://127\.0\.0\.1:\d+/ ", out), explain(result)
    # It ends cleanly: the stream it followed its instance on is closed at shutdown, not
    # cancelled with a traceback after the grace period.
    everything = out + result.stderr
    assert "graceful shutdown exceeded" not in everything, explain(result)
    assert "Traceback" not in everything, explain(result)
    assert "CancelledError" not in everything, explain(result)
