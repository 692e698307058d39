"""Spatial synthetic datasets: the dataset-schema 7 layout of Visium V1 and Slide-seqV2, the spec
rules, the official validator's verdict (slow), and the scene writer on them."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import anndata
import h5py
import numpy as np
import pytest
import tiledbsoma

from cellcensus._spatial import write_scene
from cellcensus.errors import BadInputError
from cellcensus.synth import DatasetSpec, write_dataset
from cellcensus.synth._spatial import VISIUM_SPOTS

if TYPE_CHECKING:
    from pathlib import Path

    from tests.synth.conftest import Validate

HUMAN = "NCBITaxon:9606"
MOUSE = "NCBITaxon:10090"
VISIUM = "EFO:0022857"
SLIDE_SEQ = "EFO:0030062"

VISIUM_SPEC = DatasetSpec(
    dataset_id="visium",
    organism_ontology_term_id=HUMAN,
    n_cells=VISIUM_SPOTS,
    n_genes=200,
    assays=(VISIUM,),
    tissues=("UBERON:0002107",),
)
SLIDE_SPEC = DatasetSpec(
    dataset_id="slide",
    organism_ontology_term_id=MOUSE,
    n_cells=300,
    n_genes=200,
    assays=(SLIDE_SEQ,),
    tissues=("UBERON:0000956",),
)


@pytest.fixture(scope="module")
def visium_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published Visium dataset (one capture area, 200 genes)."""
    return write_dataset(VISIUM_SPEC, tmp_path_factory.mktemp("v") / "visium.h5ad", seed=2)


def test_visium_layout(visium_path: Path) -> None:
    a = anndata.read_h5ad(visium_path)
    assert a.n_obs == 4992
    obs = a.obs
    assert {c: obs[c].dtype for c in ("in_tissue", "array_row", "array_col")} == {
        "in_tissue": np.int64,
        "array_row": np.int64,
        "array_col": np.int64,
    }
    assert set(obs["in_tissue"]) == {0, 1}
    assert obs["array_row"].between(0, 77).all()
    assert obs["array_col"].between(0, 127).all()
    assert ((obs["array_row"] - obs["array_col"]) % 2 == 0).all()  # hexagonal grid
    assert not obs[["array_row", "array_col"]].duplicated().any()
    outside = obs["in_tissue"] == 0
    assert (obs.loc[outside, "cell_type_ontology_term_id"] == "unknown").all()
    assert (obs.loc[~outside, "cell_type_ontology_term_id"] != "unknown").all()
    assert (obs.loc[outside, "cell_type"] == "unknown").all()
    assert set(obs["suspension_type"]) == {"na"}
    assert set(obs["assay"]) == {"Visium Spatial Gene Expression V1"}

    positions = a.obsm["spatial"]
    assert positions.shape == (4992, 2)
    assert positions.dtype == np.int64
    spatial = a.uns["spatial"]
    assert spatial["is_single"] is True or spatial["is_single"] == np.bool_(True)
    (library_id,) = [k for k in spatial if k != "is_single"]
    library = spatial[library_id]
    assert set(library) == {"images", "scalefactors"}
    assert set(library["images"]) == {"hires"}
    hires = library["images"]["hires"]
    assert hires.dtype == np.uint8
    assert hires.ndim == 3
    assert hires.shape[2] == 3
    assert max(hires.shape) == 2000
    factors = library["scalefactors"]
    assert set(factors) == {"spot_diameter_fullres", "tissue_hires_scalef"}
    scale = float(factors["tissue_hires_scalef"])
    # spots inside the tissue sit on tissue-coloured hires pixels, the others on background
    col = np.clip((positions[:, 0] * scale).astype(int), 0, hires.shape[1] - 1)
    row = np.clip((positions[:, 1] * scale).astype(int), 0, hires.shape[0] - 1)
    background = np.array([238, 234, 241], dtype=np.uint8)
    on_background = (hires[row, col] == background).all(axis=1)
    assert (on_background == outside.to_numpy()).mean() > 0.98
    # every spot in the tissue has counts; spots outside are shallower
    totals = np.asarray(a.X.sum(axis=1)).ravel()
    assert (totals[~outside.to_numpy()] > 0).all()
    assert totals[outside.to_numpy()].mean() < totals[~outside.to_numpy()].mean() / 3


