"""A whole synthetic corpus: the demo composition, :func:`synth_corpus` and its manifest."""

from __future__ import annotations

import csv
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import h5py
from anndata.io import read_elem

from cellcensus.errors import BadInputError
from cellcensus.synth._catalog import HUMAN, MOUSE
from cellcensus.synth._provenance import provenance
from cellcensus.synth._random import check_seed, uuid4
from cellcensus.synth._spatial import SLIDE_SEQ_V2, VISIUM_SPOTS, VISIUM_V1
from cellcensus.synth._spec import DatasetSpec
from cellcensus.synth._write import write_dataset

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["MANIFEST_COLUMNS", "SynthCorpus", "demo_corpus_specs", "synth_corpus"]

logger = logging.getLogger(__name__)

#: Header of the manifest CSV (the official Census builder's format).
MANIFEST_COLUMNS: Final = (
    "dataset_id",
    "dataset_asset_h5ad_uri",
    "dataset_version_id",
    "dataset_title",
    "collection_id",
    "collection_name",
    "collection_doi",
    "collection_doi_label",
    "citation",
)
RAT: Final = "NCBITaxon:10116"
_MIN_CELLS: Final = 20

# (share of cells, spec fields) of the demo corpus; ids are filled in per seed.
_DEMO: Final[tuple[tuple[float, dict[str, object]], ...]] = (
    # 0: human blood + spleen, 10x 3' v3, counts in X, a few two-disease cells
    (0.25, {"organism_ontology_term_id": HUMAN, "tissues": ("UBERON:0000178", "UBERON:0002106"),
            "multi_disease_fraction": 0.05}),
    # 1: human lung, 10x 3' v2 + v3, counts in raw.X and log1p CP10k in X
    (0.15, {"organism_ontology_term_id": HUMAN, "assays": ("EFO:0009922", "EFO:0009899"),
            "tissues": ("UBERON:0002048",), "raw_location": "raw", "n_genes": 2500,
            "multi_disease_fraction": 0.1}),
    # 2: human brain: tissue + organoid + primary cell culture, 10x 3' v3 + CITE-seq (not a
    #    Census assay): the culture cells and the CITE-seq cells are excluded from the Census
    (0.15, {"organism_ontology_term_id": HUMAN, "assays": ("EFO:0009922", "EFO:0009294"),
            "tissue_types": ("tissue", "organoid", "primary cell culture"),
            "tissues": ("UBERON:0000956", "UBERON:0002421", "UBERON:0000955", "CL:0000057")}),
    # 3: human liver, Smart-seq2 (full-gene-length), ERCC spike-ins, dense matrix
    (0.05, {"organism_ontology_term_id": HUMAN, "assays": ("EFO:0008931",),
            "tissues": ("UBERON:0002107",), "n_spike_ins": 40, "x_format": "dense",
            "n_genes": 3000}),
    # 4: mouse brain + lung, 10x 3' v3, CSC matrix, raw.X
    (0.15, {"organism_ontology_term_id": MOUSE,
            "tissues": ("UBERON:0000956", "UBERON:0002048"), "x_format": "csc",
            "raw_location": "raw", "multi_disease_fraction": 0.02}),
    # 5: mouse liver + bone marrow + blood, 10x 3' v2, ERCC spike-ins
    (0.12, {"organism_ontology_term_id": MOUSE, "assays": ("EFO:0009899",),
            "tissues": ("UBERON:0002107", "UBERON:0002371", "UBERON:0000178"),
            "n_spike_ins": 12, "n_genes": 2200}),
    # 6: rat lung: an organism the Census does not build, excluded entirely
    (0.05, {"organism_ontology_term_id": RAT, "tissues": ("UBERON:0002048",), "n_genes": 1500}),
    # 7: human re-used subset of dataset 0: is_primary_data False
    (0.08, {"organism_ontology_term_id": HUMAN, "duplicate_of": 0}),
)  # fmt: skip

# spatial datasets of the demo (census_spatial_sequencing); a Visium capture area has a fixed
# number of spots, so its share is 0 and its size VISIUM_SPOTS whatever the corpus size
_DEMO_SPATIAL: Final[tuple[tuple[float, dict[str, object]], ...]] = (
    # 8: human liver, Visium V1: one capture area, hires image, in_tissue/array_row/array_col
    (0.0, {"organism_ontology_term_id": HUMAN, "assays": (VISIUM_V1,), "n_cells": VISIUM_SPOTS,
           "tissues": ("UBERON:0002107",), "n_genes": 1500}),
    # 9: mouse brain, Slide-seqV2: one puck of beads, no image
    (0.03, {"organism_ontology_term_id": MOUSE, "assays": (SLIDE_SEQ_V2,),
            "tissues": ("UBERON:0000956",), "n_genes": 1200}),
)  # fmt: skip


def _demo_id(seed: int, index: int) -> str:
    return uuid4("dataset", seed, index)


