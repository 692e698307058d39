"""synth_corpus, the demo composition, the manifest and the ``cellcensus synth`` command."""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cellcensus._cli import app
from cellcensus.errors import BadInputError
from cellcensus.synth import MANIFEST_COLUMNS, DatasetSpec, SynthCorpus, demo_corpus_specs
from cellcensus.synth import synth_corpus as make_corpus

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
HUMAN, MOUSE, RAT = "NCBITaxon:9606", "NCBITaxon:10090", "NCBITaxon:10116"
# The Census builder's RNA_SEQ assays used by the demo (CITE-seq EFO:0009294 is not one)
CENSUS_ASSAYS = {"EFO:0009922", "EFO:0009899", "EFO:0008931"}


def _read(corpus: SynthCorpus) -> dict[str, anndata.AnnData]:
    return {s.dataset_id: anndata.read_h5ad(corpus.paths[s.dataset_id]) for s in corpus.specs}


def _census_cells(a: anndata.AnnData, organism: str) -> int:
    """Cells the Census builder keeps: its organisms, tissue/organoid, RNA-seq assays."""
    if a.uns["organism_ontology_term_id"] != organism:
        return 0
    keep = a.obs["tissue_type"].isin(["tissue", "organoid"]) & a.obs["assay_ontology_term_id"].isin(
        CENSUS_ASSAYS
    )
    return int(keep.sum())


def test_manifest(small_demo: SynthCorpus) -> None:
    assert small_demo.manifest_path == small_demo.root / "manifest.csv"
    frame = pd.read_csv(small_demo.manifest_path, dtype=str, keep_default_na=False)
    assert tuple(frame.columns) == MANIFEST_COLUMNS
    assert list(frame["dataset_id"]) == [s.dataset_id for s in small_demo.specs]
    for row in frame.to_dict(orient="records"):
        assert UUID.match(row["dataset_id"])
        assert UUID.match(row["dataset_version_id"])
        assert UUID.match(row["collection_id"])
        path = Path(row["dataset_asset_h5ad_uri"])
        assert path.is_absolute()
        assert path == small_demo.paths[row["dataset_id"]].resolve()
        assert path.name == f"{row['dataset_id']}.h5ad"
        with h5py.File(path, "r") as f:
            assert f["uns/title"][()].decode() == row["dataset_title"]
            assert f["uns/citation"][()].decode() == row["citation"]
        assert row["citation"].startswith(f"Publication: https://doi.org/{row['collection_doi']} ")
        assert f"/collections/{row['collection_id']}" in row["citation"]
        assert f"/{row['dataset_version_id']}.h5ad" in row["citation"]
        assert re.fullmatch(r"\S+ et al\. \(20\d\d\) .+", row["collection_doi_label"])
        assert row["collection_name"]
    assert frame["dataset_version_id"].is_unique
    # datasets of one organism share a collection; the re-used subset sits in an atlas collection
    organisms = [s.organism_ontology_term_id for s in small_demo.specs]
    human = frame[
        [
            o == HUMAN and s.duplicate_of is None
            for o, s in zip(organisms, small_demo.specs, strict=True)
        ]
    ]
    assert human["collection_id"].nunique() == 1
    assert frame["collection_id"].nunique() == 4  # human, mouse, rat, atlas


