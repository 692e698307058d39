"""census_spatial_sequencing: a spatial + non-spatial corpus built, checked against its sources.

The corpus: a human single-cell dataset, a human Visium V1 capture area (some spots marked
non-primary: they are left out), a human and a mouse Slide-seqV2 puck, and a macaque Slide-seqV2
puck (macaque has a census_data experiment but no spatial one). Expected values are computed from
the H5ADs with anndata (``expected_census``), independently of the builder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from typing import TYPE_CHECKING, Any

import cellxgene_census
import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tiledbsoma as soma

from cellcensus.builder import BuildOptions, build_census, validate_build
from cellcensus.errors import BadInputError, IntegrityError
from cellcensus.synth import DatasetSpec, SynthCorpus, synth_corpus

from .expected_census import ExpectedDataset, census_tables, expected_datasets

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

TAG = "2026-03-03"
HUMAN, MOUSE, MACAQUE = "NCBITaxon:9606", "NCBITaxon:10090", "NCBITaxon:9544"
VISIUM, SLIDE = "EFO:0022857", "EFO:0030062"
INT64_MIN = int(np.iinfo(np.int64).min)
#: Visium spots marked non-primary (every 7th): not in the census
NON_PRIMARY = slice(0, None, 7)


@pytest.fixture(autouse=True)
def _quiet_spatial_disclaimer() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Support for spatial types is experimental")
        yield


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> SynthCorpus:
    specs = [
        DatasetSpec(dataset_id="h-cells", organism_ontology_term_id=HUMAN, n_cells=300,
                    n_genes=400, tissues=("UBERON:0002107",)),
        DatasetSpec(dataset_id="h-visium", organism_ontology_term_id=HUMAN, n_cells=4992,
                    assays=(VISIUM,), tissues=("UBERON:0002107",), n_genes=300),
        DatasetSpec(dataset_id="h-slide", organism_ontology_term_id=HUMAN, n_cells=150,
                    assays=(SLIDE,), tissues=("UBERON:0002107",), n_genes=250),
        DatasetSpec(dataset_id="m-slide", organism_ontology_term_id=MOUSE, n_cells=120,
                    assays=(SLIDE,), tissues=("UBERON:0000956",), n_genes=200),
        DatasetSpec(dataset_id="q-slide", organism_ontology_term_id=MACAQUE, n_cells=60,
                    assays=(SLIDE,), tissues=("UBERON:0002048",), n_genes=150),
    ]  # fmt: skip
    corpus = synth_corpus(tmp_path_factory.mktemp("spatial-corpus"), seed=4, specs=specs)
    with h5py.File(corpus.paths["h-visium"], "r+") as f:
        primary = f["obs/is_primary_data"][()]
        primary[NON_PRIMARY] = False
        f["obs/is_primary_data"][...] = primary
    return corpus


@pytest.fixture(scope="module")
def build(corpus: SynthCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built with small chunks and bands (several band tasks per experiment), validated."""
    out = tmp_path_factory.mktemp("spatial-build") / "build"
    build_census(
        corpus.manifest_path,
        out,
        options=BuildOptions(
            tag=TAG, chunk_nnz=20_000, band_nnz=60_000, validation_sample_cells=64
        ),
    )
    return out


@pytest.fixture(scope="module")
def expected(corpus: SynthCorpus) -> dict[str, ExpectedDataset]:
    return {d.dataset_id: d for d in expected_datasets(corpus)}


def _obs(build: Path, organism: str) -> pd.DataFrame:
    with soma.Collection[Any].open(str(build / "soma")) as census:
        obs: pd.DataFrame = (
            census["census_spatial_sequencing"][organism].obs.read().concat().to_pandas()
        )
    return obs


