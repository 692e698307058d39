"""Cell (and gene) embeddings attached to releases: add, list, show, remove; the ``obsm`` post-build
step. Read them with :mod:`cellcensus.experimental` (``get_embedding``, ``find_nearest_obs``, ...)
or ``cellcensus.get_anndata(obs_embeddings=[...])``. See ``docs/embeddings.md``.
"""

from __future__ import annotations

from cellcensus.embeddings._attach import (
    AttachResult,
    EmbeddingDetails,
    EmbeddingMetadata,
    add_embedding,
    find_orphans,
    list_embeddings,
    read_contributions,
    remove_embedding,
    show_embedding,
)
from cellcensus.embeddings._input import EmbeddingInput, read_input
from cellcensus.embeddings._models import ContributionsDirectory, EmbeddingEntry, IndexInfo
from cellcensus.embeddings._obsm import ObsmResult, add_obsm_layer

__all__ = [
    "AttachResult",
    "ContributionsDirectory",
    "EmbeddingDetails",
    "EmbeddingEntry",
    "EmbeddingInput",
    "EmbeddingMetadata",
    "IndexInfo",
    "ObsmResult",
    "add_embedding",
    "add_obsm_layer",
    "find_orphans",
    "list_embeddings",
    "read_contributions",
    "read_input",
    "remove_embedding",
    "show_embedding",
]
