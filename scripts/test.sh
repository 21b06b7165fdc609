#!/usr/bin/env bash
# Sets up a virtual environment with the dev extras (once) and runs the whole test suite.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import novita_manager, pytest" 2>/dev/null \
   || [ pyproject.toml -nt "$VENV/.installed" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e '.[dev]'
  touch "$VENV/.installed"
fi
# Most tests wait on real servers rather than compute, so they run in TEST_WORKERS processes
# (pytest-xdist; each has its own simulator and PostgreSQL server). `-n 0` runs them serially.
exec "$VENV/bin/python" -m pytest -n "${TEST_WORKERS:-3}" "$@"