def test_spatial_obs_equals_the_sources(build: Path, expected: dict[str, ExpectedDataset]) -> None:
    """Primary spots only, in H5AD order, with in_tissue/array_row/array_col as the official
    builder writes them: the H5AD's, null for a dataset without them when another dataset of the
    experiment has them, INT64_MIN when no dataset of the experiment has them."""
    assert expected["h-visium"].spatial
    assert not expected["h-cells"].spatial
    assert "q-slide" not in expected
    human = _obs(build, "homo_sapiens")
    assert list(human["dataset_id"].unique()) == ["h-visium", "h-slide"]
    visium = expected["h-visium"]
    assert len(visium.obs) == 4992 - len(range(4992)[NON_PRIMARY])
    got = human[human["dataset_id"] == "h-visium"]
    assert got["observation_joinid"].tolist() == visium.obs["observation_joinid"].tolist()
    assert got["is_primary_data"].all()
    for column in ("in_tissue", "array_row", "array_col"):
        np.testing.assert_array_equal(got[column].to_numpy(), visium.obs[column].to_numpy())
        assert human.loc[human["dataset_id"] == "h-slide", column].isna().all()
    mouse = _obs(build, "mus_musculus")
    assert (mouse["dataset_id"] == "m-slide").all()
    assert len(mouse) == len(expected["m-slide"].obs)
    for column in ("in_tissue", "array_row", "array_col"):
        assert (mouse[column] == INT64_MIN).all()
    assert list(human.columns[20:25]) == [
        "tissue_type",
        "in_tissue",
        "array_row",
        "array_col",
        "tissue_general",
    ]
    with soma.Collection[Any].open(str(build / "soma")) as census:
        schema = census["census_spatial_sequencing"]["homo_sapiens"].obs.schema
        assert schema.field("in_tissue").type == pa.int64()
        assert sorted(census["census_spatial_sequencing"]["homo_sapiens"].ms["RNA"].X) == ["raw"]
        # spatial assays never reach census_data
        data = census["census_data"]["homo_sapiens"].obs.read(column_names=["dataset_id"])
        assert set(data.concat()["dataset_id"].to_pylist()) == {"h-cells"}


def test_spatial_x_equals_the_source_counts(
    build: Path, expected: dict[str, ExpectedDataset]
) -> None:
    with soma.Collection[Any].open(str(build / "soma")) as census:
        for d in expected.values():
            if not d.spatial:
                continue
            exp = census["census_spatial_sequencing"][d.organism]
            obs = exp.obs.read(
                value_filter=f"dataset_id == '{d.dataset_id}'", column_names=["soma_joinid"]
            )
            joinids = obs.concat()["soma_joinid"].to_numpy()
            var = exp.ms["RNA"].var.read().concat().to_pandas()
            col = pd.Series(var["soma_joinid"].to_numpy(), index=var["feature_id"])
            got = (
                exp.ms["RNA"].X["raw"].read(coords=(joinids,)).tables().concat().to_pandas()
            ).sort_values(["soma_dim_0", "soma_dim_1"], ignore_index=True)
            coo = d.counts.tocoo()
            want = pd.DataFrame(
                {
                    "soma_dim_0": joinids[coo.row],
                    "soma_dim_1": col[d.var.index].to_numpy()[coo.col],
                    "soma_data": coo.data,
                }
            ).sort_values(["soma_dim_0", "soma_dim_1"], ignore_index=True)
            pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_scenes_locations_images_and_presence(
    build: Path, expected: dict[str, ExpectedDataset]
) -> None:
    with soma.Collection[Any].open(str(build / "soma")) as census:
        for organism, ids in (
            ("homo_sapiens", ["h-visium", "h-slide"]),
            ("mus_musculus", ["m-slide"]),
        ):
            exp = census["census_spatial_sequencing"][organism]
            assert sorted(exp.spatial.keys()) == sorted(ids)
            obs = exp.obs.read(column_names=["soma_joinid", "dataset_id"]).concat().to_pandas()
            presence = exp.obs_spatial_presence.read().concat().to_pandas()
            presence = presence.sort_values("soma_joinid", ignore_index=True)
            assert presence["soma_joinid"].tolist() == obs["soma_joinid"].tolist()
            assert presence["scene_id"].tolist() == obs["dataset_id"].astype(str).tolist()
            assert presence["data"].all()
            for dataset_id in ids:
                d = expected[dataset_id]
                scene = exp.spatial[dataset_id]
                assert isinstance(scene, soma.Scene)
                assert scene.coordinate_space is not None
                axes = [(a.name, a.unit) for a in scene.coordinate_space.axes]
                assert axes == [("y", "pixels"), ("x", "pixels")]
                loc = scene.obsl["loc"].read().concat().to_pandas().sort_values("soma_joinid")
                mine = obs.loc[obs["dataset_id"] == dataset_id, "soma_joinid"]
                assert loc["soma_joinid"].tolist() == mine.tolist()
                assert d.locations is not None
                np.testing.assert_array_equal(loc["y"], d.locations[:, 0])
                np.testing.assert_array_equal(loc["x"], d.locations[:, 1])
                assert d.spatial_uns is not None
                libraries = [k for k in d.spatial_uns if k != "is_single"]
                radius = scene.obsl["loc"].metadata["soma_geometry"]
                if not libraries:  # Slide-seqV2
                    assert radius == 2.0
                    assert "img" not in scene
                    continue
                (lib,) = libraries
                factors = d.spatial_uns[lib]["scalefactors"]
                assert radius == factors["spot_diameter_fullres"] / 2
                hires = np.asarray(d.spatial_uns[lib]["images"]["hires"])
                image = scene.img[lib]
                assert list(image.levels()) == ["hires"]
                pixels = image["hires"].read().to_numpy()
                assert pixels.shape == (3, hires.shape[0], hires.shape[1])
                np.testing.assert_array_equal(pixels, np.transpose(hires[:, :, :3], (2, 0, 1)))
                scale = scene.get_transform_to_multiscale_image(lib)
                assert isinstance(scale, soma.ScaleTransform)
                np.testing.assert_array_equal(
                    scale.scale_factors, [factors["tissue_hires_scalef"]] * 2
                )


