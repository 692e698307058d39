"""An experiment with our scenes read by tiledbsoma's ``ExperimentAxisQuery.to_spatialdata`` (the
official builder's test reads it this way) with the real ``spatialdata`` package.

``spatialdata`` cannot be installed next to this project's test dependencies (docs/spatial.md,
"Installing spatialdata"), so the reads run in a second environment: the Python named by
``CELLCENSUS_SPATIALDATA_PYTHON``, else ``.venv-spatial/bin/python`` (made by
``scripts/setup_spatial.sh``). Without one the test is skipped, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from pathlib import Path

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import tiledbsoma
import tiledbsoma.io

from cellcensus._spatial import write_obs_spatial_presence, write_scene

from ._h5ad import LIBRARY, SLIDE_SEQ, VISIUM, hires_image, spatial_adata, write

ROOT = Path(__file__).resolve().parents[2]


def _spatial_python() -> Path | None:
    named = os.environ.get("CELLCENSUS_SPATIALDATA_PYTHON")
    candidate = Path(named) if named else ROOT / ".venv-spatial" / "bin" / "python"
    return candidate if candidate.is_file() else None


READ = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, tiledbsoma
out = {}
with tiledbsoma.Experiment.open(sys.argv[1]) as exp:
    sdata = exp.axis_query("RNA").to_spatialdata(X_name="data")
    out["shapes"] = sorted(sdata.shapes)
    out["images"] = sorted(sdata.images)
    out["tables"] = sorted(sdata.tables)
    for key, shapes in sdata.shapes.items():
        shapes = shapes.sort_values("soma_joinid")
        xy = shapes.get_coordinates()
        transforms = shapes.attrs["transform"].items()
        out[key] = {
            "x": xy["x"].tolist(),
            "y": xy["y"].tolist(),
            "joinid": shapes["soma_joinid"].tolist(),
            "radius": sorted(set(shapes["radius"])),
            "transforms": {k: type(v).__name__ for k, v in transforms},
        }
    for key, image in sdata.images.items():
        axes = ("x", "y")
        out[key] = {
            "dims": list(image.dims),
            "shape": list(image.shape),
            "sum": int(np.asarray(image).astype(np.int64).sum()),
            "transforms": {
                k: [type(v).__name__, np.asarray(v.to_affine_matrix(axes, axes)).tolist()]
                for k, v in image.attrs["transform"].items()
            },
        }
    table = sdata.tables["RNA"]
    out["region_key"] = table.obs["region_key"].astype(str).tolist()
    out["instance_key"] = table.obs["instance_key"].tolist()
    slide = tiledbsoma.AxisQuery(value_filter="dataset_id == 'slide'")
    part = exp.axis_query("RNA", obs_query=slide).to_spatialdata(X_name="data")
    out["query_shapes"] = sorted(part.shapes)
    out["query_images"] = sorted(part.images)
    out["query_n_obs"] = int(part.tables["RNA"].n_obs)
print(json.dumps(out))
"""


@pytest.mark.skipif(
    _spatial_python() is None,
    reason="no Python with spatialdata (set CELLCENSUS_SPATIALDATA_PYTHON or run "
    "scripts/setup_spatial.sh)",
)
def test_to_spatialdata_reads_our_scenes(tmp_path: Path) -> None:
    image = hires_image(40, 30)
    visium = spatial_adata(VISIUM, n=40, image=image)
    slide = spatial_adata(SLIDE_SEQ, n=25)
    paths = {
        "visium": write(visium, tmp_path / "v.h5ad"),
        "slide": write(slide, tmp_path / "s.h5ad"),
    }
    # obs/var/X of the experiment: the two datasets' spots, joinids 0..64 in this order
    both = anndata.concat([visium, slide], label="dataset_id", keys=["visium", "slide"])
    both.obs_names_make_unique()
    both.obs = pd.DataFrame(
        {"dataset_id": both.obs["dataset_id"].astype(str)}, index=both.obs_names
    )
    both.obsm = {}
    uri = str(tmp_path / "exp")
    tiledbsoma.io.from_anndata(uri, both, measurement_name="RNA")
    with tiledbsoma.Experiment.open(uri, "w") as exp:
        exp.add_new_collection("spatial")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Support for spatial types is experimental")
        parts = []
        for start, (dataset_id, path) in zip((0, 40), paths.items(), strict=True):
            n = 40 if dataset_id == "visium" else 25
            with h5py.File(path, "r") as f:
                parts.append(
                    write_scene(
                        f, uri, dataset_id=dataset_id, soma_joinids=np.arange(start, start + n)
                    )
                )
        write_obs_spatial_presence(uri, parts)

    python = _spatial_python()
    assert python is not None
    run = subprocess.run(
        [str(python), "-c", READ, uri], capture_output=True, text=True, timeout=600, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])

    assert got["shapes"] == ["slide_loc", "visium_loc"]
    assert got["images"] == [f"visium_{LIBRARY}"]
    assert got["tables"] == ["RNA"]
    # SpatialData points: x = obsm["spatial"][:, 0], y = obsm["spatial"][:, 1] (scanpy's convention)
    v = got["visium_loc"]
    assert v["joinid"] == list(range(40))
    np.testing.assert_allclose(v["x"], visium.obsm["spatial"][:, 0])
    np.testing.assert_allclose(v["y"], visium.obsm["spatial"][:, 1])
    assert v["radius"] == [12.5 / 2]
    assert v["transforms"] == {"visium": "Identity"}
    s = got["slide_loc"]
    assert s["joinid"] == list(range(40, 65))
    np.testing.assert_allclose(s["x"], slide.obsm["spatial"][:, 0])
    assert s["radius"] == [2.0]
    # the image: (c, y, x) = (channel, rows, columns), scaled back to full resolution
    img = got[f"visium_{LIBRARY}"]
    assert img["dims"] == ["c", "y", "x"]
    assert img["shape"] == [3, 40, 30]
    assert img["sum"] == int(image.astype(np.int64).sum())
    (name, matrix) = img["transforms"]["visium"]
    np.testing.assert_allclose(np.asarray(matrix)[:2, :2], np.diag([1 / 0.05, 1 / 0.05]))
    # spots of the table are linked to their shapes
    assert got["region_key"] == ["visium_loc"] * 40 + ["slide_loc"] * 25
    # a query picks its scenes through obs_spatial_presence
    assert got["query_shapes"] == ["slide_loc"]
    assert got["query_images"] == []
    assert got["query_n_obs"] == 25
    assert name in {"Scale", "Affine", "Sequence"}
