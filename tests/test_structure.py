"""The structure holds by itself: small modules (the layers are checked by `lint-imports`)."""

from __future__ import annotations

from pathlib import Path

import novita_manager
from tests.fixtures.fresh_python import run_fresh

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


def test_the_service_on_sqlite_leaves_the_postgresql_dialect_unimported() -> None:
    """Every module of the engine, the API and the CLI imports without SQLAlchemy's PostgreSQL
    dialect, which only a PostgreSQL database loads: imported by one module for a statement's
    type, it cost a service on SQLite 1 MiB of memory (issue 15's memory benchmark)."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import novita_manager.engine as engine\n"
        "import novita_manager.app, novita_manager.cli, novita_manager.services.runtime\n"
        "for module in pkgutil.walk_packages(engine.__path__, 'novita_manager.engine.'):\n"
        "    importlib.import_module(module.name)\n"
        "print(sorted(name for name in sys.modules if name.startswith('sqlalchemy.dialects.p')))\n"
    )
    assert run_fresh(code).strip() == "[]"
