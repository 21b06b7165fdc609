"""The structure holds by itself: small modules (the layers are checked by `lint-imports`)."""

from __future__ import annotations

from pathlib import Path

import novita_manager

MAX_LINES = 350  # a module longer than this does more than one thing; split it by concern


def test_no_module_is_over_the_line_limit() -> None:
    package = Path(novita_manager.__file__).parent
    sizes = {
        str(path.relative_to(package)): len(path.read_text(encoding="utf-8").splitlines())
        for path in package.rglob("*.py")
    }
    assert len(sizes) > 50  # the package was found
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"
