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
exec "$VENV/bin/python" -m pytest "$@"
