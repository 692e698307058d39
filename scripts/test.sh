#!/usr/bin/env bash
# Set everything up (venv, packages, the SeaweedFS S3 test server binary), then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${CELLCENSUS_VENV:-.venv}/bin/python" -m pytest "$@"
