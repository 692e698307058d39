"""What a census built from a corpus must contain, computed straight from the H5ADs with anndata.

Independent of the builder's code paths: it loads each (small) source whole and applies the census
inclusion rules as written in CENSUS_SCHEMA.md and docs/spatial.md (spatial datasets: Visium V1 and
Slide-seqV2, human and mouse, primary cells only, into census_spatial_sequencing).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


#: The spatial assays and organisms of census_spatial_sequencing (docs/spatial.md), written out
#: here rather than imported from the builder.
SPATIAL_ASSAYS = ("EFO:0022857", "EFO:0030062")
SPATIAL_ORGANISMS = ("NCBITaxon:9606", "NCBITaxon:10090")


@dataclass
class ExpectedDataset:
    dataset_id: str
    organism: str  # machine name, e.g. homo_sapiens
    obs: pd.DataFrame  # included cells, in H5AD order
    var: pd.DataFrame  # kept features (index feature_id)
    counts: sparse.csr_matrix  # included cells x kept features, raw counts
    collection: str = "census_data"  # or census_spatial_sequencing
    rows: np.ndarray | None = None  # H5AD rows of the included cells
    locations: np.ndarray | None = None  # obsm["spatial"] of the included cells (spatial)
    spatial_uns: dict[str, Any] | None = None  # uns["spatial"] (spatial)

    @property
    def spatial(self) -> bool:
        return self.collection == "census_spatial_sequencing"


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
        tissue = a.obs["tissue_type"].isin(["tissue", "organoid"]).to_numpy()
        spatial = set(a.obs["assay_ontology_term_id"].astype(str)) <= set(SPATIAL_ASSAYS)
        if spatial:
            if organism not in SPATIAL_ORGANISMS:
                continue
            cells = tissue & a.obs["is_primary_data"].to_numpy(dtype=bool)
        else:
            cells = (
                tissue & a.obs["assay_ontology_term_id"].isin(sorted(accepted_assays())).to_numpy()
            )
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
                collection="census_spatial_sequencing" if spatial else "census_data",
                rows=np.flatnonzero(cells),
                locations=np.asarray(a.obsm["spatial"])[cells] if spatial else None,
                spatial_uns=dict(a.uns["spatial"]) if spatial else None,
            )
        )
    return out


def _sorted_x(array: Any) -> pa.Table:
    return (
        array.read()
        .tables()
        .concat()
        .sort_by([("soma_dim_0", "ascending"), ("soma_dim_1", "ascending")])
    )


def _spatial_tables(census: Any, out: dict[str, pa.Table]) -> None:
    """The spatial experiments' tables, scenes (point clouds sorted by joinid) and images."""
    import pyarrow as pa

    for organism in ("homo_sapiens", "mus_musculus"):
        exp = census["census_spatial_sequencing"][organism]
        key = f"spatial/{organism}"
        out[f"{key}/obs"] = exp.obs.read().concat()
        out[f"{key}/var"] = exp.ms["RNA"].var.read().concat()
        if "X" in exp.ms["RNA"] and "raw" in exp.ms["RNA"].X:
            out[f"{key}/raw"] = _sorted_x(exp.ms["RNA"].X["raw"])
            out[f"{key}/presence"] = _sorted_x(exp.ms["RNA"]["feature_dataset_presence_matrix"])
        if "obs_spatial_presence" in exp:
            out[f"{key}/obs_spatial_presence"] = (
                exp["obs_spatial_presence"].read().concat().sort_by("soma_joinid")
            )
        for scene_id in sorted(exp.spatial.keys()):
            scene = exp.spatial[scene_id]
            out[f"{key}/{scene_id}/loc"] = scene.obsl["loc"].read().concat().sort_by("soma_joinid")
            for lib in sorted(scene.img.keys()) if "img" in scene else []:
                pixels = scene.img[lib]["hires"].read().to_numpy()
                out[f"{key}/{scene_id}/img/{lib}"] = pa.table(
                    {
                        "shape": [list(pixels.shape)],
                        "sha256": [hashlib.sha256(pixels.tobytes()).hexdigest()],
                    }
                )


def census_tables(path: Path) -> dict[str, pa.Table]:
    """Every table of a build (X sorted by coordinates), for equality comparisons."""
    out: dict[str, pa.Table] = {}
    with soma.Collection[Any].open(str(path / "soma")) as census:
        for key in ("datasets", "summary_cell_counts", "summary", "organisms"):
            out[key] = census["census_info"][key].read().concat()
        for organism in ("homo_sapiens", "mus_musculus"):
            exp = census["census_data"][organism]
            out[f"{organism}/obs"] = exp.obs.read().concat()
            out[f"{organism}/var"] = exp.ms["RNA"].var.read().concat()
            for layer in ("raw", "normalized"):
                if layer in exp.ms["RNA"].X:  # an experiment without cells has no layers
                    out[f"{organism}/{layer}"] = _sorted_x(exp.ms["RNA"].X[layer])
            if "feature_dataset_presence_matrix" in exp.ms["RNA"]:
                out[f"{organism}/presence"] = (
                    exp.ms["RNA"]["feature_dataset_presence_matrix"].read().tables().concat()
                )
            out.update(gene_tables(census, organism))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Support for spatial types is experimental")
            _spatial_tables(census, out)
    return out


def gene_tables(census: soma.Collection[Any], organism: str) -> dict[str, pa.Table]:
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
