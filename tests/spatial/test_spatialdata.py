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
import sys
import warnings
from pathlib import Path
from typing import Any

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import tiledbsoma
import tiledbsoma.io

from cellcensus._spatial import write_obs_spatial_presence, write_scene
from tests._cli import python_path_env

from ._h5ad import LIBRARY, SLIDE_SEQ, VISIUM, hires_image, spatial_adata, write

ROOT = Path(__file__).resolve().parents[2]


def _spatial_python() -> Path | None:
    named = os.environ.get("CELLCENSUS_SPATIALDATA_PYTHON")
    candidate = Path(named) if named else ROOT / ".venv-spatial" / "bin" / "python"
    return candidate if candidate.is_file() else None


#: Chosen once at collection: the tests run with the machine's CELLCENSUS_* variables cleared
#: (the root ``isolated_aws_env`` fixture).
SPATIAL_PYTHON = _spatial_python()


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
    SPATIAL_PYTHON is None,
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

    python = SPATIAL_PYTHON
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


# --- a build of cellcensus read as SpatialData ------------------------------------------------

READ_BUILD = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, tiledbsoma, tiledbsoma.io.spatial
out = {}
with tiledbsoma.open(sys.argv[1]) as census:
    for organism in ("homo_sapiens", "mus_musculus"):
        exp = census["census_spatial_sequencing"][organism]
        # the whole experiment through a query without filters: tiledbsoma.io.spatial.to_spatialdata
        # (exp) links spots to obs by an obs_id column, which no census has
        sdata = exp.axis_query("RNA").to_spatialdata(X_name="raw")
        out[organism] = {
            "shapes": {k: len(v) for k, v in sdata.shapes.items()},
            "images": {k: list(v.shape) for k, v in sdata.images.items()},
            "n_obs": int(sdata.tables["RNA"].n_obs),
            "x_sum": float(sdata.tables["RNA"].X.sum()),
        }
print(json.dumps(out))
"""

READ_EXPORT = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, spatialdata
sdata = spatialdata.read_zarr(sys.argv[1])
table = sdata.tables["RNA"]
print(json.dumps({
    "shapes": {k: len(v) for k, v in sdata.shapes.items()},
    "images": {k: list(v.shape) for k, v in sdata.images.items()},
    "image_sum": {k: int(np.asarray(v).astype(np.int64).sum()) for k, v in sdata.images.items()},
    "n_obs": int(table.n_obs),
    "n_vars": int(table.n_vars),
    "x_sum": float(table.X.sum()),
    "datasets": sorted(set(table.obs["dataset_id"].astype(str))),
    "region": sorted(set(table.obs["region_key"].astype(str))),
}))
"""


def _build_spatial_truth(census_build: Path) -> dict[str, dict[str, Any]]:
    """Per spatial experiment of the build, read with tiledbsoma here: spots, images, X sum."""
    truth: dict[str, dict[str, Any]] = {}
    with (
        warnings.catch_warnings(),
        tiledbsoma.Collection[Any].open(str(census_build / "soma")) as census,
    ):
        warnings.filterwarnings("ignore", message="Support for spatial types is experimental")
        for organism in ("homo_sapiens", "mus_musculus"):
            exp = census["census_spatial_sequencing"][organism]
            shapes, images, per_dataset = {}, {}, {}
            for scene_id in exp.spatial:
                scene = exp.spatial[scene_id]
                shapes[f"{scene_id}_loc"] = len(scene.obsl["loc"].read().concat())
                for lib in scene.img.keys() if "img" in scene else []:
                    level = scene.img[lib]["hires"]
                    pixels = level.read().to_numpy()
                    total = int(pixels.astype(np.int64).sum())
                    images[f"{scene_id}_{lib}"] = (list(level.shape), total)
                x = exp.ms["RNA"].X["raw"]
                obs = exp.obs.read(
                    value_filter=f"dataset_id == '{scene_id}'", column_names=["soma_joinid"]
                ).concat()
                joinids = obs["soma_joinid"].to_numpy()
                values = x.read(coords=(joinids,)).tables().concat()["soma_data"]
                per_dataset[scene_id] = (len(joinids), float(np.asarray(values).sum()))
            truth[organism] = {"shapes": shapes, "images": images, "datasets": per_dataset}
    return truth


