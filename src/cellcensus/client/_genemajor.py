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

**obs of every cell.** A query without obs filter or coordinates reads obs from the organism's
obs copy (:mod:`cellcensus._obscopy`; local releases and object storage) when its ``soma_joinid``
column equals the query's cells: the same table, read several times faster. The frame made from
it is kept for the release's next queries, with what else does not depend on the genes
(:mod:`cellcensus.client._routecache`).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import anndata
import numpy as np
import pandas as pd
import pyarrow as pa
import tiledbsoma as soma
from pandas.api.types import is_string_dtype

from cellcensus._compat import csr_from_soma, soma_axis_frame, str_index
from cellcensus._obscopy import OBS_COPY, read_obs_copy
from cellcensus._storage.uri import is_local, local_path
from cellcensus.client._embedding_query import _columns
from cellcensus.client._estimate import tiledb_ctx_for
from cellcensus.client._routecache import (
    FRAMES,
    FrameCache,
    detached,
    kept_array,
    release_static,
    remember,
)
from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence
    from pathlib import Path

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


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
#: Threads of :func:`reader_pool`.
READERS = 4


def reader_pool() -> ThreadPoolExecutor:
    """The process's pool of threads for the concurrent reads of a gene query or summary.

    Started once (starting threads on every query cost tens of milliseconds on a loaded
    machine); tasks submitted to it never wait on other tasks of the pool.
    """
    global _POOL  # noqa: PLW0603 - one pool per process, created on first use
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="cellcensus-read")
        return _POOL


def check_layout(x_layout: str) -> None:
    """Refuse an unknown ``x_layout`` value."""
    if x_layout not in _LAYOUTS:
        msg = f"x_layout must be one of {', '.join(_LAYOUTS)}, got {x_layout!r}"
        raise BadInputError(msg, field="x_layout")


def _copies(census: soma.Collection[Any], exp_name: str) -> dict[str, Any]:
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


def gene_major_copies(
    census: soma.Collection[Any], exp_name: str, key: Hashable | None = None
) -> dict[str, Any]:
    """The gene-major copies of the organism's X layers, by layer name (empty when none).

    With a release ``key`` (:func:`~cellcensus.client._routecache.release_key`) where they
    are is found once, and they are kept open between queries
    (:func:`~cellcensus.client._routecache.kept_array`).
    """
    if key is None:
        return _copies(census, exp_name)
    uris = remember(
        key,
        ("copies", exp_name),
        lambda: {name: str(a.uri) for name, a in _copies(census, exp_name).items()},
    )
    arrays = {name: kept_array(key, uri, census.context) for name, uri in uris.items()}
    return {name: a for name, a in arrays.items() if a is not None}


@dataclass(frozen=True)
class RouteDecision:
    """Which copy of X a query reads, and the estimated values decoded either way."""

    layout: Literal["cell-major", "gene-major"]
    cell_major_values: float
    gene_major_values: float


def _tiles(ids: npt.NDArray[np.int64], *, contiguous: bool = False) -> int:
    """Distinct tiles (of :data:`X_TILE` joinids) holding ``ids`` (``contiguous``: known to be
    consecutive ascending joinids)."""
    if not len(ids):
        return 0
    if contiguous:
        return int(ids[-1]) // X_TILE - int(ids[0]) // X_TILE + 1
    tiles = ids // X_TILE
    steps = np.diff(tiles)
    if bool((steps >= 0).all()):  # sorted (obs in joinid order): count the changes, no hashing
        return int(np.count_nonzero(steps)) + 1
    return len(np.unique(tiles))


