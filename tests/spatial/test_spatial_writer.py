"""The scene writer (``cellcensus._spatial``) on small spatial H5ADs: what tiledbsoma's Scene API
reads back, the obs_spatial_presence table, and the refusals of bad spatial input."""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import pyarrow as pa
import pytest
import tiledbsoma

from cellcensus._spatial import (
    OBS_SPATIAL_PRESENCE_SCHEMA,
    check_assays,
    read_spatial_source,
    write_obs_spatial_presence,
    write_scene,
)
from cellcensus.errors import BadInputError

from ._h5ad import LIBRARY, SLIDE_SEQ, VISIUM, hires_image, spatial_adata, write

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import anndata


@pytest.fixture(autouse=True)
def _quiet_spatial_disclaimer() -> Iterator[None]:
    """tiledbsoma warns that its spatial classes are experimental on every open."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Support for spatial types is experimental")
        yield


@pytest.fixture
def experiment(tmp_path: Path) -> str:
    """An empty SOMA Experiment with its ``spatial`` collection, as the builder creates it."""
    uri = str(tmp_path / "exp")
    with tiledbsoma.Experiment.create(uri) as exp:
        exp.add_new_collection("spatial")
    return uri


def _write_scene(path: Path, uri: str, dataset_id: str, joinids: Any, **kw: Any) -> pa.Table:
    with h5py.File(path, "r") as f:
        return write_scene(f, uri, dataset_id=dataset_id, soma_joinids=joinids, **kw)


def test_visium_scene_reads_back_through_the_scene_api(tmp_path: Path, experiment: str) -> None:
    image = hires_image(300, 77, channels=4)  # RGBA: only RGB is kept
    adata = spatial_adata(VISIUM, n=40, image=image)
    path = write(adata, tmp_path / "v.h5ad")
    joinids = np.arange(100, 140)
    rows = _write_scene(path, experiment, "ds-v", joinids, image_block_bytes=77 * 4 * 10)

    assert rows.schema.equals(OBS_SPATIAL_PRESENCE_SCHEMA)
    assert rows.to_pydict() == {
        "soma_joinid": list(range(100, 140)),
        "scene_id": ["ds-v"] * 40,
        "data": [True] * 40,
    }
    with tiledbsoma.Experiment.open(experiment) as exp:
        scene = exp.spatial["ds-v"]
        assert isinstance(scene, tiledbsoma.Scene)
        assert scene.coordinate_space is not None
        axes = scene.coordinate_space.axes
        assert [(a.name, a.unit) for a in axes] == [("y", "pixels"), ("x", "pixels")]
        assert json.loads(scene.metadata["soma_coordinate_space"]) == [
            {"name": "y", "unit": "pixels"},
            {"name": "x", "unit": "pixels"},
        ]

        loc = scene.obsl["loc"]
        assert isinstance(loc, tiledbsoma.PointCloudDataFrame)
        table = loc.read().concat().sort_by("soma_joinid")
        assert table.column_names == ["y", "x", "soma_joinid"]
        assert table.schema.field("y").type == pa.float64()
        np.testing.assert_array_equal(table["y"].to_numpy(), adata.obsm["spatial"][:, 0])
        np.testing.assert_array_equal(table["x"].to_numpy(), adata.obsm["spatial"][:, 1])
        np.testing.assert_array_equal(table["soma_joinid"].to_numpy(), joinids)
        assert loc.metadata["soma_geometry"] == 12.5 / 2
        assert loc.metadata["soma_geometry_type"] == "radius"
        identity = scene.get_transform_to_point_cloud_dataframe("loc")
        assert isinstance(identity, tiledbsoma.IdentityTransform)
        assert identity.input_axes == identity.output_axes == ("y", "x")

        img = scene.img[LIBRARY]
        assert isinstance(img, tiledbsoma.MultiscaleImage)
        assert img.level_count == 1
        assert list(img.levels()) == ["hires"]
        assert img.data_axis_order == ("soma_channel", "x", "y")
        assert img.metadata["soma_level_hires"] == "[3, 300, 77]"
        assert json.loads(img.metadata["soma_multiscale_image_schema"]) == {
            "data_axis_permutation": [2, 1, 0],
            "shape": [3, 300, 77],
            "has_channel_axis": True,
            "datatype": "C",
        }
        pixels = img["hires"].read().to_numpy()
        assert pixels.dtype == np.uint8
        np.testing.assert_array_equal(pixels, np.transpose(image[:, :, :3], (2, 0, 1)))
        scale = scene.get_transform_to_multiscale_image(LIBRARY)
        assert isinstance(scale, tiledbsoma.ScaleTransform)
        assert scale.input_axes == scale.output_axes == ("y", "x")
        np.testing.assert_array_equal(scale.scale_factors, [0.05, 0.05])
        assert json.loads(scene.img.metadata[f"soma_scene_registry_{LIBRARY}"]) == {
            "transform_type": "ScaleTransform",
            "transform": {"input_axes": ["y", "x"], "output_axes": ["y", "x"],
                          "scale_factors": [0.05, 0.05]},
        }  # fmt: skip
        assert json.loads(scene.obsl.metadata["soma_scene_registry_loc"]) == {
            "transform_type": "IdentityTransform",
            "transform": {"input_axes": ["y", "x"], "output_axes": ["y", "x"]},
        }


@pytest.mark.parametrize("block_bytes", [1, 45 * 3 * 7, 10**9])
def test_image_blocks_do_not_change_the_pixels(
    tmp_path: Path, experiment: str, block_bytes: int
) -> None:
    image = hires_image(61, 45)
    path = write(spatial_adata(VISIUM, image=image), tmp_path / "v.h5ad")
    _write_scene(path, experiment, "d", np.arange(40), image_block_bytes=block_bytes)
    with tiledbsoma.Experiment.open(experiment) as exp:
        pixels = exp.spatial["d"].img[LIBRARY]["hires"].read().to_numpy()
    np.testing.assert_array_equal(pixels, np.transpose(image, (2, 0, 1)))


def test_slide_seq_scene_has_points_and_no_image(tmp_path: Path, experiment: str) -> None:
    adata = spatial_adata(SLIDE_SEQ, n=25, coordinate_dtype=np.int64)
    path = write(adata, tmp_path / "s.h5ad")
    _write_scene(path, experiment, "ds-s", np.arange(25))
    with tiledbsoma.Experiment.open(experiment) as exp:
        scene = exp.spatial["ds-s"]
        assert "img" not in scene
        loc = scene.obsl["loc"]
        assert loc.metadata["soma_geometry"] == 2.0
        table = loc.read().concat().sort_by("soma_joinid")
        assert table.schema.field("x").type == pa.int64()
        np.testing.assert_array_equal(table["x"].to_numpy(), adata.obsm["spatial"][:, 1])


def test_included_rows_pair_with_their_joinids(tmp_path: Path, experiment: str) -> None:
    adata = spatial_adata(VISIUM, n=40)
    path = write(adata, tmp_path / "v.h5ad")
    rows = np.array([1, 2, 5, 39])
    presence = _write_scene(path, experiment, "d", [7, 8, 9, 10], rows=rows)
    assert presence["soma_joinid"].to_pylist() == [7, 8, 9, 10]
    with tiledbsoma.Experiment.open(experiment) as exp:
        table = exp.spatial["d"].obsl["loc"].read().concat().sort_by("soma_joinid")
    np.testing.assert_array_equal(table["y"].to_numpy(), adata.obsm["spatial"][rows, 0])


@pytest.mark.parametrize(
    ("joinids", "rows"),
    [
        (np.arange(39), None),  # one joinid short
        ([1, 2], [3, 1]),  # rows not ascending
        ([1, 2], [0, 40]),  # row out of range
        ([1, 1], [0, 1]),  # duplicate joinid
        ([], []),  # no spots
    ],
)
def test_inconsistent_joinids_are_refused(
    tmp_path: Path, experiment: str, joinids: Any, rows: Any
) -> None:
    path = write(spatial_adata(VISIUM, n=40), tmp_path / "v.h5ad")
    with pytest.raises(ValueError, match=r"joinid|rows"):
        _write_scene(path, experiment, "d", joinids, rows=rows)
    with tiledbsoma.Experiment.open(experiment) as exp:
        assert "d" not in exp.spatial


def test_obs_spatial_presence_table(tmp_path: Path, experiment: str) -> None:
    v = write(spatial_adata(VISIUM, n=40), tmp_path / "v.h5ad")
    s = write(spatial_adata(SLIDE_SEQ, n=25), tmp_path / "s.h5ad")
    parts = [
        _write_scene(v, experiment, "dv", np.arange(40)),
        _write_scene(s, experiment, "ds", np.arange(40, 65)),
    ]
    assert write_obs_spatial_presence(experiment, parts) == 65
    with tiledbsoma.Experiment.open(experiment) as exp:
        frame = exp.obs_spatial_presence
        assert isinstance(frame, tiledbsoma.DataFrame)
        assert frame.index_column_names == ("soma_joinid", "scene_id")
        assert frame.domain == ((0, 64), ("", ""))
        table = frame.read().concat()
        assert table.schema.names == ["soma_joinid", "scene_id", "data"]
        assert table.schema.field("scene_id").type == pa.large_string()
        assert table.schema.field("data").type == pa.bool_()
        got = table.to_pandas().sort_values("soma_joinid")
        assert got["soma_joinid"].tolist() == list(range(65))
        assert got["scene_id"].tolist() == ["dv"] * 40 + ["ds"] * 25
        assert got["data"].all()
        assert sorted(exp.spatial.keys()) == ["ds", "dv"]
    with pytest.raises(ValueError, match="no scenes"):
        write_obs_spatial_presence(experiment, [])


def test_a_scene_is_not_written_twice(tmp_path: Path, experiment: str) -> None:
    path = write(spatial_adata(SLIDE_SEQ), tmp_path / "s.h5ad")
    _write_scene(path, experiment, "d", np.arange(40))
    with pytest.raises(ValueError, match="already exists"):
        _write_scene(path, experiment, "d", np.arange(40))


def test_check_assays() -> None:
    assert check_assays([VISIUM] * 3, dataset_id="d") is True
    assert check_assays(["EFO:0009922"], dataset_id="d") is False
    with pytest.raises(BadInputError, match="mixes spatial assays") as err:
        check_assays([VISIUM, "EFO:0009922"], dataset_id="d")
    assert err.value.dataset_id == "d"
    assert err.value.field == "assay_ontology_term_id"


def _lib(**changes: Any) -> dict[str, Any]:
    lib: dict[str, Any] = {
        "images": {"hires": hires_image(10, 12)},
        "scalefactors": {"spot_diameter_fullres": 10.0, "tissue_hires_scalef": 0.1},
    }
    lib.update(changes)
    return lib


def _no_obsm(a: anndata.AnnData) -> anndata.AnnData:
    del a.obsm["spatial"]
    return a


def _nan_location(a: anndata.AnnData) -> anndata.AnnData:
    a.obsm["spatial"][3, 1] = np.nan
    return a


def _three_columns(a: anndata.AnnData) -> anndata.AnnData:
    a.obsm["spatial"] = np.zeros((a.n_obs, 3))
    return a


def _no_uns_spatial(a: anndata.AnnData) -> anndata.AnnData:
    del a.uns["spatial"]
    return a


#: (case, make the AnnData, field named in the error)
BAD: list[tuple[str, Callable[[], anndata.AnnData], str]] = [
    ("no uns spatial", lambda: _no_uns_spatial(spatial_adata()), "uns['spatial']"),
    ("no is_single", lambda: spatial_adata(spatial_uns={LIBRARY: _lib()}),
     "uns['spatial']['is_single']"),
    ("is_single False",
     lambda: spatial_adata(spatial_uns={"is_single": np.bool_(False), LIBRARY: _lib()}),
     "uns['spatial']['is_single']"),
    ("is_single not bool", lambda: spatial_adata(spatial_uns={"is_single": 1, LIBRARY: _lib()}),
     "uns['spatial']['is_single']"),
    ("two libraries",
     lambda: spatial_adata(spatial_uns={"is_single": True, "a": _lib(), "b": _lib()}),
     "uns['spatial']"),
    ("Visium without library", lambda: spatial_adata(spatial_uns={"is_single": True}),
     "uns['spatial']"),
    ("Slide-seq with library",
     lambda: spatial_adata(SLIDE_SEQ, spatial_uns={"is_single": True, LIBRARY: _lib()}),
     "uns['spatial']"),
    ("float image", lambda: spatial_adata(image=np.zeros((10, 12, 3), dtype=np.float32)),
     f"uns['spatial']['{LIBRARY}']['images']['hires']"),
    ("grey image", lambda: spatial_adata(image=np.zeros((10, 12), dtype=np.uint8)),
     f"uns['spatial']['{LIBRARY}']['images']['hires']"),
    ("five channels", lambda: spatial_adata(image=np.zeros((10, 12, 5), dtype=np.uint8)),
     f"uns['spatial']['{LIBRARY}']['images']['hires']"),
    ("no hires",
     lambda: spatial_adata(spatial_uns={"is_single": True, LIBRARY: _lib(images={})}),
     f"uns['spatial']['{LIBRARY}']['images']['hires']"),
    ("no scale factor",
     lambda: spatial_adata(spatial_uns={"is_single": True, LIBRARY: _lib(
         scalefactors={"spot_diameter_fullres": 10.0})}),
     f"uns['spatial']['{LIBRARY}']['scalefactors']['tissue_hires_scalef']"),
    ("zero scale factor",
     lambda: spatial_adata(spatial_uns={"is_single": True, LIBRARY: _lib(
         scalefactors={"spot_diameter_fullres": 10.0, "tissue_hires_scalef": 0.0})}),
     f"uns['spatial']['{LIBRARY}']['scalefactors']['tissue_hires_scalef']"),
    ("no obsm spatial", lambda: _no_obsm(spatial_adata()), "obsm['spatial']"),
    ("three columns", lambda: _three_columns(spatial_adata()), "obsm['spatial']"),
    ("NaN location", lambda: _nan_location(spatial_adata()), "obsm['spatial']"),
    ("mixed assays", lambda: spatial_adata(assays=[VISIUM] * 39 + ["EFO:0009922"]),
     "assay_ontology_term_id"),
    ("two spatial assays", lambda: spatial_adata(assays=[VISIUM] * 39 + [SLIDE_SEQ]),
     "assay_ontology_term_id"),
    ("not spatial", lambda: spatial_adata(assays=["EFO:0009922"] * 40),
     "assay_ontology_term_id"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "make", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_spatial_input_is_refused_and_writes_nothing(
    tmp_path: Path, experiment: str, case: str, make: Callable[[], anndata.AnnData], field: str
) -> None:
    path = write(make(), tmp_path / "bad.h5ad")
    with pytest.raises(BadInputError) as err:
        _write_scene(path, experiment, "bad", np.arange(40))
    assert err.value.dataset_id == "bad", case
    assert err.value.field == field, str(err.value)
    assert str(err.value).startswith(f"dataset 'bad': field {field!r}: ")
    with tiledbsoma.Experiment.open(experiment) as exp:
        assert "bad" not in exp.spatial


def test_read_spatial_source(tmp_path: Path) -> None:
    path = write(spatial_adata(VISIUM, image=hires_image(20, 30, 4)), tmp_path / "v.h5ad")
    with h5py.File(path, "r") as f:
        source = read_spatial_source(f, dataset_id="v")
    assert source.assay == VISIUM
    assert source.n_obs == 40
    assert source.library_id == LIBRARY
    assert source.hires_shape == (20, 30, 4)
    assert source.tissue_hires_scalef == 0.05
    assert source.point_radius == 6.25
    assert source.coordinate_dtype == np.float64
