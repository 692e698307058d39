"""Fixtures of the synthetic-corpus tests: small datasets written once per module or session."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anndata
import pytest

from cellcensus.synth import DatasetSpec, SynthCorpus, synth_corpus, write_dataset

if TYPE_CHECKING:
    from pathlib import Path

HUMAN = "NCBITaxon:9606"
MOUSE = "NCBITaxon:10090"


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session directory for datasets shared by several tests."""
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="session")
def blood_path(synth_dir: Path) -> Path:
    """A published human blood/spleen 10x dataset: 3,000 cells x 2,000 genes, CSR counts in X."""
    spec = DatasetSpec(
        dataset_id="blood",
        organism_ontology_term_id=HUMAN,
        n_cells=3_000,
        tissues=("UBERON:0000178", "UBERON:0002106"),
        multi_disease_fraction=0.1,
    )
    return write_dataset(spec, synth_dir / "blood.h5ad", seed=11, chunk_size=1_000)


@pytest.fixture(scope="session")
def blood(blood_path: Path) -> anndata.AnnData:
    """``blood_path`` read into memory."""
    return anndata.read_h5ad(blood_path)


@pytest.fixture(scope="session")
def lung_raw_path(synth_dir: Path) -> Path:
    """A published human lung dataset with counts in raw.X, log1p CP10k in X, two assays and
    ERCC spike-ins."""
    spec = DatasetSpec(
        dataset_id="lungraw",
        organism_ontology_term_id=HUMAN,
        n_cells=800,
        n_genes=1_500,
        assays=("EFO:0009922", "EFO:0009899"),
        tissues=("UBERON:0002048",),
        raw_location="raw",
        n_spike_ins=10,
    )
    return write_dataset(spec, synth_dir / "lungraw.h5ad", seed=11, chunk_size=300)


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> SynthCorpus:
    """The demo corpus at 3,000 cells (seed 3)."""
    return synth_corpus(tmp_path_factory.mktemp("demo"), seed=3, n_cells=3_000, chunk_size=400)
