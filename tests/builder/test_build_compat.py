"""The official cellxgene_census client and tiledbsoma read our builds: exactly the sources."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cellxgene_census
import numpy as np
import pandas as pd
import pytest
import tiledbsoma

from .expected_census import ExpectedDataset, expected_datasets

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from cellcensus.builder import BuildResult
    from cellcensus.synth import SynthCorpus


@pytest.fixture(scope="module")
def expected(small_corpus: SynthCorpus) -> list[ExpectedDataset]:
    return expected_datasets(small_corpus)


def _expected_obs(expected: list[ExpectedDataset], organism: str) -> pd.DataFrame:
    frames = []
    for d in expected:
        if d.organism == organism and not d.spatial:
            frames.append(d.obs.assign(dataset_id=d.dataset_id))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize(
    ("organism", "value_filter", "mask"),
    [
        ("homo_sapiens", "sex == 'female'", lambda o: o["sex"] == "female"),
        (
            "homo_sapiens",
            "cell_type in ['T cell', 'B cell'] and is_primary_data == True",
            lambda o: o["cell_type"].isin(["T cell", "B cell"]) & o["is_primary_data"],
        ),
        ("homo_sapiens", "tissue_type == 'organoid'", lambda o: o["tissue_type"] == "organoid"),
        ("mus_musculus", "sex == 'male'", lambda o: o["sex"] == "male"),
        (
            "homo_sapiens",
            "disease_ontology_term_id != 'PATO:0000461'",
            lambda o: o["disease_ontology_term_id"] != "PATO:0000461",
        ),
    ],
)
def test_obs_read_with_value_filter_returns_the_source_cells(
    census_build: Path,
    expected: list[ExpectedDataset],
    organism: str,
    value_filter: str,
    mask: Callable[[pd.DataFrame], pd.Series],
) -> None:
    exp_obs = _expected_obs(expected, organism)
    want = exp_obs[mask(exp_obs).to_numpy()]
    with cellxgene_census.open_soma(uri=str(census_build / "soma")) as census:
        got = (
            census["census_data"][organism]
            .obs.read(
                value_filter=value_filter,
                column_names=["soma_joinid", "observation_joinid", "dataset_id", "cell_type"],
            )
            .concat()
            .to_pandas()
        )
    assert len(want) > 0
    # tiledbsoma also returns the columns the filter uses, after the requested ones
    assert list(got.columns)[:4] == ["soma_joinid", "observation_joinid", "dataset_id", "cell_type"]
    assert sorted(zip(got["dataset_id"], got["observation_joinid"], strict=True)) == sorted(
        zip(want["dataset_id"], want["observation_joinid"], strict=True)
    )


def test_get_anndata_returns_expected_cells_genes_and_counts(
    census_build: Path, expected: list[ExpectedDataset]
) -> None:
    human = [d for d in expected if d.organism == "homo_sapiens" and not d.spatial]
    # three gene symbols present in some human dataset
    names = sorted(set(human[0].var["feature_name"].astype(str)))[:3]
    with cellxgene_census.open_soma(uri=str(census_build / "soma")) as census:
        adata = cellxgene_census.get_anndata(
            census,
            "Homo sapiens",
            obs_value_filter="tissue_general == 'lung'",
            var_value_filter=f"feature_name in {names}",
        )
    assert set(adata.var["feature_name"]) == set(names)
    want_cells = 0
    for d in human:
        obs = d.obs.reset_index(drop=True)
        rows = np.flatnonzero(
            obs["tissue_ontology_term_id"]
            .astype(str)
            .isin(["UBERON:0002048", *_lung_descendants(obs)])
        )
        want_cells += len(rows)
        got = adata[adata.obs["dataset_id"] == d.dataset_id]
        assert got.n_obs == len(rows)
        # compare the counts of those cells for the selected genes
        got_obs = got.obs.set_index("observation_joinid")
        src_ids = obs["observation_joinid"].astype(str).to_numpy()[rows]
        order = got_obs.index.get_indexer(src_ids)
        assert (order >= 0).all()
        feature_ids = list(got.var["feature_id"])
        cols = d.var.index.get_indexer(pd.Index(feature_ids))
        want = np.zeros((len(rows), len(feature_ids)), dtype=np.float32)
        present = cols >= 0
        want[:, present] = d.counts[rows][:, cols[present]].toarray()
        np.testing.assert_array_equal(got.X.toarray()[order], want)
    assert adata.n_obs == want_cells > 0


def _lung_descendants(obs: pd.DataFrame) -> list[str]:
    from cellcensus.builder._terms import tissue_general

    return [
        t
        for t in obs["tissue_ontology_term_id"].astype(str).unique()
        if tissue_general(t)[0] == "UBERON:0002048"
    ]


def test_presence_matrix_matches_sources(
    census_build: Path, expected: list[ExpectedDataset], small_build: BuildResult
) -> None:
    with cellxgene_census.open_soma(uri=str(census_build / "soma")) as census:
        for organism, label in (("homo_sapiens", "Homo sapiens"), ("mus_musculus", "Mus musculus")):
            pm = cellxgene_census.get_presence_matrix(census, label, "RNA")
            datasets = census["census_info"]["datasets"].read().concat().to_pandas()
            var = census["census_data"][organism].ms["RNA"].var.read().concat().to_pandas()
            assert pm.shape == (len(datasets), len(var))
            for d in expected:
                if d.organism != organism or d.spatial:
                    continue
                joinid = int(
                    datasets.loc[datasets["dataset_id"] == d.dataset_id, "soma_joinid"].iloc[0]
                )
                present = set(var["feature_id"].to_numpy()[pm.tocsr()[joinid : joinid + 1].indices])
                assert present == set(d.var.index)


def test_tiledbsoma_open_with_the_official_context(census_build: Path) -> None:
    ctx = cellxgene_census.get_default_soma_context()
    with tiledbsoma.Collection[Any].open(str(census_build / "soma"), context=ctx) as census:
        assert census.soma_type == "SOMACollection"
        exp = census["census_data"]["homo_sapiens"]
        assert exp.ms["RNA"].X["raw"].shape[0] == len(
            exp.obs.read(column_names=["soma_joinid"]).concat()
        )
        assert set(census["census_data"].keys()) == {
            "homo_sapiens",
            "mus_musculus",
            "callithrix_jacchus",
            "macaca_mulatta",
            "pan_troglodytes",
        }