def test_demo_composition(small_demo: SynthCorpus) -> None:
    specs = {s.dataset_id: s for s in small_demo.specs}
    data = _read(small_demo)
    assert len(data) >= 6
    organisms = [a.uns["organism_ontology_term_id"] for a in data.values()]
    assert organisms.count(HUMAN) >= 3
    assert organisms.count(MOUSE) >= 2
    assert organisms.count(RAT) == 1
    spatial = {
        i: str(a.obs["assay_ontology_term_id"].iloc[0])
        for i, a in data.items()
        if "spatial" in a.uns
    }
    assert sorted(spatial.values()) == ["EFO:0022857", "EFO:0030062"]  # Visium, Slide-seqV2
    assert sum(a.n_obs for i, a in data.items() if spatial.get(i) != "EFO:0022857") == (
        pytest.approx(3_000, rel=0.05)
    )

    kinds: dict[str, list[str]] = {}

    def mark(kind: str, dataset_id: str) -> None:
        kinds.setdefault(kind, []).append(dataset_id)

    for dataset_id, a in data.items():
        if dataset_id in spatial:
            continue  # census_spatial_sequencing datasets: see test_synth_spatial.py
        spec = specs[dataset_id]
        obs, var = a.obs, (a.raw.var if a.raw is not None else a.var)
        if a.raw is not None:
            mark("raw", dataset_id)
        if "EFO:0008931" in set(obs["assay_ontology_term_id"]):
            mark("smartseq2", dataset_id)
        if (var["feature_biotype"] == "spike-in").any():
            mark("spike-ins", dataset_id)
        if obs["disease_ontology_term_id"].astype(str).str.contains(" || ", regex=False).any():
            mark("multi-disease", dataset_id)
        if not obs["is_primary_data"].any():
            mark("duplicate", dataset_id)
            source = data[str(spec.duplicate_of)]
            assert source.obs["is_primary_data"].all()
            assert obs.index.isin(source.obs.index).all()
        organism = a.uns["organism_ontology_term_id"]
        kept = _census_cells(a, organism if organism in (HUMAN, MOUSE) else "none")
        if kept == 0:
            mark("excluded", dataset_id)
        elif kept < a.n_obs:
            mark("partly excluded", dataset_id)
        with h5py.File(small_demo.paths[dataset_id], "r") as f:
            x = f["raw/X" if "raw" in f else "X"]
            encoding = x.attrs["encoding-type"] if isinstance(x, h5py.Group) else "dense"
        mark(encoding, dataset_id)

    rat = next(i for i, a in data.items() if a.uns["organism_ontology_term_id"] == RAT)
    assert kinds["excluded"] == [rat]
    (partial,) = kinds["partly excluded"]
    partial_obs = data[partial].obs
    assert (partial_obs["tissue_type"] == "primary cell culture").any()
    assert not partial_obs["assay_ontology_term_id"].isin(CENSUS_ASSAYS).all()
    assert (partial_obs["tissue_type"] == "organoid").any()
    assert len(kinds["raw"]) >= 1
    assert len(kinds["smartseq2"]) == 1
    assert len(kinds["spike-ins"]) >= 2
    assert len(kinds["multi-disease"]) >= 2
    assert len(kinds["duplicate"]) == 1
    assert len(kinds["csc_matrix"]) == 1
    assert len(kinds["dense"]) == 1
    assert len(kinds["csr_matrix"]) >= 5


def test_same_seed_same_corpus(small_demo: SynthCorpus, tmp_path: Path) -> None:
    again = make_corpus(tmp_path, seed=3, n_cells=3_000, chunk_size=1_000)
    assert [s.dataset_id for s in again.specs] == [s.dataset_id for s in small_demo.specs]
    first = pd.read_csv(small_demo.manifest_path).drop(columns="dataset_asset_h5ad_uri")
    second = pd.read_csv(again.manifest_path).drop(columns="dataset_asset_h5ad_uri")
    pd.testing.assert_frame_equal(first, second)
    for spec in again.specs[:2]:
        a = anndata.read_h5ad(small_demo.paths[spec.dataset_id])
        b = anndata.read_h5ad(again.paths[spec.dataset_id])
        pd.testing.assert_frame_equal(a.obs, b.obs)
        assert (a.X != b.X).nnz == 0
    other = demo_corpus_specs(3_000, seed=4)
    assert not {s.dataset_id for s in other} & {s.dataset_id for s in small_demo.specs}