def choose_layout(
    obs_ids: npt.NDArray[np.int64],
    var_ids: npt.NDArray[np.int64],
    *,
    n_obs: int,
    n_var: int,
    var_nnz: npt.NDArray[np.int64],
    obs_contiguous: bool = False,
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
    obs_contiguous
        ``obs_ids`` are known to be consecutive ascending joinids (not checked).
    """
    if len(obs_ids) == 0 or len(var_ids) == 0 or n_obs == 0 or n_var == 0:
        return RouteDecision("cell-major", 0.0, 0.0)
    total = float(var_nnz.sum())
    row_tiles = -(-n_obs // X_TILE)
    col_tiles = -(-n_var // X_TILE)
    cell_cost = (
        total * _tiles(obs_ids, contiguous=obs_contiguous) / row_tiles * _tiles(var_ids) / col_tiles
    )
    span = int(obs_ids.max()) - int(obs_ids.min()) + 1
    gene_cost = float(var_nnz[var_ids].sum()) * span / n_obs
    layout: Literal["cell-major", "gene-major"] = (
        "gene-major" if gene_cost <= GENE_MAJOR_SHARE * cell_cost else "cell-major"
    )
    return RouteDecision(layout, cell_cost, gene_cost)


def _positions(
    joinids: npt.NDArray[np.int64],
    selected: npt.NDArray[np.int64],
    context: Any,  # noqa: ANN401
    *,
    contiguous: bool = False,
) -> npt.NDArray[np.int64]:
    """Position of each of ``joinids`` in ``selected`` (-1 when absent), as tiledbsoma's indexer.

    A selection of consecutive ascending joinids (every cell of a range: the usual gene query;
    ``contiguous`` when already known) is a subtraction; otherwise tiledbsoma's ``IntIndexer``
    (the one ``to_anndata`` uses).
    """
    n = len(selected)
    if n and (
        contiguous
        or (int(selected[-1]) - int(selected[0]) + 1 == n and bool(np.all(np.diff(selected) == 1)))
    ):
        pos = joinids.astype(np.int64, copy=False) - int(selected[0])
        pos[(pos < 0) | (pos >= n)] = -1
        return pos
    indexer = soma.IntIndexer(selected, context=context)
    return np.asarray(indexer.get_indexer(joinids), dtype=np.int64)


def read_csr(
    array: soma.SparseNDArray,
    obs_ids: npt.NDArray[np.int64],
    var_ids: npt.NDArray[np.int64],
    context: soma.SOMATileDBContext,
    *,
    every_cell: bool = False,
) -> sparse.csr_matrix:
    """The query's X from a gene-major copy, as ``tiledbsoma``'s ``to_anndata`` builds it.

    Reads the selected genes between the first and last selected cell (one range: fast on a
    gene-major array), drops cells outside the selection, maps joinids to positions and assembles
    the CSR matrix with the same function as ``tiledbsoma`` (sorted indices, same index types).
    ``every_cell``: ``obs_ids`` are known to be every cell of the experiment, consecutive
    ascending joinids (read without a cell range: measured 15 % faster for one gene).
    """
    index_type = np.int32 if max(len(obs_ids), len(var_ids)) < np.iinfo(np.int32).max else np.int64
    schema = pa.schema(
        [
            pa.field("soma_dim_0", pa.from_numpy_dtype(index_type)),
            pa.field("soma_dim_1", pa.from_numpy_dtype(index_type)),
            array.schema.field("soma_data"),
        ]
    )
    cells = (
        slice(None)  # cells outside obs_ids (none here) would be dropped below anyway
        if every_cell
        else slice(int(obs_ids.min()), int(obs_ids.max()))
    )
    table = array.read((cells, var_ids)).tables().concat()
    rows = _positions(table["soma_dim_0"].to_numpy(), obs_ids, context, contiguous=every_cell)
    cols = _positions(table["soma_dim_1"].to_numpy(), var_ids, context)
    data = table["soma_data"].combine_chunks() if table.num_rows else table["soma_data"]
    keep = rows >= 0
    if not bool(keep.all()):
        rows, cols = rows[keep], cols[keep]
        data = data.filter(pa.array(keep))
    triples = pa.Table.from_arrays(
        [pa.array(rows.astype(index_type)), pa.array(cols.astype(index_type)), data],
        schema=schema,
    )
    return csr_from_soma(triples, (len(obs_ids), len(var_ids)), context)


def _read_joinids(df: soma.DataFrame, query: soma.AxisQuery) -> npt.NDArray[np.int64]:
    """The ``soma_joinid`` a query selects, in the order ``to_anndata`` returns its rows."""
    table = df.read(
        query.coords, value_filter=query.value_filter, column_names=["soma_joinid"]
    ).concat()
    return np.asarray(table["soma_joinid"].to_numpy(), dtype=np.int64)


def _with_joinids(
    columns: Sequence[str] | None, read: Callable[[list[str] | None], pa.Table]
) -> tuple[pa.Table, npt.NDArray[np.int64]]:
    """``read`` of ``columns`` (all when None) and ``soma_joinid``: the table with the columns
    asked for, and the rows' ``soma_joinid`` (read along when not asked for)."""
    wanted = None if columns is None else list(columns)
    added = wanted is not None and "soma_joinid" not in wanted
    table = read(["soma_joinid", *wanted] if added and wanted is not None else wanted)
    joinids = np.asarray(table["soma_joinid"].to_numpy(), dtype=np.int64)
    return (table.drop(["soma_joinid"]) if added else table), joinids


def _read_table(
    df: soma.DataFrame, query: soma.AxisQuery, columns: Sequence[str] | None
) -> tuple[pa.Table, npt.NDArray[np.int64]]:
    """The selected rows' columns (one Arrow read) and their ``soma_joinid``."""
    return _with_joinids(
        columns,
        lambda names: df.read(
            query.coords, value_filter=query.value_filter, column_names=names
        ).concat(),
    )


def obs_copy_location(copies: dict[str, Any]) -> Path | str | None:
    """The organism's obs copy next to its gene-major copies: its path in a local release (None
    when it is absent), its URI in object storage (whether it exists is found when reading)."""
    uri = str(next(iter(copies.values())).uri) if copies else ""
    if not uri:
        return None
    if is_local(uri):
        path = local_path(uri).parent.parent / OBS_COPY  # cellcensus_genes/<organism>/X/<layer>
        return path if path.is_file() else None
    return f"{uri.rstrip('/').rsplit('/', 2)[0]}/{OBS_COPY}"


def _fetch(uri: str, context: soma.SOMATileDBContext) -> pa.Buffer | None:
    """The object at ``uri`` read whole through TileDB's VFS with ``context``'s configuration
    (the census's own storage settings); None when there is no such object."""
    import tiledb

    vfs = tiledb.VFS(ctx=tiledb_ctx_for(context))
    if not vfs.is_file(uri):
        return None
    with vfs.open(uri, "rb") as f:
        return pa.py_buffer(f.read(vfs.file_size(uri)))


def _copy_source(
    copy: Path | str, context: soma.SOMATileDBContext, *, in_memory: bool = False
) -> Path | pa.Buffer | None:
    """What :func:`~cellcensus._obscopy.read_obs_copy` reads: a copy in object storage fetched
    whole (None when there is none), a local copy's path (memory-mapped by the reader) or, with
    ``in_memory``, its bytes."""
    if isinstance(copy, str):
        return _fetch(copy, context)
    return pa.py_buffer(copy.read_bytes()) if in_memory else copy


def _copy_errors() -> tuple[type[Exception], ...]:
    """What reading an obs copy raises for a damaged or unreadable one."""
    import tiledb

    return (KeyError, OSError, pa.ArrowException, tiledb.TileDBError)


def _read_obs(
    df: soma.DataFrame,
    query: soma.AxisQuery,
    columns: Sequence[str] | None,
    *,
    copy: Path | str | None,
    obs_ids: npt.NDArray[np.int64],
) -> tuple[pa.Table, npt.NDArray[np.int64]]:
    """:func:`_read_table` of obs, from the obs copy when there is one and its ``soma_joinid``
    are the query's (else, or when it cannot be read, from obs itself)."""
    if copy is not None:
        try:
            source = _copy_source(copy, df.context)
            if source is None:  # no copy in the release's storage
                return _read_table(df, query, columns)
            table, joinids = _with_joinids(columns, partial(read_obs_copy, source))
        except _copy_errors() as e:
            logger.warning("cannot read the obs copy %s (%s): reading obs", copy, e)
        else:
            if np.array_equal(joinids, obs_ids):
                return table, joinids
            logger.warning("the obs copy %s does not match obs (%s): reading obs", copy, df.uri)
    return _read_table(df, query, columns)


def _frame(df: soma.DataFrame, table: pa.Table, fallback_index: str) -> pd.DataFrame:
    """The axis frame ``tiledbsoma``'s ``to_anndata`` makes from ``table``, with the string
    index ``anndata`` gives it (the same frame, built without its slow steps: strings are not
    deduplicated, the default index is formatted by Arrow and known unique)."""
    return _frame_of(df, table, fallback_index)[0]


def _frame_of(
    df: soma.DataFrame, table: pa.Table, fallback_index: str
) -> tuple[pd.DataFrame, bool]:
    """:func:`_frame`, and whether its index is the default one (not from a column)."""
    frame = soma_axis_frame(df, table.to_pandas(deduplicate_objects=False), fallback_index)
    default = isinstance(frame.index, pd.RangeIndex)
    if not is_string_dtype(frame.index):
        frame.index = str_index(frame.index)
    return frame, default


def _copy_identity(copy: Path | str) -> Hashable | None:
    """The obs copy's identity for :data:`FRAMES` (a local file's inode, size and modification
    time; an object's URI, within a release known by its build stamp); None when unknown."""
    if isinstance(copy, str):
        return copy
    try:
        st = copy.stat()
    except OSError:
        return None
    return (str(copy), st.st_ino, st.st_size, st.st_mtime_ns)


def every_cell_frame(
    key: Hashable | None,
    exp: soma.Experiment,
    copy: Path | str,
    columns: Sequence[str] | None,
    obs_ids: npt.NDArray[np.int64],
) -> pd.DataFrame | None:
    """obs of every cell with ``columns`` from the frame kept for this release's obs copy
    (made from the whole copy on first use, when its ``soma_joinid`` are ``obs_ids``); None when
    it cannot be served that way (no release key, cache off, a copy that is missing, damaged or
    stale, an index taken from a column): the caller reads obs as without the cache, which
    warns about a damaged copy."""
    identity = _copy_identity(copy)
    if key is None or identity is None or FrameCache.budget() <= 0:
        return None
    fkey = (key, identity)
    entry = FRAMES.get(fkey)
    kept = True
    if entry is None:
        obs = exp.obs
        try:
            # read into memory, not mapped: a kept frame may hold Arrow buffers, and a mapping
            # kept open would fault if the file were later truncated in place
            source = _copy_source(copy, obs.context, in_memory=True)
            if source is None:
                return None
            table = read_obs_copy(source, None)
        except _copy_errors():
            return None
        joinids = np.asarray(table["soma_joinid"].to_numpy(), dtype=np.int64)
        if not np.array_equal(joinids, obs_ids):
            return None
        frame, default = _frame_of(obs, table, "obs_id")
        entry, kept = FRAMES.put(fkey, frame, default_index=default)
    return detached(entry, columns, copy=kept)


def _with_frame(
    df: soma.DataFrame,
    fallback_index: str,
    read: Callable[[], tuple[pa.Table, npt.NDArray[np.int64]]],
) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """``read()``'s table as the axis frame (:func:`_frame`), and its joinids."""
    table, joinids = read()
    return _frame(df, table, fallback_index), joinids


def _obs_frame(
    key: Hashable | None,
    exp: soma.Experiment,
    query: soma.AxisQuery,
    columns: Sequence[str] | None,
    *,
    copy: Path | str | None,
    obs_ids: npt.NDArray[np.int64],
) -> tuple[pd.DataFrame, npt.NDArray[np.int64] | None]:
    """The query's obs frame, and the joinids read with it (None: the frame kept for every cell,
    whose joinids were checked when it was made): from :func:`every_cell_frame` when it can
    serve it, else read (from the obs copy when there is one, see :func:`_read_obs`)."""
    if copy is not None:
        frame = every_cell_frame(key, exp, copy, columns, obs_ids)
        if frame is not None:
            return frame, None
        if isinstance(copy, str) and columns is not None:
            copy = None  # in object storage the copy is one object: fetched whole for every column
    obs = exp.obs
    return _with_frame(
        obs, "obs_id", partial(_read_obs, obs, query, columns, copy=copy, obs_ids=obs_ids)
    )


#: A var selection of at most this many genes is kept for the release's next queries.
VAR_KEEP_ROWS = 256


def _var_frame(
    key: Hashable | None,
    exp: soma.Experiment,
    measurement_name: str,
    query: soma.AxisQuery,
    columns: Sequence[str] | None,
) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """The query's var frame and joinids; a selection by value filter alone of at most
    :data:`VAR_KEEP_ROWS` genes is kept for the release (each query gets its own copy)."""

    def read() -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
        var = exp.ms[measurement_name].var
        frame, ids = _with_frame(var, "var_id", partial(_read_table, var, query, columns))
        ids.flags.writeable = False  # shared by the queries it is kept for
        return frame, ids

    coords = query.coords
    if not (len(coords) == 1 and isinstance(coords[0], slice) and coords[0] == slice(None)):
        return read()  # coordinates (any type: arrays do not compare as a whole) are not kept
    what = (
        "var",
        measurement_name,
        query.value_filter,
        None if columns is None else tuple(columns),
    )
    frame, ids = remember(key, what, read, keep=lambda got: len(got[1]) <= VAR_KEEP_ROWS)
    return frame.copy(deep=True), ids


def _column_names(
    column_names: soma.AxisColumnNames | None,
    obs_column_names: Sequence[str] | None,
    var_column_names: Sequence[str] | None,
) -> soma.AxisColumnNames:
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
    key: Hashable | None,
) -> tuple[anndata.AnnData, RouteDecision]:
    """The official ``get_anndata`` query, with X read from the copies when the cost rule (or
    ``x_layout="gene-major"``) says so. The caller checked that every layer has a copy.

    The gene-major path reads what ``to_anndata`` reads, concurrently: the selected var rows
    (their frame and joinids), the selected obs joinids (none to read for every cell of an obs
    without gaps), then obs and each X layer at once; it builds the same frames and matrices (see
    :func:`_frame`, :func:`read_csr`) and the AnnData from them. What does not depend on the
    query (cells, ``var.nnz``, obs of every cell from the obs copy) is kept per release
    (:mod:`cellcensus.client._routecache`).
    """
    columns = _column_names(column_names, obs_column_names, var_column_names)
    obs_query = soma.AxisQuery(
        value_filter=obs_value_filter,
        coords=(slice(None),) if obs_coords is None else (obs_coords,),
    )
    var_query = soma.AxisQuery(
        value_filter=var_value_filter,
        coords=(slice(None),) if var_coords is None else (var_coords,),
    )
    context = census.context
    pool = reader_pool()
    every_cell = obs_value_filter is None and obs_coords is None
    static = release_static(key, exp, measurement_name)
    contiguous = every_cell and static.obs_range is not None  # obs_ids: every joinid of a range
    obs_ids_f = None if contiguous else pool.submit(_read_joinids, exp.obs, obs_query)
    var, var_ids = _var_frame(key, exp, measurement_name, var_query, columns["var"])
    obs_ids = static.every_obs_id() if obs_ids_f is None else obs_ids_f.result()
    decision = choose_layout(
        obs_ids,
        var_ids,
        n_obs=static.n_obs,
        n_var=len(static.var_nnz),
        var_nnz=static.var_nnz,
        obs_contiguous=contiguous,
    )
    if x_layout == "gene-major" and len(obs_ids) and len(var_ids):
        decision = replace(decision, layout="gene-major")
    logger.debug("get_anndata reads X %s (%s)", decision.layout, decision)
    if decision.layout == "cell-major":
        with exp.axis_query(measurement_name, obs_query=obs_query, var_query=var_query) as q:
            adata = q.to_anndata(X_name=X_name, column_names=columns, X_layers=X_layers)
        return adata, decision
    # every cell, no filter: obs from its copy (local or object storage; checked against obs_ids)
    copy = obs_copy_location(copies) if every_cell else None
    # obs made into its frame on the pool (copied from the one kept for every cell, or read):
    # pandas' work overlaps X's read (measured faster than one after the other)
    obs_f = pool.submit(_obs_frame, key, exp, obs_query, columns["obs"], copy=copy, obs_ids=obs_ids)
    layer_f = {  # as to_anndata: a layer named like X_name is X, not a layer
        name: pool.submit(read_csr, copies[name], obs_ids, var_ids, context, every_cell=contiguous)
        for name in dict.fromkeys(X_layers)
        if name != X_name
    }
    x = read_csr(copies[X_name], obs_ids, var_ids, context, every_cell=contiguous)
    obs_frame, obs_read_ids = obs_f.result()
    if obs_read_ids is not None and not np.array_equal(obs_read_ids, obs_ids):
        msg = f"{exp.uri} changed while it was read (the selected joinids differ between reads)"
        raise soma.SOMAError(msg)
    layers = {name: f.result() for name, f in layer_f.items()}
    adata = anndata.AnnData(X=x, obs=obs_frame, var=var, layers=layers)
    return adata, decision
