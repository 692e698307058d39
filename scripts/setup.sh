#!/usr/bin/env bash
# Create a virtual environment and install cellcensus (editable) into it. Idempotent; quick on
# re-runs (it only installs again when pyproject.toml or uv.lock changed).
#
#   bash scripts/setup.sh                 # every extra + test and dev tools, from uv.lock
#   bash scripts/setup.sh build synth     # only these extras (what `scripts/demo.sh` needs)
#
# Environment:
#   CELLCENSUS_VENV=DIR       the environment to create (default .venv)
#   CELLCENSUS_DEPS=newest    ignore uv.lock: the newest releases pyproject.toml allows, with
#                             cellxgene-schema's exact pins lifted (scripts/newest-overrides.txt;
#                             use another CELLCENSUS_VENV, e.g. .venv-newest)
#   PYTHON=python3.12         the interpreter to create it with
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${CELLCENSUS_VENV:-.venv}"
DEPS="${CELLCENSUS_DEPS:-locked}"
UV_VERSION="0.13.9"
extras=("$@")
if [ ${#extras[@]} -eq 0 ]; then
  extras=(all test dev docs)
fi
case "$DEPS" in
  locked | newest) ;;
  *) echo "CELLCENSUS_DEPS must be 'locked' or 'newest', not '$DEPS'" >&2; exit 2 ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/uv" --version 2>/dev/null | grep -q " $UV_VERSION"; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" 2>&1 \
    | grep -v "^WARNING: Location" || true
fi

key="$(IFS=-; echo "${extras[*]}")"
stamp="$VENV/.cellcensus-$DEPS-$key-compiled"
if [ -f "$stamp" ] && [ ! pyproject.toml -nt "$stamp" ] && [ ! uv.lock -nt "$stamp" ] \
  && [ ! scripts/newest-overrides.txt -nt "$stamp" ]; then
  exit 0
fi

# --compile-bytecode: write the .pyc files at install time, as pip does (uv does not by default).
# Without them every process compiles each module it imports from source, and where
# PYTHONDONTWRITEBYTECODE is set (as on the CI machines) it does so on every start: importing the
# builder took 4.8-5.4 s that way against 1.5-1.8 s compiled on the 2-core machine
# (benchmarks/RESULTS.md, "Validation memory, start-up, official builder again").
export UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT="$VENV" UV_COMPILE_BYTECODE=1
if [ "$DEPS" = locked ]; then
  # exactly the versions of uv.lock (fails if the lock is out of date with pyproject.toml:
  # run `uv lock` then); --inexact keeps uv and pip in the environment
  args=()
  for e in "${extras[@]}"; do args+=(--extra "$e"); done
  "$VENV/bin/uv" sync --quiet --locked --inexact --python "$VENV/bin/python" "${args[@]}"
else
  # the newest releases pyproject.toml allows, with cellxgene-schema's exact pins lifted
  # (scripts/newest-overrides.txt says why)
  spec=".[$key]"
  spec="${spec//-/,}"
  "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --upgrade \
    --override scripts/newest-overrides.txt -e "$spec"
fi
# the editable project's own modules too (uv compiles the environment's packages only)
"$VENV/bin/python" -m compileall -q src > /dev/null
"$VENV/bin/python" -c "import cellcensus, tiledbsoma, cellxgene_census"
touch "$stamp"