def test_census_info_counts_spatial_cells_as_the_official_builder(
    build: Path, expected: dict[str, ExpectedDataset]
) -> None:
    """Datasets rows for every contributing dataset (build order); spots counted into the
    organism's summary_cell_counts rows and the summary totals."""
    with soma.Collection[Any].open(str(build / "soma")) as census:
        info = census["census_info"]
        datasets = info["datasets"].read().concat().to_pandas()
        counts = info["summary_cell_counts"].read().concat().to_pandas()
        summary = dict(info["summary"].read().concat().to_pandas()[["label", "value"]].to_numpy())
        organisms = info["organisms"].read().concat().to_pandas()
    order = ["h-cells", "h-visium", "h-slide", "m-slide"]
    assert datasets["dataset_id"].tolist() == order
    assert datasets["dataset_total_cell_count"].tolist() == [len(expected[i].obs) for i in order]
    total = sum(len(d.obs) for d in expected.values())
    unique = sum(int(d.obs["is_primary_data"].sum()) for d in expected.values())
    assert summary["total_cell_count"] == str(total)
    assert summary["unique_cell_count"] == str(unique)
    assert organisms["organism"].tolist()[:2] == ["homo_sapiens", "mus_musculus"]
    assert len(organisms) == 5
    for organism in ("homo_sapiens", "mus_musculus"):
        obs = pd.concat([d.obs for d in expected.values() if d.organism == organism])
        mine = counts[counts["organism"] == organism]
        assay = mine[mine["category"] == "assay"].set_index("ontology_term_id")
        want = obs["assay_ontology_term_id"].astype(str).value_counts()
        assert assay["total_cell_count"].to_dict() == want.to_dict()
        cell_type = mine[mine["category"] == "cell_type"].set_index("ontology_term_id")
        want = obs["cell_type_ontology_term_id"].astype(str).value_counts()
        assert cell_type["total_cell_count"].to_dict() == want.to_dict()
        all_row = mine[mine["category"] == "all"]
        assert all_row["total_cell_count"].tolist() == [len(obs)]
        assert all_row["unique_cell_count"].tolist() == [int(obs["is_primary_data"].sum())]
    doc = json.loads((build / "build.json").read_text())
    status = {i["dataset_id"]: (i["status"], i["collection"]) for i in doc["inputs"]}
    assert status["h-cells"] == ("included", "census_data")
    assert status["h-visium"] == ("included", "census_spatial_sequencing")
    assert status["q-slide"][0] == "excluded"
    macaque = next(i for i in doc["inputs"] if i["dataset_id"] == "q-slide")
    assert "spatial datasets of Macaca mulatta" in macaque["reason"]
    assert doc["summary"]["spatial"]["homo_sapiens"]["scenes"] == 2


