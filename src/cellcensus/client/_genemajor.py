"""``get_anndata`` over the gene-major copies of X that cellcensus builds write.

A cellcensus build holds, beside ``census_data/<organism>/ms/RNA/X/<layer>``, a copy of each layer
laid out gene after gene (``cellcensus_genes/<organism>/X/<layer>``; see ``docs/schema.md``): same
shape, coordinates and values. A query for a few genes reads every tile of the cell-major X (its
tiles hold 2,048 consecutive cells across 2,048 genes), but only those genes' tiles of the copy.

**The cost rule.** Reading X costs about the stored values TileDB decodes. For a query selecting
the cells ``C`` and the genes ``G``:

- cell-major: every tile of X that holds a selected cell and a selected gene is decoded, so about
  ``nnz(X) * (row tiles with a cell of C / row tiles) * (column tiles with a gene of G / column
  tiles)`` values (tiles are 2,048 x 2,048);
- gene-major: all stored values of the genes of ``G`` between the first and the last selected cell,
  about ``nnz(G) * (span of C / cells)``.

The copy is used when its cost is at most :data:`GENE_MAJOR_SHARE` of the cell-major cost (the
copy is then reliably faster, measured in ``benchmarks/bench_genes.py``), the copy exists for every
requested layer, and no ``obsm``/``obsp``/``varm``/``varp`` layer or embedding is asked for. Either
way the result is the same AnnData: obs and var come from the same query, and X is assembled by the
same code from the same (cell, gene, value) triples, whichever array they were read from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import tiledbsoma as soma

from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import anndata
    import numpy.typing as npt
    from scipy import sparse
    from somacore.options import SparseDFCoord

__all__ = [
    "GENES",
    "GENE_MAJOR_SHARE",
    "Layout",
    "RouteDecision",
    "choose_layout",
    "gene_major_copies",
    "get_anndata_routed",
]

logger = logging.getLogger(__name__)

#: The collection of a cellcensus build that holds the copies (a member of the census root).
GENES = "cellcensus_genes"
#: The copy is used when its estimated cost is at most this share of the cell-major cost.
GENE_MAJOR_SHARE = 0.5
#: X's tile extent (both dimensions) in the builds of cellcensus and of the official builder.
X_TILE = 2048

Layout = Literal["auto", "cell-major", "gene-major"]
_LAYOUTS = ("auto", "cell-major", "gene-major")


def check_layout(x_layout: str) -> None:
    """Refuse an unknown ``x_layout`` value."""
    if x_layout not in _LAYOUTS:
        msg = f"x_layout must be one of {', '.join(_LAYOUTS)}, got {x_layout!r}"
        raise BadInputError(msg, field="x_layout")


def gene_major_copies(census: soma.Collection[Any], exp_name: str) -> dict[str, Any]:
    """The gene-major copies of the organism's X layers, by layer name (empty when none)."""
    try:
        if GENES not in census:
            return {}
        genes = census[GENES]
        if exp_name not in genes:
            return {}
        org = genes[exp_name]
        if "X" not in org:
            return {}
        x = org["X"]
        return {name: x[name] for name in x if isinstance(x[name], soma.SparseNDArray)}
    except (KeyError, soma.SOMAError) as e:  # a damaged or foreign collection: ignore it
        logger.debug("no usable gene-major copies in %s: %s", census.uri, e)
        return {}


@dataclass(frozen=True)
class RouteDecision:
    """Which copy of X a query reads, and the estimated values decoded either way."""

    layout: Literal["cell-major", "gene-major"]
    cell_major_values: float
    gene_major_values: float


