"""cellcensus: self-hosted CELLxGENE-Census-compatible releases.

The read API mirrors ``cellxgene_census`` (``open_soma``, ``get_anndata``, ...) over any release
root, and adds bounded-memory :func:`export`, query :func:`estimate` and ontology-aware
:func:`ontology_filter`. Client names are imported on first use, so ``import cellcensus`` stays
cheap for the builder and the command line.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from cellcensus.errors import (
    BadInputError,
    CellCensusError,
    ConfigError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
)

if TYPE_CHECKING:
    from cellcensus import experimental
    from cellcensus.client import (
        AccessDeniedError,
        CensusNotFoundError,
        CollectionNotFoundError,
        DatasetNotFoundError,
        ExportPlan,
        ExportResult,
        FilterError,
        MemoryEstimateWarning,
        QueryArgumentError,
        QueryArgumentTypeError,
        QueryEstimate,
        QueryTooLargeError,
        ReleaseRootUnreachableError,
        configure,
        download_source_h5ad,
        estimate,
        export,
        get_anndata,
        get_census_mirror_directory,
        get_census_version_description,
        get_census_version_directory,
        get_default_soma_context,
        get_obs,
        get_presence_matrix,
        get_source_h5ad_uri,
        get_var,
        multi_value_filter,
        ontology_filter,
        ontology_terms,
        open_soma,
        plan_export,
        read_export,
    )

try:
    __version__ = version("cellcensus")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

_CLIENT_NAMES = frozenset(
    {
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
        "configure",
        "download_source_h5ad",
        "estimate",
        "export",
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
        "plan_export",
        "read_export",
    }
)


def __getattr__(name: str) -> Any:  # noqa: ANN401 - any public object
    if name in _CLIENT_NAMES:
        value = getattr(importlib.import_module("cellcensus.client"), name)
        globals()[name] = value
        return value
    if name == "experimental":
        return importlib.import_module("cellcensus.experimental")
    msg = f"module 'cellcensus' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *_CLIENT_NAMES, "experimental"})


__all__ = [
    "AccessDeniedError",
    "BadInputError",
    "CellCensusError",
    "CensusNotFoundError",
    "CollectionNotFoundError",
    "ConfigError",
    "DatasetNotFoundError",
    "ExportPlan",
    "ExportResult",
    "FilterError",
    "IntegrityError",
    "MemoryEstimateWarning",
    "NotFoundError",
    "PermissionDeniedError",
    "QueryArgumentError",
    "QueryArgumentTypeError",
    "QueryEstimate",
    "QueryTooLargeError",
    "ReleaseRootUnreachableError",
    "StorageError",
    "__version__",
    "configure",
    "download_source_h5ad",
    "estimate",
    "experimental",
    "export",
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
    "plan_export",
    "read_export",
]