@pytest.mark.skipif(
    SPATIAL_PYTHON is None,
    reason="no Python with spatialdata (set CELLCENSUS_SPATIALDATA_PYTHON or run "
    "scripts/setup_spatial.sh)",
)
def test_to_spatialdata_reads_a_cellcensus_build(census_build: Path) -> None:
    """tiledbsoma's to_spatialdata of each whole spatial experiment of a real build."""
    python = SPATIAL_PYTHON
    assert python is not None
    run = subprocess.run(
        [str(python), "-c", READ_BUILD, str(census_build / "soma")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    truth = _build_spatial_truth(census_build)
    for organism, want in truth.items():
        assert got[organism]["shapes"] == want["shapes"], organism
        assert got[organism]["images"] == {k: v[0] for k, v in want["images"].items()}
        datasets = want["datasets"]
        assert got[organism]["n_obs"] == sum(n for n, _ in datasets.values())
        assert got[organism]["x_sum"] == pytest.approx(sum(s for _, s in datasets.values()))
    assert truth["homo_sapiens"]["images"]  # the demo's Visium capture area
    assert not truth["mus_musculus"]["images"]  # its Slide-seqV2 puck


def _spatial_cellcensus() -> bool:
    python = SPATIAL_PYTHON
    if python is None:
        return False
    run = subprocess.run(
        [str(python), "-c", "import cellcensus, spatialdata"],
        capture_output=True,
        check=False,
        env=python_path_env(dict(os.environ)),
    )
    return run.returncode == 0


@pytest.mark.skipif(
    not _spatial_cellcensus(),
    reason="no Python with spatialdata and cellcensus (run scripts/setup_spatial.sh, which "
    "installs both, or set CELLCENSUS_SPATIALDATA_PYTHON)",
)
def test_cellcensus_export_writes_a_spatialdata_store_of_one_dataset(
    census_build: Path, tmp_path: Path
) -> None:
    """`cellcensus export --format spatialdata` of one Visium dataset, read back by spatialdata."""
    python = SPATIAL_PYTHON
    assert python is not None
    truth = _build_spatial_truth(census_build)["homo_sapiens"]
    (scene_id,) = list(truth["datasets"])  # the demo's one Visium dataset
    store = tmp_path / "visium.zarr"
    export = subprocess.run(
        [str(python), "-m", "cellcensus", "--quiet", "export", "homo_sapiens",
         "--uri", str(census_build / "soma"), "--format", "spatialdata",
         "--obs-filter", f"dataset_id == '{scene_id}'", "--to", str(store)],
        capture_output=True, text=True, timeout=600, check=False,
        env=python_path_env(dict(os.environ)),  # the code under test in that Python
    )  # fmt: skip
    assert export.returncode == 0, export.stderr[-3000:]
    assert f"scenes {scene_id}" in export.stdout
    run = subprocess.run(
        [str(python), "-c", READ_EXPORT, str(store)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    n_cells, x_sum = truth["datasets"][scene_id]
    assert got["datasets"] == [scene_id]
    assert got["n_obs"] == n_cells
    assert got["x_sum"] == pytest.approx(x_sum)
    assert got["shapes"] == {f"{scene_id}_loc": n_cells}
    assert got["region"] == [f"{scene_id}_loc"]
    (image_key,) = list(truth["images"])
    assert got["images"] == {image_key: truth["images"][image_key][0]}
    assert got["image_sum"] == {image_key: truth["images"][image_key][1]}
    # exists now: refused without --overwrite, one line, non-zero exit
    again = subprocess.run(
        [str(python), "-m", "cellcensus", "export", "homo_sapiens",
         "--uri", str(census_build / "soma"), "--format", "spatialdata", "--to", str(store)],
        capture_output=True, text=True, timeout=600, check=False,
        env=python_path_env(dict(os.environ)),  # the code under test in that Python
    )  # fmt: skip
    assert again.returncode != 0
    assert "exists" in again.stderr + again.stdout


def test_export_to_spatialdata_without_spatialdata_says_what_to_install(
    census_build: Path, tmp_path: Path
) -> None:
    """In an environment without spatialdata (this project's test environment), the export is
    refused with one line naming the extra and the second environment."""
    import importlib.util

    if importlib.util.find_spec("spatialdata") is not None:
        pytest.skip("spatialdata is installed here")
    result = subprocess.run(
        [sys.executable, "-m", "cellcensus", "export", "homo_sapiens", "--uri",
         str(census_build / "soma"), "--format", "spatialdata", "--to", str(tmp_path / "x.zarr")],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "COLUMNS": "1000"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "[spatial]" in result.stderr
    assert "setup_spatial.sh" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "x.zarr").exists()