def _tiles(ids: npt.NDArray[np.int64]) -> int:
    return len(np.unique(ids // X_TILE)) if len(ids) else 0


def choose_layout(
    obs_ids: npt.NDArray[np.int64],
    var_ids: npt.NDArray[np.int64],
    *,
    n_obs: int,
    n_var: int,
    var_nnz: npt.NDArray[np.int64],
) -> RouteDecision:
    """Apply the cost rule (module docstring) to a query's cells and genes.

    Parameters
    ----------
    obs_ids, var_ids
        The ``soma_joinid`` of the selected cells and genes.
    n_obs, n_var
        Cells and genes of the experiment.
    var_nnz
        ``var.nnz`` of every gene of the experiment (indexed by ``soma_joinid``).
    """
    if len(obs_ids) == 0 or len(var_ids) == 0 or n_obs == 0 or n_var == 0:
        return RouteDecision("cell-major", 0.0, 0.0)
    total = float(var_nnz.sum())
    row_tiles = -(-n_obs // X_TILE)
    col_tiles = -(-n_var // X_TILE)
    cell_cost = total * _tiles(obs_ids) / row_tiles * _tiles(var_ids) / col_tiles
    span = int(obs_ids.max()) - int(obs_ids.min()) + 1
    gene_cost = float(var_nnz[var_ids].sum()) * span / n_obs
    layout: Literal["cell-major", "gene-major"] = (
        "gene-major" if gene_cost <= GENE_MAJOR_SHARE * cell_cost else "cell-major"
    )
    return RouteDecision(layout, cell_cost, gene_cost)


def read_csr(
    array: soma.SparseNDArray,
    obs_ids: npt.NDArray[np.int64],
    var_ids: npt.NDArray[np.int64],
    indexer: Any,  # noqa: ANN401 - a tiledbsoma AxisIndexer
    context: soma.SOMATileDBContext,
) -> sparse.csr_matrix:
    """The query's X from a gene-major copy, as ``tiledbsoma``'s ``to_anndata`` builds it.

    Reads the selected genes between the first and last selected cell (one range: fast on a
    gene-major array), drops cells outside the selection, maps joinids to positions and assembles
    the CSR matrix with the same function as ``tiledbsoma`` (sorted indices, same index types).
    """
    from cellcensus._compat import csr_from_soma

    index_type = np.int32 if max(len(obs_ids), len(var_ids)) < np.iinfo(np.int32).max else np.int64
    schema = pa.schema(
        [
            pa.field("soma_dim_0", pa.from_numpy_dtype(index_type)),
            pa.field("soma_dim_1", pa.from_numpy_dtype(index_type)),
            array.schema.field("soma_data"),
        ]
    )
    lo, hi = int(obs_ids.min()), int(obs_ids.max())
    every_cell = hi - lo + 1 == len(obs_ids)  # joinids are unique: the range is the selection
    batches = []
    for table in array.read((slice(lo, hi), var_ids)).tables():
        for batch in table.to_batches():
            rows = indexer.by_obs(batch["soma_dim_0"])
            cols = indexer.by_var(batch["soma_dim_1"])
            data = batch["soma_data"]
            if not every_cell:
                keep = rows >= 0
                rows, cols = rows[keep], cols[keep]
                data = data.filter(pa.array(keep))
            batches.append(
                pa.RecordBatch.from_pydict(
                    {
                        "soma_dim_0": rows.astype(index_type),
                        "soma_dim_1": cols.astype(index_type),
                        "soma_data": data,
                    },
                    schema=schema,
                )
            )
    table = pa.Table.from_batches(batches, schema=schema)
    return csr_from_soma(table, (len(obs_ids), len(var_ids)), context)


def _column_names(
    column_names: soma.AxisColumnNames | None,
    obs_column_names: Sequence[str] | None,
    var_column_names: Sequence[str] | None,
) -> soma.AxisColumnNames:
    from cellcensus.client._embedding_query import _columns

    obs, var = _columns(column_names, obs_column_names, var_column_names)
    return {"obs": obs, "var": var}


def get_anndata_routed(
    census: soma.Collection[Any],
    exp: soma.Experiment,
    copies: dict[str, Any],
    *,
    x_layout: Layout,
    measurement_name: str,
    X_name: str,
    X_layers: Sequence[str],
    obs_value_filter: str | None,
    obs_coords: SparseDFCoord | None,
    var_value_filter: str | None,
    var_coords: SparseDFCoord | None,
    column_names: soma.AxisColumnNames | None,
    obs_column_names: Sequence[str] | None,
    var_column_names: Sequence[str] | None,
) -> tuple[anndata.AnnData, RouteDecision]:
    """The official ``get_anndata`` query, with X read from the copies when the cost rule (or
    ``x_layout="gene-major"``) says so. The caller checked that every layer has a copy."""
    columns = _column_names(column_names, obs_column_names, var_column_names)
    with exp.axis_query(
        measurement_name,
        obs_query=soma.AxisQuery(
            value_filter=obs_value_filter,
            coords=(slice(None),) if obs_coords is None else (obs_coords,),
        ),
        var_query=soma.AxisQuery(
            value_filter=var_value_filter,
            coords=(slice(None),) if var_coords is None else (var_coords,),
        ),
    ) as query:
        var_ids = query.var_joinids().to_numpy()
        obs_ids = query.obs_joinids().to_numpy()
        ms = exp.ms[measurement_name]
        var_nnz = (
            ms.var.read(column_names=["soma_joinid", "nnz"])
            .concat()
            .sort_by("soma_joinid")["nnz"]
            .to_numpy()
        )
        decision = choose_layout(
            obs_ids, var_ids, n_obs=int(exp.obs.count), n_var=len(var_nnz), var_nnz=var_nnz
        )
        if x_layout == "gene-major" and len(obs_ids) and len(var_ids):
            decision = replace(decision, layout="gene-major")
        logger.debug("get_anndata reads X %s (%s)", decision.layout, decision)
        if decision.layout == "cell-major":
            adata = query.to_anndata(X_name=X_name, column_names=columns, X_layers=X_layers)
            return adata, decision
        adata = query.to_anndata(X_name=None, column_names=columns)
        context = census.context
        adata.X = read_csr(copies[X_name], obs_ids, var_ids, query.indexer, context)
        for layer in X_layers:
            adata.layers[layer] = read_csr(copies[layer], obs_ids, var_ids, query.indexer, context)
    return adata, decision