def test_the_official_client_reads_the_spatial_experiments(
    build: Path, expected: dict[str, ExpectedDataset]
) -> None:
    """cellxgene_census 1.18: get_anndata / get_obs / get_var / get_presence_matrix with
    modality="census_spatial_sequencing"."""
    visium = expected["h-visium"]
    with cellxgene_census.open_soma(uri=str(build / "soma")) as census:
        adata = cellxgene_census.get_anndata(
            census,
            "Homo sapiens",
            modality="census_spatial_sequencing",
            obs_value_filter="dataset_id == 'h-visium' and in_tissue == 1",
        )
        inside = visium.obs[visium.obs["in_tissue"] == 1]
        assert adata.obs["observation_joinid"].tolist() == inside["observation_joinid"].tolist()
        assert adata.X.shape[0] == len(inside)
        rows = np.flatnonzero((visium.obs["in_tissue"] == 1).to_numpy())
        cols = adata.var["feature_id"].map(pd.Series(range(len(visium.var)), visium.var.index))
        present = cols.notna().to_numpy()
        want = visium.counts[rows][:, cols[present].astype(int).to_numpy()].toarray()
        np.testing.assert_array_equal(adata.X.toarray()[:, present], want)
        obs = cellxgene_census.get_obs(
            census,
            "mus_musculus",
            modality="census_spatial_sequencing",
            column_names=["dataset_id", "array_row"],
        )
        assert len(obs) == len(expected["m-slide"].obs)
        var = cellxgene_census.get_var(census, "homo_sapiens", modality="census_spatial_sequencing")
        assert set(var["feature_id"]) == set(visium.var.index) | set(expected["h-slide"].var.index)
        pm = cellxgene_census.get_presence_matrix(
            census, "homo_sapiens", modality="census_spatial_sequencing"
        )
        assert pm.shape == (4, len(var))
        assert pm[1].nnz == len(visium.var)
        assert pm[0].nnz == 0
        # tiledbsoma's query refuses an X layer the spatial experiment does not have
        with pytest.raises(ValueError, match="X layer name 'normalized' not found"):
            cellxgene_census.get_anndata(
                census, "homo_sapiens", modality="census_spatial_sequencing", X_name="normalized"
            )


def test_tiledbsoma_scene_api_and_spatial_query(build: Path) -> None:
    with soma.Collection[Any].open(str(build / "soma")) as census:
        exp = census["census_spatial_sequencing"]["homo_sapiens"]
        with exp.axis_query(
            "RNA", obs_query=soma.AxisQuery(value_filter="dataset_id == 'h-slide'")
        ) as q:
            assert [str(s) for s in q.obs_scene_ids().to_pylist()] == ["h-slide"]
        scene = exp.spatial["h-visium"]
        assert isinstance(
            scene.get_transform_to_point_cloud_dataframe("loc"), soma.IdentityTransform
        )
        (lib,) = scene.img.keys()
        image = scene.img[lib]
        assert image.level_count == 1
        region = image.read_spatial_region(level="hires", region=[0, 0, 9, 4])
        assert region.data.shape[0] == 3