def test_demo_specs_scale() -> None:
    for n in (100, 60_000, 1_000_000):
        specs = demo_corpus_specs(n)
        assert len(specs) == 10
        assert len(demo_corpus_specs(n, spatial=False)) == 8
        assert demo_corpus_specs(n, spatial=False) == specs[:8]
        assert all(s.n_cells >= 20 for s in specs)
        visium = [s for s in specs if s.assays == ("EFO:0022857",)]
        assert [s.n_cells for s in visium] == [4992]  # one capture area, whatever the size
        if n >= 10_000:
            assert sum(s.n_cells for s in specs[:8]) == pytest.approx(n, rel=0.01)
        by_id = {s.dataset_id: s for s in specs}
        for s in specs:
            if s.duplicate_of is not None:
                assert s.n_cells <= by_id[s.duplicate_of].n_cells
    assert demo_corpus_specs(1_000) == demo_corpus_specs(1_000)
    with pytest.raises(BadInputError):
        demo_corpus_specs(0)


def test_custom_specs_get_ids(tmp_path: Path) -> None:
    specs = [
        DatasetSpec(dataset_id="", organism_ontology_term_id=MOUSE, n_cells=60, n_genes=80),
        DatasetSpec(dataset_id="mine", organism_ontology_term_id=HUMAN, n_cells=40, n_genes=80),
    ]
    calls: list[tuple[str, int]] = []
    corpus = make_corpus(
        tmp_path, seed=8, specs=specs, chunk_size=25, progress=lambda d, n: calls.append((d, n))
    )
    first, second = corpus.specs
    assert UUID.match(first.dataset_id)
    assert second.dataset_id == "mine"
    assert set(corpus.paths) == {first.dataset_id, "mine"}
    assert calls == [
        (first.dataset_id, 25),
        (first.dataset_id, 25),
        (first.dataset_id, 10),
        ("mine", 25),
        ("mine", 15),
    ]
    with corpus.manifest_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["dataset_id"] for r in rows] == [first.dataset_id, "mine"]
    again = make_corpus(tmp_path / "again", seed=8, specs=specs)
    assert again.specs[0].dataset_id == first.dataset_id


@pytest.mark.parametrize(
    "specs",
    [
        [DatasetSpec(dataset_id="a", organism_ontology_term_id=HUMAN, n_cells=5)] * 2,
        [
            DatasetSpec(
                dataset_id="b", organism_ontology_term_id=HUMAN, n_cells=5, duplicate_of="a"
            ),
            DatasetSpec(dataset_id="a", organism_ontology_term_id=HUMAN, n_cells=5),
        ],
    ],
)
def test_bad_corpus_specs(tmp_path: Path, specs: list[DatasetSpec]) -> None:
    with pytest.raises(BadInputError):
        make_corpus(tmp_path, specs=specs)
    assert not list(tmp_path.glob("*.h5ad"))


def test_spec_replace_keeps_checks() -> None:
    spec = demo_corpus_specs(1_000)[0]
    with pytest.raises(BadInputError):
        dataclasses.replace(spec, n_cells=-1)


def test_cli_demo(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["synth", str(tmp_path / "c"), "--cells", "600", "--seed", "1", "--chunk-size", "100"]
    )
    assert result.exit_code == 0, result.output
    manifest = tmp_path / "c" / "manifest.csv"
    assert f"manifest: {manifest}" in result.stdout.replace("\n", "")
    frame = pd.read_csv(manifest)
    assert len(frame) == 10
    assert [s.dataset_id for s in demo_corpus_specs(600, seed=1)] == list(frame["dataset_id"])
    assert "synthetic datasets" in result.stdout
    assert all(Path(p).is_file() for p in frame["dataset_asset_h5ad_uri"])


def test_cli_single_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", str(tmp_path), "--cells", "150", "--no-demo"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "manifest.csv")
    assert len(frame) == 1
    a = anndata.read_h5ad(frame["dataset_asset_h5ad_uri"][0])
    assert a.n_obs == 150
    assert a.uns["organism_ontology_term_id"] == HUMAN
    assert np.all(np.diff(a.X.indptr) > 0)


def test_cli_bad_arguments(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", str(tmp_path), "--cells", "0"])
    assert result.exit_code != 0
    assert isinstance(result.exception, BadInputError)
