#!/usr/bin/env bash
# Set everything up (venv, packages, the SeaweedFS S3 test server binary), then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The tests run in one pytest-xdist worker process, not in pytest's own: when native code crashes
# the worker (tiledbsoma 2.3 can abort or segfault in concurrent reads, upstream
# TileDB-SOMA#4437), xdist starts a new worker and pytest-rerunfailures runs the crashed test once
# more; a second crash of the same test fails the run. A test that *fails* is never re-run:
# --only-rerun takes a pattern no error message can match ('(?!)'), and crashes bypass it.
# Extra arguments come last, so `-n 0` runs in-process again (e.g. for --pdb).
exec "${CELLCENSUS_VENV:-.venv}/bin/python" -m pytest -n 1 --reruns 1 --only-rerun '(?!)' "$@"