def test_validation_finds_damaged_scenes(build: Path, tmp_path: Path) -> None:
    """validate reads the scenes against their sources: a moved spot, a dropped scene."""
    copy = tmp_path / "b"
    shutil.copytree(build, copy)
    loc_uri = str(copy / "soma/census_spatial_sequencing/mus_musculus/spatial/m-slide/obsl/loc")
    with soma.PointCloudDataFrame.open(loc_uri) as loc:
        table = loc.read().concat()
        schema = loc.schema
    # x values exchanged between spots (inside the domain): new (y, x', soma_joinid) rows
    x = pa.array(np.roll(np.asarray(table["x"]), 1), schema.field("x").type)
    with soma.PointCloudDataFrame.open(loc_uri, "w") as loc:
        loc.write(table.set_column(1, "x", x))
    with soma.Collection[Any].open(
        str(copy / "soma/census_spatial_sequencing/homo_sapiens/spatial"), "d"
    ) as sp:
        del sp["h-slide"]
    with pytest.raises(IntegrityError) as err:
        validate_build(copy, sample_cells=32)
    text = str(err.value)
    assert "m-slide/obsl/loc" in text
    assert "h-slide: the dataset has no scene" in text
    assert "scenes ['h-visium'] differ" in text


# --- bad spatial input ----------------------------------------------------------------------


def _drop(path: str) -> Callable[[h5py.File], None]:
    def mutate(f: h5py.File) -> None:
        del f[path]

    return mutate


def _float_image(f: h5py.File) -> None:
    images = f["uns/spatial"][next(k for k in f["uns/spatial"] if k != "is_single")]["images"]
    data = images["hires"][()]
    attrs = dict(images["hires"].attrs)
    del images["hires"]
    node = images.create_dataset("hires", data=data.astype(np.float32))
    node.attrs.update(attrs)


def _grey_image(f: h5py.File) -> None:
    images = f["uns/spatial"][next(k for k in f["uns/spatial"] if k != "is_single")]["images"]
    data = images["hires"][()]
    attrs = dict(images["hires"].attrs)
    del images["hires"]
    node = images.create_dataset("hires", data=data[:, :, 0])
    node.attrs.update(attrs)


def _nan_location(f: h5py.File) -> None:
    values = f["obsm/spatial"][()].astype(np.float64)
    values[5, 0] = np.nan
    del f["obsm/spatial"]
    f["obsm"].create_dataset("spatial", data=values).attrs.update(
        {"encoding-type": "array", "encoding-version": "0.2.0"}
    )


def _float_in_tissue(f: h5py.File) -> None:
    values = f["obs/in_tissue"][()].astype(np.float64) + 0.5
    attrs = dict(f["obs/in_tissue"].attrs)
    del f["obs/in_tissue"]
    f["obs"].create_dataset("in_tissue", data=values).attrs.update(attrs)


def _mixed_assays(f: h5py.File) -> None:
    """The second assay category of a two-assay single-cell dataset becomes Visium."""
    cats = f["obs/assay_ontology_term_id/categories"]
    values = [v.decode() if isinstance(v, bytes) else str(v) for v in cats[()]]
    attrs = dict(cats.attrs)
    del f["obs/assay_ontology_term_id/categories"]
    node = f["obs/assay_ontology_term_id"].create_dataset(
        "categories", data=np.array([values[0], VISIUM], dtype=object), dtype=h5py.string_dtype()
    )
    node.attrs.update(attrs)


BAD: dict[str, tuple[str, Callable[[h5py.File], None], str]] = {
    "mixed assays": ("h-mixed", _mixed_assays, "assay_ontology_term_id"),
    "no uns spatial": ("h-slide", _drop("uns/spatial"), "uns['spatial']"),
    "no obsm spatial": ("h-slide", _drop("obsm/spatial"), "obsm['spatial']"),
    "NaN location": ("h-slide", _nan_location, "obsm['spatial']"),
    "float image": ("h-visium", _float_image, "['images']['hires']"),
    "grey image": ("h-visium", _grey_image, "['images']['hires']"),
    "float in_tissue": ("h-visium", _float_in_tissue, "in_tissue"),
}


