"""Values of a build: X, normalized, stats, exclusions, census_info, schema, determinism."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tiledbsoma as soma

from cellcensus.builder import BuildOptions, build_census
from cellcensus.builder._schema import (
    DATASETS_FIELDS,
    OBS_FIELDS,
    SUMMARY_CELL_COUNTS_FIELDS,
    VAR_FIELDS,
    full_gene_assays,
)
from cellcensus.synth import SynthCorpus, demo_corpus_specs, synth_corpus

from .expected_census import ExpectedDataset, census_tables, expected_datasets

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def expected(small_corpus: SynthCorpus) -> list[ExpectedDataset]:
    return expected_datasets(small_corpus)


def _read_x(
    census: soma.Collection[Any],
    organism: str,
    layer: str,
    joinids: np.ndarray,
    collection: str = "census_data",
) -> pd.DataFrame:
    x: pd.DataFrame = (
        census[collection][organism]
        .ms["RNA"]
        .X[layer]
        .read(coords=(joinids,))
        .tables()
        .concat()
        .to_pandas()
    )
    return x


def _joinids(
    census: soma.Collection[Any], organism: str, dataset_id: str, collection: str = "census_data"
) -> pd.DataFrame:
    obs: pd.DataFrame = (
        census[collection][organism]
        .obs.read(
            value_filter=f"dataset_id == '{dataset_id}'",
            column_names=[
                "soma_joinid",
                "observation_joinid",
                "raw_sum",
                "nnz",
                "raw_mean_nnz",
                "raw_variance_nnz",
                "n_measured_vars",
                "assay_ontology_term_id",
            ],
        )
        .concat()
        .to_pandas()
    )
    return obs


def test_x_raw_normalized_and_stats_match_the_sources(
    census_build: Path, expected: list[ExpectedDataset]
) -> None:
    """Every dataset, census_data's and census_spatial_sequencing's (which has no normalized)."""
    full = full_gene_assays()
    assert {d.collection for d in expected} == {"census_data", "census_spatial_sequencing"}
    with soma.Collection[Any].open(str(census_build / "soma")) as census:
        for d in expected:
            exp = census[d.collection][d.organism]
            var = exp.ms["RNA"].var.read().concat().to_pandas()
            var_joinid = pd.Series(var["soma_joinid"].to_numpy(), index=var["feature_id"])
            obs = _joinids(census, d.organism, d.dataset_id, d.collection)
            assert list(obs["observation_joinid"]) == list(d.obs["observation_joinid"].astype(str))
            joinids = obs["soma_joinid"].to_numpy()
            assert np.array_equal(joinids, np.arange(joinids[0], joinids[0] + len(joinids)))
            cols = var_joinid[d.var.index].to_numpy()
            counts = d.counts.tocoo()
            want = pd.DataFrame(
                {
                    "soma_dim_0": joinids[counts.row],
                    "soma_dim_1": cols[counts.col],
                    "raw": counts.data,
                }
            ).sort_values(["soma_dim_0", "soma_dim_1"], ignore_index=True)
            raw = _read_x(census, d.organism, "raw", joinids, d.collection).sort_values(
                ["soma_dim_0", "soma_dim_1"], ignore_index=True
            )
            np.testing.assert_array_equal(raw["soma_dim_0"], want["soma_dim_0"])
            np.testing.assert_array_equal(raw["soma_dim_1"], want["soma_dim_1"])
            np.testing.assert_array_equal(raw["soma_data"], want["raw"])
            _check_stats(obs, d)
            if d.spatial:
                assert sorted(exp.ms["RNA"].X.keys()) == ["raw"]
                continue
            # normalized: value / row sum (full-length assays: / feature_length first)
            norm = _read_x(census, d.organism, "normalized", joinids).sort_values(
                ["soma_dim_0", "soma_dim_1"], ignore_index=True
            )
            lengths = d.var["feature_length"].to_numpy(dtype=np.float64)
            is_full = d.obs["assay_ontology_term_id"].astype(str).isin(full).to_numpy()
            x = d.counts.toarray().astype(np.float64)
            x[is_full] = x[is_full] / lengths
            x = x / x.sum(axis=1, keepdims=True)
            want_norm = x[counts.row, counts.col]
            order = np.lexsort((cols[counts.col], joinids[counts.row]))
            np.testing.assert_allclose(norm["soma_data"], want_norm[order], rtol=2**-14)
            assert (norm["soma_data"] > 0).all()


def _check_stats(obs: pd.DataFrame, d: ExpectedDataset) -> None:
    """Per-cell statistics of obs recomputed from the source counts."""
    dense = d.counts.toarray().astype(np.float64)
    nz = dense != 0
    nnz = nz.sum(axis=1)
    np.testing.assert_array_equal(obs["nnz"], nnz)
    np.testing.assert_allclose(obs["raw_sum"], dense.sum(axis=1))
    np.testing.assert_allclose(
        obs["raw_mean_nnz"], np.where(nnz, dense.sum(axis=1) / np.maximum(nnz, 1), 0)
    )
    var_nnz = [
        np.var(row[m], ddof=1) if m.sum() > 1 else 0.0 for row, m in zip(dense, nz, strict=True)
    ]
    np.testing.assert_allclose(obs["raw_variance_nnz"], var_nnz, rtol=1e-9, atol=1e-12)
    assert (obs["n_measured_vars"] == len(d.var)).all()


EXPERIMENTS = [
    ("census_data", "homo_sapiens"),
    ("census_data", "mus_musculus"),
    ("census_spatial_sequencing", "homo_sapiens"),
    ("census_spatial_sequencing", "mus_musculus"),
]


def test_var_stats_equal_a_recomputation(
    census_build: Path, expected: list[ExpectedDataset]
) -> None:
    with soma.Collection[Any].open(str(census_build / "soma")) as census:
        for collection, organism in EXPERIMENTS:
            var = census[collection][organism].ms["RNA"].var.read().concat().to_pandas()
            assert len(var) > 0, (collection, organism)
            nnz = pd.Series(0, index=var["feature_id"], dtype=np.int64)
            measured = pd.Series(0, index=var["feature_id"], dtype=np.int64)
            for d in expected:
                if d.organism == organism and d.collection == collection:
                    nnz[d.var.index] += np.asarray(d.counts.getnnz(axis=0))
                    measured[d.var.index] += len(d.obs)
            np.testing.assert_array_equal(var["nnz"], nnz.to_numpy())
            np.testing.assert_array_equal(var["n_measured_obs"], measured.to_numpy())
            assert var["feature_id"].is_unique


def test_excluded_cells_datasets_and_features_are_absent(
    census_build: Path, small_corpus: SynthCorpus, expected: list[ExpectedDataset]
) -> None:
    build = json.loads((census_build / "build.json").read_text())
    statuses = {i["dataset_id"]: i["status"] for i in build["inputs"]}
    included = {d.dataset_id for d in expected}
    assert {k for k, v in statuses.items() if v == "included"} == included
    assert any(v == "excluded" for v in statuses.values())  # e.g. the rat dataset
    assert sorted(p.name for p in (census_build / "h5ads").iterdir()) == sorted(
        f"{i}.h5ad" for i in included
    )
    with soma.Collection[Any].open(str(census_build / "soma")) as census:
        for collection, organism in EXPERIMENTS:
            obs = (
                census[collection][organism]
                .obs.read(column_names=["tissue_type", "assay_ontology_term_id", "dataset_id"])
                .concat()
                .to_pandas()
            )
            assert set(obs["tissue_type"]) <= {"tissue", "organoid"}
            spatial = set(obs["assay_ontology_term_id"]) <= {"EFO:0022857", "EFO:0030062"}
            assert spatial == (collection == "census_spatial_sequencing"), collection
            var = census[collection][organism].ms["RNA"].var.read().concat().to_pandas()
            assert not var["feature_id"].str.startswith("ERCC-").any()
            assert set(obs["dataset_id"]) <= included
        datasets = census["census_info"]["datasets"].read().concat().to_pandas()
        assert set(datasets["dataset_id"]) == included
        assert list(datasets["soma_joinid"]) == list(range(len(datasets)))
    # partly excluded datasets really lost cells
    for d in expected:
        n_source = next(
            i["n_obs_source"] for i in build["inputs"] if i["dataset_id"] == d.dataset_id
        )
        assert len(d.obs) <= n_source
    assert any(
        i["n_obs_census"] < i["n_obs_source"] for i in build["inputs"] if i["status"] == "included"
    )


def test_census_info_adds_up(census_build: Path) -> None:
    with soma.Collection[Any].open(str(census_build / "soma")) as census:
        info = census["census_info"]
        summary = dict(
            info["summary"].read().concat().to_pandas()[["label", "value"]].to_numpy().tolist()
        )
        counts = info["summary_cell_counts"].read().concat().to_pandas()
        datasets = info["datasets"].read().concat().to_pandas()
        total = unique = 0
        for organism in ("homo_sapiens", "mus_musculus"):
            # an organism's rows count its census_data cells and its spatial spots
            obs = pd.concat(
                [
                    census[collection][organism]
                    .obs.read(column_names=["is_primary_data", "cell_type_ontology_term_id", "sex"])
                    .concat()
                    .to_pandas()
                    for collection in ("census_data", "census_spatial_sequencing")
                ],
                ignore_index=True,
            )
            total += len(obs)
            unique += int(obs["is_primary_data"].sum())
            mine = counts[counts["organism"] == organism]
            for category, rows in mine.groupby("category", observed=True):
                assert rows["total_cell_count"].sum() == len(obs), category
                assert rows["unique_cell_count"].sum() == obs["is_primary_data"].sum(), category
            ct = mine[mine["category"] == "cell_type"].set_index("ontology_term_id")[
                "total_cell_count"
            ]
            assert ct.to_dict() == obs["cell_type_ontology_term_id"].value_counts().to_dict()
        assert summary["total_cell_count"] == str(total)
        assert summary["unique_cell_count"] == str(unique)
        assert summary["census_schema_version"] == "2.4.0"
        assert summary["census_build_date"] == "2026-11-01"
        assert datasets["dataset_total_cell_count"].sum() == total
        organisms = info["organisms"].read().concat().to_pandas()
        assert list(organisms["organism"][:2]) == ["homo_sapiens", "mus_musculus"]


def _value_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def test_schema_column_order_types_and_dictionaries(census_build: Path) -> None:
    with soma.Collection[Any].open(str(census_build / "soma")) as census:
        tables = {
            "obs": (census["census_data"]["homo_sapiens"].obs, OBS_FIELDS),
            "var": (census["census_data"]["homo_sapiens"].ms["RNA"].var, VAR_FIELDS),
            "datasets": (census["census_info"]["datasets"], DATASETS_FIELDS),
            "summary_cell_counts": (
                census["census_info"]["summary_cell_counts"],
                SUMMARY_CELL_COUNTS_FIELDS,
            ),
        }
        for name, (df, fields) in tables.items():
            schema = df.schema
            assert schema.names == [f.name for f in fields], name
            for f in fields:
                t = schema.field(f.name).type
                assert pa.types.is_dictionary(t) == f.dictionary, (name, f.name)
                vt = _value_type(t)
                if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
                    assert pa.types.is_large_string(vt) or pa.types.is_string(vt), (name, f.name)
                else:
                    assert vt == f.type, (name, f.name)
        obs = census["census_data"]["homo_sapiens"].obs.read().concat()
        ds = obs["dataset_id"].combine_chunks()
        assert ds.dictionary.to_pylist() == sorted(ds.dictionary.to_pylist())
        assert obs["observation_joinid"].type == pa.large_string()
        raw = census["census_data"]["homo_sapiens"].ms["RNA"].X["raw"]
        assert raw.schema.field("soma_data").type == pa.float32()
        assert raw.schema.field("soma_dim_0").type == pa.int64()


def test_arrays_have_one_fragment_or_one_per_band(census_build: Path) -> None:
    """Consolidated arrays have one fragment; X layers, their gene-major copies and obs one per
    band (build.json)."""
    import tiledb

    from cellcensus.builder._consolidate import gather

    doc = json.loads((census_build / "build.json").read_text())
    bands = {name: o["x_fragments"] for name, o in doc["summary"]["organisms"].items()}
    arrays = [t.uri for t in gather(str(census_build / "soma")) if t.is_array]
    assert any(uri.endswith("/X/normalized") for uri in arrays)
    spatial_bands = {name: o["x_fragments"] for name, o in doc["summary"]["spatial"].items()}
    for uri in arrays:
        parent = next((p for p in ("/census_data/", "/cellcensus_genes/") if p in uri), None)
        organism = uri.split(parent)[-1].split("/")[0] if parent else ""
        banded = uri.endswith(("/obs", "/X/raw", "/X/normalized")) and organism in bands
        expected = bands[organism] if banded else 1
        if "/census_spatial_sequencing/" in uri and uri.endswith(("/obs", "/X/raw")):
            organism = uri.split("/census_spatial_sequencing/")[-1].split("/")[0]
            banded, expected = True, spatial_bands[organism]
        if uri.endswith("/hires"):  # image levels keep one fragment per block of rows
            assert len(tiledb.array_fragments(uri)) >= 1, uri
            continue
        # empty arrays (experiments without cells) have no fragment
        assert len(tiledb.array_fragments(uri)) in ({expected} if banded else {0, 1}), uri
    assert bands["homo_sapiens"] >= 1


@pytest.mark.slow  # 19 s: builds the corpus twice more
def test_build_is_deterministic_and_independent_of_chunking(tmp_path: Path) -> None:
    corpus = synth_corpus(tmp_path / "c", seed=3, specs=demo_corpus_specs(1_200))
    a = build_census(
        corpus.manifest_path,
        tmp_path / "a",
        options=BuildOptions(tag="2026-01-01", chunk_nnz=10_000_000, validate=False),
    )
    b = build_census(
        corpus.manifest_path,
        tmp_path / "b",
        options=BuildOptions(tag="2026-01-01", chunk_nnz=20_000, validate=False),
    )
    ta, tb = census_tables(a.out_dir), census_tables(b.out_dir)
    assert ta.keys() == tb.keys()
    for key in ta:
        assert ta[key].schema == tb[key].schema, key
        assert ta[key].equals(tb[key]), key


def test_bands_run_on_one_thread_by_default(census_build: Path) -> None:
    """The shared build (default settings, a dense corpus) ran its band tasks on one thread:
    threads are opt-in (benchmarks/RESULTS.md, "Band threads by default")."""
    doc = json.loads((census_build / "build.json").read_text())
    assert doc["summary"]["timing"]["band_threads"] == 1
