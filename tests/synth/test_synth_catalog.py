"""The ontology catalog: every term is current and allowed by the schema-7 rules, with its label."""

from __future__ import annotations

import warnings

import pytest
from cellxgene_ontology_guide.ontology_parser import OntologyParser

from cellcensus.synth import demo_corpus_specs
from cellcensus.synth._catalog import (
    CULTURE_TISSUES,
    MARKER_GENES,
    MULTI_DISEASES,
    ORGANISM_LABELS,
    ORGANOID_TISSUES,
    TISSUES,
    organism_info,
    suspension_options,
    term_label,
)
from cellcensus.synth._genes import HOUSEKEEPING, gene_table

VERSIONS = ("7.0.0", "7.1.0")


@pytest.fixture(scope="module", params=VERSIONS)
def parser(request: pytest.FixtureRequest) -> OntologyParser:
    """The ontology releases of one supported schema version."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 7.0.0 is marked deprecated
        return OntologyParser(f"v{request.param}")


def _split(terms: set[str]) -> set[str]:
    return {t for term in terms for t in term.split(" || ")} - {"unknown", "na"}


def _catalog_terms() -> dict[str, set[str]]:
    """Each column's terms with the ancestors (any of) the 7.x validator requires."""
    tissues = {t.term_id for t in TISSUES + ORGANOID_TISSUES}
    cell_types = {c for t in TISSUES + ORGANOID_TISSUES + CULTURE_TISSUES for c in t.cell_types}
    cell_types |= {t.term_id for t in CULTURE_TISSUES}
    diseases = {d for t in TISSUES + ORGANOID_TISSUES for d in t.diseases} | set(MULTI_DISEASES)
    human = organism_info("NCBITaxon:9606")
    return {
        "UBERON:0001062": tissues,
        "CL:0000000": cell_types,
        "MONDO:0000001": _split(diseases),
        "HsapDv:0000001": set(human.development_stages),
        "MmusDv:0000001": set(organism_info("NCBITaxon:10090").development_stages),
        "UBERON:0000105": set(organism_info("NCBITaxon:10116").development_stages),
        "HANCESTRO:0601|HANCESTRO:0602": _split(set(human.ethnicities)),
        "EFO:0002772|EFO:0010183": {a for s in demo_corpus_specs(1_000) for a in s.assays},
    }


def test_terms_are_current_and_allowed(parser: OntologyParser) -> None:
    forbidden_cell_types = {"CL:0000255", "CL:0000257", "CL:0000548"}
    for ancestors, terms in _catalog_terms().items():
        assert terms
        for term in sorted(terms):
            assert parser.is_valid_term_id(term), term
            assert not parser.is_term_deprecated(term), term
            found = set(parser.get_term_ancestors(term))
            assert found & set(ancestors.split("|")), (term, ancestors)
            assert term not in forbidden_cell_types
    assert "UBERON:0000922" not in {t.term_id for t in ORGANOID_TISSUES}  # embryo: forbidden


def test_multi_valued_terms_are_sorted_mondo() -> None:
    for value in (*MULTI_DISEASES, *organism_info("NCBITaxon:9606").ethnicities):
        parts = value.split(" || ")
        assert parts == sorted(parts)
        assert len(set(parts)) == len(parts)
    assert all(p.startswith("MONDO:") for v in MULTI_DISEASES for p in v.split(" || "))


def test_labels_agree_between_schema_versions() -> None:
    """The 7.0.0 labels equal what the 7.1 label writer (add-labels) would write."""
    terms = set().union(*_catalog_terms().values()) | set(MULTI_DISEASES)
    for term in sorted(terms):
        old, new = term_label(term, "7.0.0"), term_label(term, "7.1.0")
        assert old == new, term
        assert old
        assert old != term
    assert term_label("CL:0000084", "7.0.0") == "T cell"
    assert term_label("MONDO:0004975 || MONDO:0005148", "7.0.0") == (
        "Alzheimer disease || type 2 diabetes mellitus"
    )
    assert term_label("unknown", "7.0.0") == "unknown"


@pytest.mark.slow  # 20 s: loads the NCBITaxon ontology
def test_organism_labels_match_ncbitaxon() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        p = OntologyParser("v7.1.0")
    for term, label in ORGANISM_LABELS.items():
        assert p.get_term_label(term) == label


def test_t_cell_subtypes_are_t_cells(parser: OntologyParser) -> None:
    """Queries such as 'all T cells' (descendants of CL:0000084) find several catalog types."""
    t_cells = set(parser.get_term_descendants("CL:0000084", include_self=True))
    blood = next(t for t in TISSUES if t.term_id == "UBERON:0000178")
    assert len(t_cells & set(blood.cell_types)) >= 4
    b_cells = set(parser.get_term_descendants("CL:0000236", include_self=True))
    assert len(b_cells & set(blood.cell_types)) >= 2


def test_suspension_rules() -> None:
    assert suspension_options("EFO:0009922") == ("cell", "nucleus")  # 10x 3' v3
    assert suspension_options("EFO:0008931") == ("cell", "nucleus")  # Smart-seq2 (Smart-like)
    assert suspension_options("EFO:0008992") == ("na",)  # MERFISH
    assert suspension_options("EFO:0009294") == ("cell", "nucleus", "na")  # CITE-seq: no rule


@pytest.mark.parametrize("organism", ["NCBITaxon:9606", "NCBITaxon:10090"])
def test_marker_and_housekeeping_genes_exist(organism: str) -> None:
    names = {str(n).upper() for n in gene_table(organism).names}
    symbols = {s for genes in MARKER_GENES.values() for s in genes} | set(HOUSEKEEPING)
    found = {s for s in symbols if s in names}
    assert len(found) >= 0.85 * len(symbols), sorted(symbols - found)
