"""Fixtures of the synthetic-corpus tests: small datasets written once per module or session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import anndata
import pytest

from cellcensus.synth import DatasetSpec, SynthCorpus, synth_corpus, write_dataset

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


class Validate(Protocol):
    def __call__(self, path: Path, *extra: str) -> None: ...


@pytest.fixture(scope="session")
def official_validator() -> Validate:
    """cellxgene-schema's ``validate`` command, asserting a clean verdict on a file.

    cellxgene-schema pins anndata and dask exactly; the newest-versions environment
    (``CELLCENSUS_DEPS=newest``, see README) lifts those pins, and its validator may then not
    import: only there are the tests using it skipped, with the import error as the reason.
    Anywhere else a validator that does not import fails the test.
    """
    probe = subprocess.run(
        [sys.executable, "-c", "import cellxgene_schema.validate"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        error = (probe.stderr.strip().splitlines() or ["?"])[-1]
        if os.environ.get("CELLCENSUS_DEPS") == "newest":
            pytest.skip(f"cellxgene-schema's validator does not import here: {error}")
        pytest.fail(f"cellxgene-schema's validator does not import: {error}")
    cli = Path(sys.executable).parent / "cellxgene-schema"

    def validate(path: Path, *extra: str) -> None:
        run = subprocess.run(
            [str(cli), "validate", str(path), *extra],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-3000:]
        assert "is_valid=True" in output, output[-3000:]
        assert "ERROR" not in output, output[-3000:]

    return validate
