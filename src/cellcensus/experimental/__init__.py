"""Parts of the API that may still change (as ``cellxgene_census.experimental``).

The embedding functions work over any release root (see ``docs/embeddings.md``); ``pp`` and
``util`` as in the official client.
"""

from __future__ import annotations

from cellcensus.experimental import pp, util
from cellcensus.experimental._embedding import (
    get_all_available_embeddings,
    get_all_census_versions_with_embedding,
    get_embedding,
    get_embedding_metadata,
    get_embedding_metadata_by_name,
)
from cellcensus.experimental._embedding_search import (
    NeighborObs,
    find_nearest_obs,
    predict_obs_metadata,
)

__all__ = [
    "NeighborObs",
    "find_nearest_obs",
    "get_all_available_embeddings",
    "get_all_census_versions_with_embedding",
    "get_embedding",
    "get_embedding_metadata",
    "get_embedding_metadata_by_name",
    "pp",
    "predict_obs_metadata",
    "util",
]