def demo_corpus_specs(
    n_cells: int = 60_000, *, seed: int = 0, spatial: bool = True
) -> list[DatasetSpec]:
    """Return the specs of the demo corpus, scaled to about ``n_cells`` cells in total.

    Eight single-cell datasets: four human (blood/spleen; lung with counts in ``raw.X``; brain
    tissue, organoid and primary cell culture with some CITE-seq cells; Smart-seq2 liver with ERCC
    spike-ins as a dense matrix), two mouse (a CSC one; one with spike-ins), one rat (an
    organism the Census does not build) and one human dataset re-using cells of the first
    (``is_primary_data`` False). Several carry cells with two diseases. With ``spatial``, two
    spatial datasets follow, on top of ``n_cells``: a human Visium V1 capture area (always 4,992
    spots) and a mouse Slide-seqV2 puck (3% of ``n_cells``).

    Parameters
    ----------
    n_cells
        Total cells (each dataset gets a fixed share, at least 20).
    seed
        Seed the dataset ids (UUIDs) are derived from.
    spatial
        Add the Visium and Slide-seqV2 datasets.

    Returns
    -------
    list of DatasetSpec
        In writing order (a duplicate after its source).
    """
    if isinstance(n_cells, bool) or not isinstance(n_cells, int) or n_cells < 1:
        msg = f"must be a positive integer, got {n_cells!r}"
        raise BadInputError(msg, field="n_cells")
    seed = check_seed(seed)
    composition = _DEMO + _DEMO_SPATIAL if spatial else _DEMO
    ids = [_demo_id(seed, i) for i in range(len(composition))]
    specs = []
    for i, (share, fields) in enumerate(composition):
        kwargs = dict(fields)
        if isinstance(kwargs.get("duplicate_of"), int):
            kwargs["duplicate_of"] = ids[int(kwargs["duplicate_of"])]  # type: ignore[call-overload]
        kwargs.setdefault("n_cells", max(_MIN_CELLS, round(share * n_cells)))
        specs.append(DatasetSpec(dataset_id=ids[i], **kwargs))  # type: ignore[arg-type]
    return specs


@dataclass(frozen=True)
class SynthCorpus:
    """A written synthetic corpus.

    Attributes
    ----------
    root
        Its directory.
    manifest_path
        ``<root>/manifest.csv`` in the Census builder's manifest format.
    specs
        The specs written (with their final dataset ids).
    paths
        Dataset id -> H5AD path.
    """

    root: Path
    manifest_path: Path
    specs: list[DatasetSpec]
    paths: dict[str, Path]


def _with_ids(specs: Sequence[DatasetSpec], seed: int) -> list[DatasetSpec]:
    out = [
        s if s.dataset_id else dataclasses.replace(s, dataset_id=uuid4("dataset", seed, i))
        for i, s in enumerate(specs)
    ]
    ids = [s.dataset_id for s in out]
    if len(set(ids)) != len(ids):
        msg = "dataset ids must be unique in a corpus"
        raise BadInputError(msg, field="dataset_id")
    position = {dataset_id: i for i, dataset_id in enumerate(ids)}
    for i, s in enumerate(out):
        if s.duplicate_of is not None and position.get(s.duplicate_of, len(out)) >= i:
            msg = f"duplicate_of {s.duplicate_of!r} must name a dataset earlier in the list"
            raise BadInputError(
                msg,
                dataset_id=s.dataset_id,
                field="duplicate_of",
            )
    return out


def _read_title(path: Path) -> str:
    with h5py.File(path, "r") as f:
        return str(read_elem(f["uns/title"]))


def write_manifest(
    path: Path, specs: Sequence[DatasetSpec], paths: dict[str, Path], seed: int
) -> Path:
    """Write the corpus manifest CSV (official Census builder format, absolute local paths).

    Parameters
    ----------
    path
        The CSV to write.
    specs
        The datasets, in order.
    paths
        Dataset id -> written H5AD.
    seed
        Corpus seed (for version ids, collections and citations).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for spec in specs:
            p = provenance(spec, seed)
            h5ad = paths[spec.dataset_id]
            writer.writerow(
                [
                    spec.dataset_id,
                    str(h5ad.resolve()),
                    p.dataset_version_id,
                    _read_title(h5ad),
                    p.collection_id,
                    p.collection_name,
                    p.collection_doi,
                    p.collection_doi_label,
                    p.citation,
                ]
            )
    return path


def synth_corpus(
    out_dir: str | Path,
    *,
    seed: int = 0,
    specs: Sequence[DatasetSpec] | None = None,
    n_cells: int = 60_000,
    chunk_size: int = 10_000,
    progress: Callable[[str, int], None] | None = None,
) -> SynthCorpus:
    """Write a synthetic corpus: one published-form H5AD per spec and ``manifest.csv``.

    Parameters
    ----------
    out_dir
        Directory to write into (created if missing).
    seed
        Corpus seed: same seed, same files.
    specs
        The datasets; :func:`demo_corpus_specs` ``(n_cells, seed=seed)`` when None. Specs with an
        empty ``dataset_id`` get a UUID derived from the seed and their position.
    n_cells
        Total cells of the demo corpus (ignored when ``specs`` is given).
    chunk_size
        Cells generated and written per step.
    progress
        Called after each chunk with the dataset id and the number of cells written.

    Returns
    -------
    SynthCorpus
        Where everything was written.
    """
    seed = check_seed(seed)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = _with_ids(demo_corpus_specs(n_cells, seed=seed) if specs is None else specs, seed)
    paths: dict[str, Path] = {}
    for spec in final:
        callback = None
        if progress is not None:
            callback = _bind(progress, spec.dataset_id)
        paths[spec.dataset_id] = write_dataset(
            spec,
            root / f"{spec.dataset_id}.h5ad",
            seed=seed,
            chunk_size=chunk_size,
            progress=callback,
        )
    manifest = write_manifest(root / "manifest.csv", final, paths, seed)
    logger.info("wrote %d datasets and %s", len(final), manifest)
    return SynthCorpus(root=root, manifest_path=manifest, specs=final, paths=paths)


def _bind(progress: Callable[[str, int], None], dataset_id: str) -> Callable[[int], None]:
    def call(n: int) -> None:
        progress(dataset_id, n)

    return call
