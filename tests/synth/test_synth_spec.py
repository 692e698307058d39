"""DatasetSpec checks and write_dataset argument errors."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pytest

from cellcensus.errors import BadInputError
from cellcensus.synth import DatasetSpec, write_dataset

if TYPE_CHECKING:
    from pathlib import Path

BASE: dict[str, Any] = {
    "dataset_id": "d1",
    "organism_ontology_term_id": "NCBITaxon:9606",
    "n_cells": 100,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dataset_id": "../x"}, "dataset_id"),
        ({"dataset_id": "a b"}, "dataset_id"),
        ({"organism_ontology_term_id": "human"}, "organism_ontology_term_id"),
        ({"organism_ontology_term_id": "EFO:0009922"}, "organism_ontology_term_id"),
        ({"n_cells": 0}, "n_cells"),
        ({"n_cells": 1.5}, "n_cells"),
        ({"n_cells": True}, "n_cells"),
        ({"n_genes": 0}, "n_genes"),
        ({"assays": ()}, "assays"),
        ({"assays": ["EFO:0009922"]}, "assays"),
        ({"assays": ("CL:0000084",)}, "assays"),
        ({"assays": ("EFO:0009922", "EFO:0009922")}, "assays"),
        ({"tissue_types": ("tumour",)}, "tissue_types"),
        ({"tissue_types": ("cell culture", "primary cell culture")}, "tissue_types"),
        ({"raw_location": "layers"}, "raw_location"),
        ({"x_format": "coo"}, "x_format"),
        ({"n_spike_ins": 93}, "n_spike_ins"),
        ({"n_spike_ins": -1}, "n_spike_ins"),
        ({"duplicate_of": "d1"}, "duplicate_of"),
        ({"duplicate_of": "a/b"}, "duplicate_of"),
        ({"schema_version": "6.0.0"}, "schema_version"),
        ({"multi_disease_fraction": 1.5}, "multi_disease_fraction"),
        ({"multi_disease_fraction": "0.1"}, "multi_disease_fraction"),
        ({"tissues": ("blood",)}, "tissues"),
    ],
)
def test_bad_spec_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(BadInputError, match=f"field '{field}'") as info:
        DatasetSpec(**{**BASE, **change})
    assert info.value.field == field


def test_valid_spec_and_cell_culture_alias() -> None:
    spec = DatasetSpec(**BASE, tissue_types=("tissue", "cell culture"), n_spike_ins=92)
    assert spec.canonical_tissue_types == ("tissue", "primary cell culture")
    assert spec.n_genes == 2000
    assert spec.assays == ("EFO:0009922",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.n_cells = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        DatasetSpec("d1", "NCBITaxon:9606", 100)  # type: ignore[call-arg]  # keyword-only


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"seed": 0, "chunk_size": 0}, "chunk_size"),
        ({"seed": 0, "form": "draft"}, "form"),
    ],
)
def test_write_dataset_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(BadInputError, match=f"field '{field}'"):
        write_dataset(DatasetSpec(**BASE), tmp_path / "d1.h5ad", **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dataset_id": ""}, "dataset_id"),
        ({"organism_ontology_term_id": "NCBITaxon:7955"}, "organism_ontology_term_id"),  # fish
        ({"n_genes": 200_000}, "n_genes"),
        ({"tissues": ("UBERON:0000948",)}, "tissues"),  # heart: not in the catalog
        ({"assays": ("EFO:9999999",)}, None),  # not an EFO term
        ({"duplicate_of": "missing"}, "duplicate_of"),
    ],
)
def test_write_dataset_bad_content(
    tmp_path: Path, change: dict[str, Any], field: str | None
) -> None:
    spec = DatasetSpec(**{**BASE, **change})
    with pytest.raises(BadInputError) as info:
        write_dataset(spec, tmp_path / "x.h5ad", seed=0)
    if field is not None:
        assert info.value.field == field
    assert not any(p.suffix in (".h5ad", ".partial") for p in tmp_path.iterdir())


def test_duplicate_source_must_match(tmp_path: Path) -> None:
    source = DatasetSpec(**{**BASE, "dataset_id": "src", "n_genes": 200, "x_format": "csc"})
    write_dataset(source, tmp_path / "src.h5ad", seed=0)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"n_cells": 101}, "n_cells"),
        ({"organism_ontology_term_id": "NCBITaxon:10090"}, "duplicate_of"),
        ({}, "duplicate_of"),  # a CSC source cannot be read by rows
    ]
    for change, field in cases:
        dup = DatasetSpec(**{**BASE, "dataset_id": "dup", "duplicate_of": "src", **change})
        with pytest.raises(BadInputError) as info:
            write_dataset(dup, tmp_path / "dup.h5ad", seed=0)
        assert info.value.field == field
    assert not (tmp_path / "dup.h5ad").exists()
    assert not (tmp_path / "dup.h5ad.partial").exists()
