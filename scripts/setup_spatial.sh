#!/usr/bin/env bash
# Create .venv-spatial: tiledbsoma 2.3 + spatialdata, for reading spatial builds as SpatialData and for
# tests/spatial/test_spatialdata.py. A second environment because spatialdata cannot be installed
# next to cellcensus' test dependencies (see docs/spatial.md, "Installing spatialdata").
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv-spatial/bin/python ]; then
  "$PY" -m venv .venv-spatial
  .venv-spatial/bin/python -m pip install -q --upgrade pip
fi
# pins keep pip's resolver from backtracking for tens of minutes
.venv-spatial/bin/python -m pip install -q "tiledbsoma==2.3.0" "spatialdata==0.7.3" \
  "dask==2026.1.1" "distributed==2026.1.1" "pandas<3" "xarray==2026.1.0" h5py 2>&1 \
  | grep -v "^WARNING: Location" || true
.venv-spatial/bin/python -c "import spatialdata, tiledbsoma.io.spatial"
