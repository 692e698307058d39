"""What cellcensus adds beyond the official client, and may still change.

Lifecycle: experimental — names here may change or move between minor releases.

- :func:`estimate`, :func:`export`, :func:`plan_export`, :func:`read_export` (with
  :class:`ExportPlan`, :class:`ExportResult`, :class:`QueryEstimate`): a query's size before it
  runs, and bounded-memory export to ``.h5ad`` / ``.zarr`` / ``.parquet``;
- :func:`ontology_filter`, :func:`ontology_terms`, :func:`multi_value_filter`: value filters
  from ontology terms ("all T cells");
- :mod:`pp`: ``cellxgene_census.experimental.pp`` over any release.

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
        estimate,
        export,
        multi_value_filter,
        ontology_filter,
        ontology_terms,
        plan_export,
        read_export,
    )
    from cellcensus.experimental import pp

__all__ = [
    "ExportPlan",
    "ExportResult",
    "QueryEstimate",
    "estimate",
    "export",
    "multi_value_filter",
    "ontology_filter",
    "ontology_terms",
    "plan_export",
    "pp",
    "read_export",
]


def __getattr__(name: str) -> Any:  # noqa: ANN401 - any public object
    if name == "pp":
        return importlib.import_module("cellcensus.experimental.pp")
    if name in __all__:
        value = getattr(importlib.import_module("cellcensus.client"), name)
        globals()[name] = value
        return value
    msg = f"module 'cellcensus.experimental' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
