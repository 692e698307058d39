#!/usr/bin/env bash
# Create .venv (once) and install cellcensus with its test tools. Idempotent and quiet on re-runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
stamp=.venv/.cellcensus-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q -e ".[test,dev,docs]" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import cellcensus, tiledbsoma, cellxgene_census" 
  touch "$stamp"
fi
