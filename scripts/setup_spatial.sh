#!/usr/bin/env bash
# Create .venv-spatial: cellcensus (core dependencies, editable) + tiledbsoma 2.3 + spatialdata, for
# reading spatial builds as SpatialData (`cellcensus export --format spatialdata`,
# tiledbsoma's to_spatialdata) and for the tests in tests/spatial/test_spatialdata.py. A second
# environment because spatialdata cannot be installed next to cellcensus[synth] and the test
# dependencies (see docs/spatial.md, "Installing spatialdata").
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
UV_VERSION="0.13.9"
if [ ! -x .venv-spatial/bin/python ]; then
  "$PY" -m venv .venv-spatial
fi
if ! .venv-spatial/bin/uv --version 2>/dev/null | grep -q " $UV_VERSION"; then
  .venv-spatial/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" 2>&1 \
    | grep -v "^WARNING: Location" || true
fi
# uv's resolver (pip backtracks for many minutes over s3fs/aiobotocore/boto3); the pins are the
# versions checked together
.venv-spatial/bin/uv pip install --quiet --python .venv-spatial/bin/python -e . \
  "tiledbsoma==2.3.0" "spatialdata==0.7.3" "dask==2026.1.1" "distributed==2026.1.1" "pandas<3" \
  "xarray==2026.1.0" h5py
.venv-spatial/bin/python -c "import cellcensus, spatialdata, tiledbsoma.io.spatial"
