"""Contents of single synthetic datasets: layout, metadata, features, counts, forms, duplicates."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cellcensus.synth import DatasetSpec, write_dataset
from cellcensus.synth._catalog import term_label
from cellcensus.synth._counts import CountsSource, build_model
from cellcensus.synth._genes import gene_table, select_features
from cellcensus.synth._obs import make_cells
from cellcensus.synth._random import text_key

if TYPE_CHECKING:
    from pathlib import Path

HUMAN = "NCBITaxon:9606"
SUBMISSION_OBS = [
    "assay_ontology_term_id",
    "cell_type_ontology_term_id",
    "development_stage_ontology_term_id",
    "disease_ontology_term_id",
    "self_reported_ethnicity_ontology_term_id",
    "sex_ontology_term_id",
    "tissue_ontology_term_id",
    "tissue_type",
    "donor_id",
    "is_primary_data",
    "suspension_type",
]
LABELS = {
    "cell_type": "cell_type_ontology_term_id",
    "assay": "assay_ontology_term_id",
    "disease": "disease_ontology_term_id",
    "sex": "sex_ontology_term_id",
    "tissue": "tissue_ontology_term_id",
    "self_reported_ethnicity": "self_reported_ethnicity_ontology_term_id",
    "development_stage": "development_stage_ontology_term_id",
}
PORTAL_VAR = [
    "feature_name",
    "feature_reference",
    "feature_biotype",
    "feature_length",
    "feature_type",
]


def _dense(x: Any) -> np.ndarray:
    return np.asarray(x.toarray() if sp.issparse(x) else x)


def test_h5py_layout(blood_path: Path) -> None:
    with h5py.File(blood_path, "r") as f:
        assert f.attrs["encoding-type"] == "anndata"
        assert f.attrs["encoding-version"] == "0.1.0"
        x = f["X"]
        assert x.attrs["encoding-type"] == "csr_matrix"
        assert x.attrs["encoding-version"] == "0.1.0"
        assert tuple(x.attrs["shape"]) == (3_000, 2_000)
        assert x["data"].dtype == np.float32
        assert x["indptr"].shape == (3_001,)
        assert x["data"].compression == "gzip"
        assert f["obs"].attrs["encoding-type"] == "dataframe"
        assert "raw" not in f
        for name in ("layers", "obsm", "obsp", "varm", "varp", "uns"):
            assert f[name].attrs["encoding-type"] == "dict"
        assert f["obsm/X_umap"].shape == (3_000, 2)


def test_published_obs(blood: anndata.AnnData) -> None:
    obs = blood.obs
    assert list(obs.columns) == [*SUBMISSION_OBS, *LABELS, "observation_joinid"]
    for column in obs.columns:
        if column == "is_primary_data":
            assert obs[column].dtype == bool
            assert obs[column].all()
        elif column == "observation_joinid":
            assert obs[column].dtype == object
        else:
            assert isinstance(obs[column].dtype, pd.CategoricalDtype), column
            assert set(obs[column].cat.categories) == set(obs[column].unique()), column
    for label, ids in LABELS.items():
        pairs = obs[[ids, label]].drop_duplicates().astype(str)
        for term, text in pairs.itertuples(index=False):
            assert text == term_label(term, "7.0.0")
    joinids = obs["observation_joinid"]
    assert joinids.is_unique
    assert joinids.str.len().eq(10).all()
    assert obs.index.is_unique
    assert re.fullmatch(r"[ACGT]{16}-1", obs.index[0])
    # meaningful variety for queries
    assert obs["cell_type_ontology_term_id"].nunique() >= 8
    assert obs["donor_id"].nunique() >= 2
    assert set(obs["tissue"]) == {"blood", "spleen"}
    assert set(obs["tissue_type"]) == {"tissue"}
    assert set(obs["suspension_type"]) == {"cell"}
    assert set(obs["sex_ontology_term_id"]) <= {"PATO:0000383", "PATO:0000384", "unknown"}
    assert obs["development_stage_ontology_term_id"].str.startswith("HsapDv:").all()


def test_multi_valued_disease_fraction(blood: anndata.AnnData) -> None:
    disease = blood.obs["disease_ontology_term_id"].astype(str)
    multi = disease[disease.str.contains(" || ", regex=False)]
    assert len(multi) == 300  # exactly 10 % of 3,000
    for value in multi.unique():
        parts = value.split(" || ")
        assert parts == sorted(parts)
    labels = blood.obs.loc[multi.index, "disease"].astype(str)
    assert labels.str.contains(" || ", regex=False).all()
    assert (disease == "PATO:0000461").any()


def test_published_var_and_uns(blood: anndata.AnnData) -> None:
    var = blood.var
    assert list(var.columns) == ["feature_is_filtered", *PORTAL_VAR]
    assert var.index.str.match(r"^ENSG\d{11}$").all()
    assert var.index.is_unique
    assert not var["feature_is_filtered"].any()
    assert set(var["feature_reference"]) == {HUMAN}
    assert set(var["feature_biotype"]) == {"gene"}
    ref = gene_table(HUMAN)
    ref_frame = pd.DataFrame(
        {"name": ref.names, "length": ref.lengths, "type": ref.types}, index=ref.ids
    ).loc[var.index]
    assert (var["feature_name"].astype(str).to_numpy() == ref_frame["name"].to_numpy()).all()
    assert (var["feature_length"].astype(np.int64).to_numpy() == ref_frame["length"]).all()
    assert (var["feature_type"].astype(str).to_numpy() == ref_frame["type"].to_numpy()).all()
    # genes in reference (file) order, mostly protein coding, with the usual markers
    positions = pd.Index(ref.ids).get_indexer(var.index)
    assert (np.diff(positions) > 0).all()
    assert (var["feature_type"] == "protein_coding").mean() > 0.7
    assert {"CD3E", "MS4A1", "CD14", "ACTB"} <= set(var["feature_name"].astype(str))

    uns = blood.uns
    assert uns["schema_version"] == "7.0.0"
    assert uns["schema_reference"] == (
        "https://github.com/chanzuckerberg/single-cell-curation/blob/main/schema/7.0.0/schema.md"
    )
    assert uns["organism_ontology_term_id"] == HUMAN
    assert uns["organism"] == "Homo sapiens"
    assert uns["default_embedding"] == "X_umap"
    assert "is_pre_analysis" not in uns  # a 7.1 field
    assert re.fullmatch(
        r"Publication: https://doi\.org/\S+ Dataset Version: "
        r"https://datasets\.cellxgene\.cziscience\.com/[0-9a-f-]{36}\.h5ad curated and distributed "
        r"by CZ CELLxGENE Discover in Collection: "
        r"https://cellxgene\.cziscience\.com/collections/[0-9a-f-]{36}",
        uns["citation"],
    )
    assert uns["title"] == "Homo sapiens blood, spleen profiled with 10x 3' v3 (synthetic)"
    assert blood.obsm["X_umap"].dtype == np.float32
    assert np.isfinite(blood.obsm["X_umap"]).all()


def test_counts_are_realistic(blood: anndata.AnnData) -> None:
    x = blood.X
    assert isinstance(x, sp.csr_matrix)
    assert x.dtype == np.float32
    assert x.has_sorted_indices
    assert (x.data > 0).all()
    assert (x.data == np.round(x.data)).all()
    density = x.nnz / np.prod(x.shape)
    assert 0.05 <= density <= 0.10, density
    per_cell = np.diff(x.indptr)
    assert per_cell.min() >= 1
    assert x.data.max() > 50  # a heavy tail: a few highly expressed genes
    # distinct cells (the schema forbids identical rows)
    rows = {
        tuple(x.indices[a:b]) + tuple(x.data[a:b])
        for a, b in zip(x.indptr[:-1], x.indptr[1:], strict=True)
    }
    assert len(rows) == x.shape[0]


def test_cell_types_differ_in_marker_genes(blood: anndata.AnnData) -> None:
    names = blood.var["feature_name"].astype(str)
    ct = blood.obs["cell_type"].astype(str)
    t_cells = ct.str.contains("T cell").to_numpy()
    b_cells = ct.str.contains("B cell").to_numpy()
    assert t_cells.sum() > 50
    assert b_cells.sum() > 50
    x = blood.X
    for marker, high, low in [("CD3E", t_cells, b_cells), ("MS4A1", b_cells, t_cells)]:
        col = _dense(x[:, np.flatnonzero(names == marker)[0]]).ravel()
        assert col[high].mean() > 4 * col[low].mean(), marker
    # the embedding separates cell types too
    umap = blood.obsm["X_umap"]
    spread = np.linalg.norm(umap[t_cells].mean(0) - umap[b_cells].mean(0))
    assert spread > 1.0


def test_exact_counts_round_trip(tmp_path: Path) -> None:
    """anndata reads back exactly the counts the generator draws."""
    spec = DatasetSpec(dataset_id="rt", organism_ontology_term_id=HUMAN, n_cells=700, n_genes=400)
    path = write_dataset(spec, tmp_path / "rt.h5ad", seed=4, chunk_size=250)
    key = text_key("rt")
    features = select_features(HUMAN, 400, 0, seed=4, dataset_key=key)
    cells = make_cells(spec, seed=4, dataset_key=key)
    source = CountsSource(
        build_model(features, cells, seed=4, dataset_key=key), cells, seed=4, dataset_key=key
    )
    expected, emb = source.rows(0, 700)
    got = anndata.read_h5ad(path)
    assert (expected != got.X).nnz == 0
    assert np.array_equal(got.obsm["X_umap"], emb)
    assert list(got.var_names) == list(features.feature_ids())


def test_raw_location_and_spike_ins(lung_raw_path: Path) -> None:
    a = anndata.read_h5ad(lung_raw_path)
    assert a.raw is not None
    raw = a.raw.X
    assert raw.dtype == np.float32
    assert (raw.data == np.round(raw.data)).all()
    x = a.X
    assert x.dtype == np.float32
    assert np.array_equal(x.indices, raw.indices)
    assert np.array_equal(x.indptr, raw.indptr)
    totals = np.asarray(raw.sum(axis=1)).ravel()
    expected = np.log1p(raw.data / np.repeat(totals, np.diff(raw.indptr)) * 1e4)
    np.testing.assert_allclose(x.data, expected, rtol=1e-6)
    assert (x.data != np.round(x.data)).any()

    assert "feature_is_filtered" not in a.raw.var.columns
    assert list(a.raw.var.columns) == PORTAL_VAR
    assert list(a.var.columns) == ["feature_is_filtered", *PORTAL_VAR]
    assert list(a.raw.var_names) == list(a.var_names)
    spikes = a.raw.var[a.raw.var["feature_biotype"] == "spike-in"]
    assert len(spikes) == 10
    assert list(a.raw.var.index[-10:]) == list(spikes.index)  # appended after the genes
    assert spikes.index.str.match(r"^ERCC-\d{5}$").all()
    assert set(spikes["feature_reference"]) == {"NCBITaxon:32630"}
    assert set(spikes["feature_type"]) == {"synthetic"}
    assert spikes["feature_name"].astype(str).str.endswith("(spike-in control)").all()
    assert set(a.obs["assay_ontology_term_id"]) == {"EFO:0009922", "EFO:0009899"}
    counts = a.obs["assay_ontology_term_id"].value_counts()
    assert counts["EFO:0009922"] > counts["EFO:0009899"] > 0  # first assay most frequent


@pytest.mark.parametrize("raw_location", ["X", "raw"])
def test_formats_hold_the_same_matrix(tmp_path: Path, raw_location: Literal["X", "raw"]) -> None:
    matrices: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    formats: tuple[Literal["csr", "csc", "dense"], ...] = ("csr", "csc", "dense")
    for fmt in formats:
        spec = DatasetSpec(
            dataset_id="fmt",
            organism_ontology_term_id=HUMAN,
            n_cells=500,
            n_genes=300,
            x_format=fmt,
            raw_location=raw_location,
        )
        a = anndata.read_h5ad(write_dataset(spec, tmp_path / f"{fmt}.h5ad", seed=2, chunk_size=128))
        expected_type = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "dense": np.ndarray}[fmt]
        assert isinstance(a.X, expected_type)
        matrices[fmt] = (_dense(a.X), _dense(a.raw.X) if a.raw is not None else np.empty(0))
    for fmt in ("csc", "dense"):
        assert np.array_equal(matrices[fmt][0], matrices["csr"][0])
        if raw_location == "raw":
            assert np.array_equal(matrices[fmt][1], matrices["csr"][1])


def test_tissue_types(tmp_path: Path) -> None:
    spec = DatasetSpec(
        dataset_id="mix",
        organism_ontology_term_id=HUMAN,
        n_cells=1_200,
        n_genes=300,
        assays=("EFO:0009922", "EFO:0009294"),
        tissue_types=("tissue", "organoid", "cell culture"),
        tissues=("UBERON:0000956", "UBERON:0000955", "CL:0000057"),
    )
    obs = anndata.read_h5ad(write_dataset(spec, tmp_path / "mix.h5ad", seed=0)).obs
    assert set(obs["tissue_type"]) == {"tissue", "organoid", "primary cell culture"}
    culture = obs[obs["tissue_type"] == "primary cell culture"]
    assert set(culture["tissue_ontology_term_id"]) == {"CL:0000057"}
    assert (culture["cell_type_ontology_term_id"] == "CL:0000057").all()
    organoid = obs[obs["tissue_type"] == "organoid"]
    assert set(organoid["tissue_ontology_term_id"]) == {"UBERON:0000955"}
    cortex = obs[obs["tissue_type"] == "tissue"]
    assert set(cortex["tissue"]) == {"cerebral cortex"}
    assert set(cortex["suspension_type"]) <= {"nucleus", "cell"}
    tenx_cortex = cortex[cortex["assay_ontology_term_id"] == "EFO:0009922"]
    assert set(tenx_cortex["suspension_type"]) == {"nucleus"}  # brain tissue: single nuclei
    assert set(obs["assay"]) == {"10x 3' v3", "CITE-seq"}


def test_full_length_assay_scales_with_feature_length(tmp_path: Path) -> None:
    corr = {}
    for assay in ("EFO:0008931", "EFO:0009922"):
        spec = DatasetSpec(
            dataset_id="fl",
            organism_ontology_term_id=HUMAN,
            n_cells=1_000,
            n_genes=1_000,
            assays=(assay,),
            tissues=("UBERON:0002107",),
        )
        a = anndata.read_h5ad(write_dataset(spec, tmp_path / f"{assay[4:]}.h5ad", seed=0))
        x = a.X
        density = x.nnz / np.prod(x.shape)
        assert 0.05 <= density <= 0.11, (assay, density)
        mean = np.asarray(x.mean(axis=0)).ravel()
        length = a.var["feature_length"].astype(np.float64).to_numpy()
        corr[assay] = pd.Series(mean).corr(pd.Series(length), method="spearman")
    assert corr["EFO:0008931"] > corr["EFO:0009922"] + 0.2


def test_submission_form(tmp_path: Path) -> None:
    spec = DatasetSpec(
        dataset_id="sub",
        organism_ontology_term_id=HUMAN,
        n_cells=200,
        n_genes=300,
        raw_location="raw",
    )
    sub = anndata.read_h5ad(write_dataset(spec, tmp_path / "s.h5ad", seed=1, form="submission"))
    pub = anndata.read_h5ad(write_dataset(spec, tmp_path / "p.h5ad", seed=1))
    assert list(sub.obs.columns) == SUBMISSION_OBS
    assert list(sub.var.columns) == ["feature_is_filtered"]
    assert sub.raw is not None
    assert list(sub.raw.var.columns) == []
    assert set(sub.uns) == {"organism_ontology_term_id", "title", "default_embedding"}
    assert set(pub.uns) == set(sub.uns) | {
        "organism",
        "schema_version",
        "schema_reference",
        "citation",
    }
    pd.testing.assert_frame_equal(sub.obs, pub.obs[SUBMISSION_OBS])
    assert (sub.X != pub.X).nnz == 0


def test_schema_710_published(tmp_path: Path) -> None:
    spec = DatasetSpec(
        dataset_id="v71",
        organism_ontology_term_id=HUMAN,
        n_cells=50,
        n_genes=100,
        schema_version="7.1.0",
    )
    uns = anndata.read_h5ad(write_dataset(spec, tmp_path / "v71.h5ad", seed=0)).uns
    assert uns["schema_version"] == "7.1.0"
    assert uns["schema_reference"].endswith("/schema/7.1.0/schema.md")
    assert uns["is_pre_analysis"] is False or uns["is_pre_analysis"] == np.False_


def test_datasets_of_an_organism_overlap_partly(tmp_path: Path) -> None:
    genes = []
    for i in range(2):
        spec = DatasetSpec(dataset_id=f"ov{i}", organism_ontology_term_id=HUMAN, n_cells=50)
        genes.append(
            set(anndata.read_h5ad(write_dataset(spec, tmp_path / f"{i}.h5ad", seed=5)).var_names)
        )
    shared = len(genes[0] & genes[1]) / 2000
    assert 0.5 <= shared <= 0.8, shared
    mouse = DatasetSpec(dataset_id="m", organism_ontology_term_id="NCBITaxon:10090", n_cells=50)
    var = anndata.read_h5ad(write_dataset(mouse, tmp_path / "m.h5ad", seed=5)).var
    assert var.index.str.match(r"^ENSMUSG\d{11}$").all()
    assert set(var["feature_reference"]) == {"NCBITaxon:10090"}


def test_deterministic_by_seed(tmp_path: Path) -> None:
    spec = DatasetSpec(dataset_id="det", organism_ontology_term_id=HUMAN, n_cells=300, n_genes=200)
    a = anndata.read_h5ad(write_dataset(spec, tmp_path / "a.h5ad", seed=9))
    b = anndata.read_h5ad(write_dataset(spec, tmp_path / "b.h5ad", seed=9))
    c = anndata.read_h5ad(write_dataset(spec, tmp_path / "c.h5ad", seed=10))
    pd.testing.assert_frame_equal(a.obs, b.obs)
    pd.testing.assert_frame_equal(a.var, b.var)
    assert (a.X != b.X).nnz == 0
    assert a.uns["citation"] == b.uns["citation"]
    assert (a.X != c.X).nnz > 0 or list(a.var_names) != list(c.var_names)
    assert not a.obs["cell_type_ontology_term_id"].equals(c.obs["cell_type_ontology_term_id"])


@pytest.mark.parametrize("source_format", ["csr", "dense"])
def test_duplicate_repeats_source_cells(
    tmp_path: Path, source_format: Literal["csr", "dense"]
) -> None:
    source = DatasetSpec(
        dataset_id="src",
        organism_ontology_term_id=HUMAN,
        n_cells=900,
        n_genes=300,
        n_spike_ins=5,
        x_format=source_format,
    )
    dup = DatasetSpec(
        dataset_id="dup",
        organism_ontology_term_id=HUMAN,
        n_cells=400,
        duplicate_of="src",
        raw_location="raw",
    )
    src = anndata.read_h5ad(write_dataset(source, tmp_path / "src.h5ad", seed=1))
    got = anndata.read_h5ad(write_dataset(dup, tmp_path / "dup.h5ad", seed=1, chunk_size=128))
    assert got.n_obs == 400
    assert got.obs.index.isin(src.obs.index).all()
    assert got.obs.index.is_unique
    assert src.obs["is_primary_data"].all()
    assert not got.obs["is_primary_data"].any()
    same = src.obs.loc[got.obs.index]
    for column in src.obs.columns:
        if column != "is_primary_data":
            assert (got.obs[column].astype(str) == same[column].astype(str)).all(), column
    assert list(got.var_names) == list(src.var_names)  # same features, spike-ins included
    rows = src.obs.index.get_indexer(got.obs.index)
    assert np.array_equal(_dense(got.raw.X), _dense(src.X)[rows])  # same counts
    assert np.array_equal(got.obsm["X_umap"], src.obsm["X_umap"][rows])
    assert got.uns["title"] == src.uns["title"] + " - re-used subset"