@pytest.fixture(scope="module")
def mixed_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cellcensus.synth import write_dataset

    spec = DatasetSpec(dataset_id="h-mixed", organism_ontology_term_id=HUMAN, n_cells=80,
                       n_genes=100, assays=("EFO:0009922", "EFO:0009899"))  # fmt: skip
    return write_dataset(spec, tmp_path_factory.mktemp("mixed") / "h-mixed.h5ad", seed=2)


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spatial_input_is_refused_before_anything_is_written(
    case: str, corpus: SynthCorpus, mixed_source: Path, tmp_path: Path
) -> None:
    source_id, mutate, field = BAD[case]
    bad = tmp_path / f"{source_id}.h5ad"
    shutil.copy(mixed_source if source_id == "h-mixed" else corpus.paths[source_id], bad)
    with h5py.File(bad, "r+") as f:
        mutate(f)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"dataset_id,dataset_asset_h5ad_uri\n{source_id},{bad}\n")
    out = tmp_path / "out"
    with pytest.raises(BadInputError) as err:
        build_census(manifest, out, options=BuildOptions(tag=TAG))
    assert err.value.dataset_id == source_id, str(err.value)
    assert field in (err.value.field or ""), str(err.value)
    assert not out.exists()
    assert not (tmp_path / ".out.staging").exists()
    if case == "mixed assays":
        assert "mixes spatial assays" in str(err.value)


# --- resume --------------------------------------------------------------------------------


def test_a_scene_task_run_again_replaces_a_half_written_scene(
    corpus: SynthCorpus, tmp_path: Path
) -> None:
    """What an interrupted scene task leaves (a scene member, or only its directory) is dropped
    before the scene is written again."""
    from cellcensus._spatial import write_scene
    from cellcensus.builder._scenes import SceneTask, run_scene

    uri = str(tmp_path / "exp")
    with soma.Experiment.create(uri) as exp:
        exp.add_new_collection("spatial")
    path = corpus.paths["m-slide"]
    with h5py.File(path, "r") as f:  # a stale scene with other joinids
        write_scene(f, uri, dataset_id="m-slide", soma_joinids=np.arange(1000, 1120))
    stray = tmp_path / "exp" / "spatial" / "other"
    stray.mkdir()
    (stray / "junk").write_text("x")
    task = SceneTask(experiment="spatial.mus_musculus", exp_uri=uri, dataset_id="m-slide",
                     path=str(path), assay=SLIDE, first_joinid=0, n_spots=120)  # fmt: skip
    result = run_scene(task)
    assert (result.first_joinid, result.n_spots) == (0, 120)
    run_scene(dataclass_replace(task, dataset_id="other", path=str(path)))
    with soma.Experiment.open(uri) as exp:
        assert sorted(exp.spatial.keys()) == ["m-slide", "other"]
        loc = exp.spatial["m-slide"].obsl["loc"].read().concat()
        assert sorted(loc["soma_joinid"].to_pylist()) == list(range(120))


def dataclass_replace(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)


@pytest.mark.slow  # 21 s: a killed build resumed and one uninterrupted
def test_killed_during_scenes_then_resumed_equals_uninterrupted(
    corpus: SynthCorpus, build: Path, tmp_path: Path
) -> None:
    """A build killed once the first scene is done resumes to the same tables and scenes."""
    import signal
    import time

    out = tmp_path / "build"
    staging = tmp_path / ".build.staging"
    cmd = [
        sys.executable, "-m", "cellcensus", "--quiet", "build", str(corpus.manifest_path),
        str(out), "--tag", TAG, "--chunk-nnz", "20000", "--band-nnz", "60000", "--no-validate",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if list((staging / "_work" / "done").glob("scene.*")):
                break
            time.sleep(0.01)
        assert proc.poll() is None, "build ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    resumed = subprocess.run(
        [*cmd, "--resume"], capture_output=True, text=True, timeout=600, check=False
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = census_tables(out), census_tables(build)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].equals(b[key]), key
