"""What a census built from a corpus must contain, computed straight from the H5ADs with anndata.

Independent of the builder's code paths: it loads each (small) source whole and applies the census
inclusion rules as written in CENSUS_SCHEMA.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anndata
import numpy as np
import pandas as pd
import tiledbsoma as soma
from scipy import sparse

from cellcensus.builder._schema import ORGANISMS, accepted_assays

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

    from cellcensus.synth import SynthCorpus


@dataclass
class ExpectedDataset:
    dataset_id: str
    organism: str  # machine name, e.g. homo_sapiens
    obs: pd.DataFrame  # included cells, in H5AD order
    var: pd.DataFrame  # kept features (index feature_id)
    counts: sparse.csr_matrix  # included cells x kept features, raw counts


def expected_datasets(corpus: SynthCorpus) -> list[ExpectedDataset]:
    """Included cells and features of every dataset of the corpus, in manifest order."""
    manifest = pd.read_csv(corpus.manifest_path)
    by_term = {o.ontology_term_id: o.name for o in ORGANISMS}
    out = []
    for dataset_id in manifest["dataset_id"]:
        a = anndata.read_h5ad(corpus.paths[dataset_id])
        organism = a.uns["organism_ontology_term_id"]
        if organism not in by_term:
            continue
        raw_x = a.raw.X if a.raw is not None else a.X
        var = a.raw.var if a.raw is not None else a.var
        cells = (
            a.obs["tissue_type"].isin(["tissue", "organoid"])
            & a.obs["assay_ontology_term_id"].isin(sorted(accepted_assays()))
        ).to_numpy()
        genes = (
            (var["feature_biotype"] == "gene") & (var["feature_reference"] == organism)
        ).to_numpy()
        if not cells.any() or not genes.any():
            continue
        counts = sparse.csr_matrix(raw_x)[cells][:, genes]
        counts.sum_duplicates()
        counts.eliminate_zeros()
        out.append(
            ExpectedDataset(
                dataset_id=dataset_id,
                organism=by_term[organism],
                obs=a.obs[cells].copy(),
                var=var[genes].copy(),
                counts=counts.astype(np.float32),
            )
        )
    return out


def census_tables(path: Path) -> dict[str, pa.Table]:
    """Every table of a build (X sorted by coordinates), for equality comparisons."""
    out: dict[str, pa.Table] = {}
    with soma.open(str(path / "soma")) as census:
        for key in ("datasets", "summary_cell_counts", "summary", "organisms"):
            out[key] = census["census_info"][key].read().concat()
        for organism in ("homo_sapiens", "mus_musculus"):
            exp = census["census_data"][organism]
            out[f"{organism}/obs"] = exp.obs.read().concat()
            out[f"{organism}/var"] = exp.ms["RNA"].var.read().concat()
            for layer in ("raw", "normalized"):
                out[f"{organism}/{layer}"] = (
                    exp.ms["RNA"]
                    .X[layer]
                    .read()
                    .tables()
                    .concat()
                    .sort_by([("soma_dim_0", "ascending"), ("soma_dim_1", "ascending")])
                )
            out[f"{organism}/presence"] = (
                exp.ms["RNA"]["feature_dataset_presence_matrix"].read().tables().concat()
            )
            out.update(gene_tables(census, organism))
    return out


def gene_tables(census: soma.Collection, organism: str) -> dict[str, pa.Table]:
    """The ``cellcensus_genes`` tables of an organism (copies sorted by coordinates)."""
    out: dict[str, pa.Table] = {}
    if "cellcensus_genes" not in census or organism not in census["cellcensus_genes"]:
        return out
    genes = census["cellcensus_genes"][organism]
    for name in ("expression_summary", "expression_summary_cell_groups"):
        out[f"{organism}/genes/{name}"] = genes[name].read().concat().sort_by("soma_joinid")
    if "X" in genes:
        for layer in genes["X"]:
            out[f"{organism}/genes/X/{layer}"] = (
                genes["X"][layer]
                .read()
                .tables()
                .concat()
                .sort_by([("soma_dim_0", "ascending"), ("soma_dim_1", "ascending")])
            )
    return out
