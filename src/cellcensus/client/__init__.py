"""The read side: ``cellxgene_census``'s API over any release root, plus export and filters.

Everything here is re-exported from :mod:`cellcensus`; see ``docs/client.md``.
"""

from __future__ import annotations

from cellcensus.client._directory import (
    ENV_RELEASE_ROOT,
    ReleaseSource,
    ResolvedRelease,
    clear_cache,
    configure,
    get_census_mirror_directory,
    get_census_version_description,
    get_census_version_directory,
    release_source,
    resolve_release,
)
from cellcensus.client._estimate import QueryEstimate, format_bytes, parse_bytes
from cellcensus.client._export import ExportPlan, ExportResult, export, plan_export
from cellcensus.client._filters import (
    check_value_filter,
    multi_value_filter,
    ontology_filter,
    ontology_terms,
)
from cellcensus.client._open import get_default_soma_context, open_soma
from cellcensus.client._query import (
    estimate,
    get_anndata,
    get_obs,
    get_presence_matrix,
    get_var,
)
from cellcensus.client._readback import read_export
from cellcensus.client._source_h5ad import download_source_h5ad, get_source_h5ad_uri
from cellcensus.client._spatialdata import SpatialDataExportResult, export_spatialdata
from cellcensus.errors import (
    AccessDeniedError,
    CensusNotFoundError,
    CollectionNotFoundError,
    DatasetNotFoundError,
    FilterError,
    MemoryEstimateWarning,
    QueryArgumentError,
    QueryArgumentTypeError,
    QueryTooLargeError,
    ReleaseRootUnreachableError,
)

__all__ = [
    "ENV_RELEASE_ROOT",
    "AccessDeniedError",
    "CensusNotFoundError",
    "CollectionNotFoundError",
    "DatasetNotFoundError",
    "ExportPlan",
    "ExportResult",
    "FilterError",
    "MemoryEstimateWarning",
    "QueryArgumentError",
    "QueryArgumentTypeError",
    "QueryEstimate",
    "QueryTooLargeError",
    "ReleaseRootUnreachableError",
    "ReleaseSource",
    "ResolvedRelease",
    "SpatialDataExportResult",
    "check_value_filter",
    "clear_cache",
    "configure",
    "download_source_h5ad",
    "estimate",
    "export",
    "export_spatialdata",
    "format_bytes",
    "get_anndata",
    "get_census_mirror_directory",
    "get_census_version_description",
    "get_census_version_directory",
    "get_default_soma_context",
    "get_obs",
    "get_presence_matrix",
    "get_source_h5ad_uri",
    "get_var",
    "multi_value_filter",
    "ontology_filter",
    "ontology_terms",
    "open_soma",
    "parse_bytes",
    "plan_export",
    "read_export",
    "release_source",
    "resolve_release",
]
