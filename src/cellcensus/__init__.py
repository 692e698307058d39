"""cellcensus: self-hosted CELLxGENE-Census-compatible releases.

The read API mirrors ``cellxgene_census`` 1.18 (``open_soma``, ``get_anndata``, ...) over any
release root; what goes beyond it lives in :mod:`cellcensus.experimental` (bounded-memory
export, query estimates, ontology filters), release management in :mod:`cellcensus.release`,
every error in :mod:`cellcensus.errors`, settings in :mod:`cellcensus.settings`.

Names are imported on first use, so ``import cellcensus`` stays cheap for the builder and the
command line.

Lifecycle: maturing (each function's docstring says its own stage).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from cellcensus.errors import (
    BadInputError,
    CellCensusError,
    CensusNotFoundError,
    ConfigError,
    DatasetNotFoundError,
    IntegrityError,
    MemoryEstimateWarning,
    NotFoundError,
    PermissionDeniedError,
    QueryTooLargeError,
    StorageError,
)

if TYPE_CHECKING:
    from cellcensus import experimental
    from cellcensus.client import (
        configure,
        download_source_h5ad,
        get_anndata,
        get_census_mirror_directory,
        get_census_version_description,
        get_census_version_directory,
        get_default_soma_context,
        get_obs,
        get_presence_matrix,
        get_source_h5ad_uri,
        get_var,
        open_soma,
    )
    from cellcensus.errors import (
        AccessDeniedError,
        CollectionNotFoundError,
        FilterError,
        QueryArgumentError,
        ReleaseRootUnreachableError,
    )

try:
    __version__ = version("cellcensus")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: Errors whose bases are TileDB-SOMA types: loaded with TileDB, on first use.
_LAZY_ERRORS = frozenset(
    {
        "AccessDeniedError",
        "CollectionNotFoundError",
        "FilterError",
        "QueryArgumentError",
        "ReleaseRootUnreachableError",
    }
)
#: The official client's functions (and ``configure``), from :mod:`cellcensus.client`.
_CLIENT_NAMES = frozenset(
    {
        "configure",
        "download_source_h5ad",
        "get_anndata",
        "get_census_mirror_directory",
        "get_census_version_description",
        "get_census_version_directory",
        "get_default_soma_context",
        "get_obs",
        "get_presence_matrix",
        "get_source_h5ad_uri",
        "get_var",
        "open_soma",
    }
)
#: Earlier top-level names of what now lives in :mod:`cellcensus.experimental`; still
#: reachable here for existing code, but not part of the top-level API (not in ``__all__``).
_MOVED_TO_EXPERIMENTAL = frozenset(
    {
        "ExportPlan",
        "ExportResult",
        "QueryEstimate",
        "estimate",
        "export",
        "multi_value_filter",
        "ontology_filter",
        "ontology_terms",
        "plan_export",
        "read_export",
    }
)


def __getattr__(name: str) -> Any:  # noqa: ANN401 - any public object
    if name == "experimental":
        return importlib.import_module("cellcensus.experimental")
    if name in _CLIENT_NAMES:
        module = "cellcensus.client"
    elif name in _LAZY_ERRORS:
        module = "cellcensus.errors"
    elif name in _MOVED_TO_EXPERIMENTAL:
        module = "cellcensus.experimental"
    else:
        msg = f"module 'cellcensus' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "AccessDeniedError",
    "BadInputError",
    "CellCensusError",
    "CensusNotFoundError",
    "CollectionNotFoundError",
    "ConfigError",
    "DatasetNotFoundError",
    "FilterError",
    "IntegrityError",
    "MemoryEstimateWarning",
    "NotFoundError",
    "PermissionDeniedError",
    "QueryArgumentError",
    "QueryTooLargeError",
    "ReleaseRootUnreachableError",
    "StorageError",
    "__version__",
    "configure",
    "download_source_h5ad",
    "experimental",
    "get_anndata",
    "get_census_mirror_directory",
    "get_census_version_description",
    "get_census_version_directory",
    "get_default_soma_context",
    "get_obs",
    "get_presence_matrix",
    "get_source_h5ad_uri",
    "get_var",
    "open_soma",
]
