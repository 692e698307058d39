"""What cellcensus adds beyond the official client, and the official experimental API.

Lifecycle: experimental — names here may change or move between minor releases.

- the official ``cellxgene_census.experimental`` embedding API over any release root:
  :func:`get_embedding`, :func:`get_embedding_metadata`, :func:`get_embedding_metadata_by_name`,
  :func:`get_all_available_embeddings`, :func:`get_all_census_versions_with_embedding`,
  :func:`find_nearest_obs`, :class:`NeighborObs`, :func:`predict_obs_metadata`, and :mod:`util`
  (see ``docs/embeddings.md``);
- :func:`estimate`, :func:`export`, :func:`plan_export`, :func:`read_export` (with
  :class:`ExportPlan`, :class:`ExportResult`, :class:`QueryEstimate`): a query's size before it
  runs, and bounded-memory export to ``.h5ad`` / ``.zarr`` / ``.parquet``;
- :func:`export_spatialdata` (with :class:`SpatialDataExportResult`): a query of a spatial
  experiment as a SpatialData zarr store (needs the ``[spatial]`` extra; ``docs/spatial.md``);
- :func:`ontology_filter`, :func:`ontology_terms`, :func:`multi_value_filter`: value filters
  from ontology terms ("all T cells");
- :mod:`pp`: ``cellxgene_census.experimental.pp`` over any release;
- :func:`summarize`: where genes are expressed (per tissue, cell type, assay, disease, sex or
  dataset), from the expression summary of a cellcensus build.

Names are imported on first use (``import cellcensus.experimental`` loads nothing heavy).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellcensus.client import (
        ExportPlan,
        ExportResult,
        QueryEstimate,
        SpatialDataExportResult,
        estimate,
        export,
        export_spatialdata,
        multi_value_filter,
        ontology_filter,
        ontology_terms,
        plan_export,
        read_export,
    )
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
    from cellcensus.experimental._summary import summarize

#: where each public name lives (loaded on first use)
_HOMES = {
    **dict.fromkeys(
        (
            "ExportPlan",
            "ExportResult",
            "QueryEstimate",
            "SpatialDataExportResult",
            "estimate",
            "export",
            "export_spatialdata",
            "multi_value_filter",
            "ontology_filter",
            "ontology_terms",
            "plan_export",
            "read_export",
        ),
        "cellcensus.client",
    ),
    **dict.fromkeys(
        (
            "get_all_available_embeddings",
            "get_all_census_versions_with_embedding",
            "get_embedding",
            "get_embedding_metadata",
            "get_embedding_metadata_by_name",
        ),
        "cellcensus.experimental._embedding",
    ),
    **dict.fromkeys(
        ("NeighborObs", "find_nearest_obs", "predict_obs_metadata"),
        "cellcensus.experimental._embedding_search",
    ),
    "summarize": "cellcensus.experimental._summary",
}
_MODULES = ("pp", "util")

__all__ = [
    "ExportPlan",
    "ExportResult",
    "NeighborObs",
    "QueryEstimate",
    "SpatialDataExportResult",
    "estimate",
    "export",
    "export_spatialdata",
    "find_nearest_obs",
    "get_all_available_embeddings",
    "get_all_census_versions_with_embedding",
    "get_embedding",
    "get_embedding_metadata",
    "get_embedding_metadata_by_name",
    "multi_value_filter",
    "ontology_filter",
    "ontology_terms",
    "plan_export",
    "pp",
    "predict_obs_metadata",
    "read_export",
    "summarize",
    "util",
]


def __getattr__(name: str) -> Any:  # noqa: ANN401 - any public object
    if name in _MODULES:
        return importlib.import_module(f"cellcensus.experimental.{name}")
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    msg = f"module 'cellcensus.experimental' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
