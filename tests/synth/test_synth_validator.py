"""The official validator accepts the submission form, and its label writer produces our
published form.

``cellxgene-schema validate`` (7.1 schema) runs offline but takes 20-30 s per file (more with
``--add-labels``), so the mouse file's run is marked slow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anndata
import numpy as np
import pandas as pd
import pytest

from cellcensus.synth import DatasetSpec, write_dataset

if TYPE_CHECKING:
    from pathlib import Path

    from tests.synth.conftest import Validate

LABEL_COLUMNS = [
    "cell_type",
    "assay",
    "disease",
    "sex",
    "tissue",
    "self_reported_ethnicity",
    "development_stage",
    "observation_joinid",
]
VAR_LABELS = [
    "feature_name",
    "feature_reference",
    "feature_biotype",
    "feature_length",
    "feature_type",
]


def test_validator_accepts_human_submission_and_labels_match(
    tmp_path: Path, official_validator: Validate
) -> None:
    """A human file with raw.X, two assays, organoid and cell-culture cells, spike-ins and
    two-disease cells validates; add-labels on it reproduces our published form."""
    human = DatasetSpec(
        dataset_id="human",
        organism_ontology_term_id="NCBITaxon:9606",
        n_cells=250,
        n_genes=1_000,
        assays=("EFO:0009922", "EFO:0009899"),
        tissue_types=("tissue", "organoid", "primary cell culture"),
        tissues=("UBERON:0002048", "UBERON:0000178", "UBERON:0000955", "CL:0000057"),
        raw_location="raw",
        n_spike_ins=8,
        multi_disease_fraction=0.2,
    )
    submitted = write_dataset(human, tmp_path / "human.h5ad", seed=5, form="submission")
    official_validator(submitted, "--add-labels", str(tmp_path / "human.labeled.h5ad"))

    # the portal's label writer, applied to our submission form, gives our published form
    ours = anndata.read_h5ad(write_dataset(human, tmp_path / "published.h5ad", seed=5))
    theirs = anndata.read_h5ad(tmp_path / "human.labeled.h5ad")
    assert list(theirs.obs.columns) == list(ours.obs.columns)
    for column in LABEL_COLUMNS:
        assert np.array_equal(
            theirs.obs[column].astype(str).to_numpy(), ours.obs[column].astype(str).to_numpy()
        ), column
    for theirs_var, ours_var in ((theirs.var, ours.var), (theirs.raw.var, ours.raw.var)):
        assert list(theirs_var.columns) == list(ours_var.columns)
        for column in VAR_LABELS:
            pd.testing.assert_series_equal(theirs_var[column], ours_var[column], check_names=False)
    assert theirs.uns["organism"] == ours.uns["organism"]
    assert theirs.uns["schema_version"] == "7.1.0"  # the validator's schema; ours stamps 7.0.0
    assert ours.uns["schema_version"] == "7.0.0"
    assert (theirs.X != ours.X).nnz == 0
    assert (theirs.raw.X != ours.raw.X).nnz == 0


@pytest.mark.slow
def test_validator_accepts_mouse_smartseq2_submission(
    tmp_path: Path, official_validator: Validate
) -> None:
    mouse = DatasetSpec(
        dataset_id="mouse",
        organism_ontology_term_id="NCBITaxon:10090",
        n_cells=150,
        n_genes=800,
        assays=("EFO:0008931",),  # Smart-seq2
        tissues=("UBERON:0000956",),
        n_spike_ins=20,
    )
    official_validator(write_dataset(mouse, tmp_path / "mouse.h5ad", seed=5, form="submission"))
