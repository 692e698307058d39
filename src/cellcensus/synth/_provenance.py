"""Portal-side facts of a synthetic dataset: version id, collection, DOI and citation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from cellcensus.synth._catalog import organism_info
from cellcensus.synth._random import text_key, uuid4

if TYPE_CHECKING:
    from cellcensus.synth._spec import DatasetSpec

__all__ = ["Provenance", "provenance"]

logger = logging.getLogger(__name__)

_SURNAMES: Final = ("Okafor", "Lindqvist", "Tanaka", "Moreau", "Castillo", "Novak", "Haddad", "Rao")
_JOURNALS: Final = ("Synthetic Cell Biology", "Journal of Simulated Genomics", "Mock Atlas Reports")
_DOI_PREFIX: Final = "10.5555"  # the DOI prefix reserved for examples and tests
PORTAL: Final = "https://cellxgene.cziscience.com"
DATASETS_HOST: Final = "https://datasets.cellxgene.cziscience.com"


@dataclass(frozen=True)
class Provenance:
    """What CELLxGENE Discover knows about a dataset beyond its H5AD."""

    dataset_version_id: str
    collection_id: str
    collection_name: str
    collection_doi: str
    collection_doi_label: str
    citation: str


def provenance(spec: DatasetSpec, seed: int) -> Provenance:
    """Return the deterministic portal facts of a dataset.

    Datasets of one organism share a collection; duplicates (``duplicate_of``) go to an
    "integrated atlas" collection, as re-used cells usually do.

    Parameters
    ----------
    spec
        The dataset (its id must be set).
    seed
        Corpus seed.

    Returns
    -------
    Provenance
        Version id, collection id/name/DOI/label and the citation in the portal's format.
    """
    atlas = spec.duplicate_of is not None
    group = "integrated-atlas" if atlas else spec.organism_ontology_term_id
    collection_id = uuid4("collection", seed, group)
    pick = text_key(collection_id)
    if atlas:
        name = "Synthetic integrated cross-study atlas"
    else:
        name = f"Synthetic {organism_info(spec.organism_ontology_term_id).label} cell atlas"
    doi = f"{_DOI_PREFIX}/synth.{collection_id[:8]}"
    label = (
        f"{_SURNAMES[pick % len(_SURNAMES)]} et al. ({2021 + pick % 5}) "
        f"{_JOURNALS[(pick >> 8) % len(_JOURNALS)]}"
    )
    version_id = uuid4("dataset-version", seed, spec.dataset_id)
    citation = (
        f"Publication: https://doi.org/{doi} "
        f"Dataset Version: {DATASETS_HOST}/{version_id}.h5ad "
        "curated and distributed by CZ CELLxGENE Discover in Collection: "
        f"{PORTAL}/collections/{collection_id}"
    )
    return Provenance(
        dataset_version_id=version_id,
        collection_id=collection_id,
        collection_name=name,
        collection_doi=doi,
        collection_doi_label=label,
        citation=citation,
    )