def test_slide_seq_layout(tmp_path: Path) -> None:
    a = anndata.read_h5ad(write_dataset(SLIDE_SPEC, tmp_path / "s.h5ad", seed=2))
    assert not {"in_tissue", "array_row", "array_col"} & set(a.obs.columns)
    assert a.obsm["spatial"].shape == (300, 2)
    assert a.obsm["spatial"].dtype == np.float64
    assert set(a.uns["spatial"]) == {"is_single"}
    assert set(a.obs["suspension_type"]) == {"na"}


def test_spatial_is_deterministic(tmp_path: Path) -> None:
    first = anndata.read_h5ad(write_dataset(SLIDE_SPEC, tmp_path / "a.h5ad", seed=4))
    again = anndata.read_h5ad(write_dataset(SLIDE_SPEC, tmp_path / "b.h5ad", seed=4))
    other = anndata.read_h5ad(write_dataset(SLIDE_SPEC, tmp_path / "c.h5ad", seed=5))
    np.testing.assert_array_equal(first.obsm["spatial"], again.obsm["spatial"])
    assert not np.array_equal(first.obsm["spatial"], other.obsm["spatial"])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"n_cells": 4000}, "n_cells"),
        ({"assays": (VISIUM, "EFO:0009922")}, "assays"),
        ({"assays": (VISIUM, SLIDE_SEQ)}, "assays"),
        ({"duplicate_of": "other"}, "duplicate_of"),
        ({"tissue_types": ("primary cell culture",)}, "tissue_types"),
        ({"spatial_fullres": "yes"}, "spatial_fullres"),
    ],
)
def test_bad_spatial_specs(changes: dict[str, Any], field: str) -> None:
    kwargs: dict[str, Any] = {
        "dataset_id": "v",
        "organism_ontology_term_id": HUMAN,
        "n_cells": 4992,
        "assays": (VISIUM,),
        **changes,
    }
    with pytest.raises(BadInputError) as err:
        DatasetSpec(**kwargs)
    assert err.value.field == field


def test_fullres_only_for_visium() -> None:
    with pytest.raises(BadInputError, match="Visium") as err:
        DatasetSpec(
            dataset_id="s",
            organism_ontology_term_id=MOUSE,
            n_cells=10,
            assays=(SLIDE_SEQ,),
            spatial_fullres=True,
        )
    assert err.value.field == "spatial_fullres"


def test_scenes_of_synthetic_datasets(visium_path: Path, tmp_path: Path) -> None:
    """The census scene writer accepts what synth writes, and the image keeps its pixels."""
    uri = str(tmp_path / "exp")
    with tiledbsoma.Experiment.create(uri) as exp:
        exp.add_new_collection("spatial")
    slide_path = write_dataset(SLIDE_SPEC, tmp_path / "s.h5ad", seed=2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Support for spatial types is experimental")
        with h5py.File(visium_path, "r") as f:
            write_scene(f, uri, dataset_id="visium", soma_joinids=np.arange(4992))
        with h5py.File(slide_path, "r") as f:
            write_scene(f, uri, dataset_id="slide", soma_joinids=np.arange(4992, 5292))
        with tiledbsoma.Experiment.open(uri) as exp:
            a = anndata.read_h5ad(visium_path)
            (library_id,) = [k for k in a.uns["spatial"] if k != "is_single"]
            hires = a.uns["spatial"][library_id]["images"]["hires"]
            pixels = exp.spatial["visium"].img[library_id]["hires"].read().to_numpy()
            np.testing.assert_array_equal(pixels, np.transpose(hires, (2, 0, 1)))
            radius = exp.spatial["visium"].obsl["loc"].metadata["soma_geometry"]
            spot = a.uns["spatial"][library_id]["scalefactors"]["spot_diameter_fullres"]
            assert radius == spot / 2
            assert exp.spatial["slide"].obsl["loc"].metadata["soma_geometry"] == 2.0


@pytest.mark.slow
@pytest.mark.parametrize("spec", [VISIUM_SPEC, SLIDE_SPEC], ids=["visium", "slide-seq"])
def test_validator_accepts_spatial_submissions(
    tmp_path: Path, spec: DatasetSpec, official_validator: Validate
) -> None:
    """cellxgene-schema (7.1) accepts the submission form (30-120 s per file: slow)."""
    official_validator(
        write_dataset(spec, tmp_path / f"{spec.dataset_id}.h5ad", seed=3, form="submission")
    )
