"""One band of an experiment: its cells' X layers and obs rows, written as one fragment each.

The planner cuts each experiment's cells (soma_joinids) into bands that start on a multiple of the
X tile extent, so no two bands share a tile and their fragments never overlap. A band task reads
its cells straight from the staged H5ADs, in row chunks of at most ``chunk_nnz`` stored values:
per chunk it selects the included cells and census features, checks the counts, computes the
per-cell statistics and the normalized values, sorts the cells into the X arrays' global order and
submits them, and submits the chunk's obs rows. Each array gets one global-order write (one
fragment) per band, at the band's own timestamp, so a band that is run again (after an
interruption) first deletes exactly what an earlier attempt committed.

Memory is one chunk plus one row band of ``X_TILE`` rows (the last, possibly incomplete, tile row
of a chunk waits for the start of the next chunk), whatever the sizes of the band, the dataset or
the census.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import tiledbsoma as soma

from cellcensus.builder import _schema as S
from cellcensus.builder._allocator import release_free_memory
from cellcensus.builder._compat import ArrayBatchWriter, DataFrameBatchWriter
from cellcensus.builder._scan import include_mask
from cellcensus.builder._source import H5ADSource
from cellcensus.builder._terms import tissue_general_columns
from cellcensus.builder._xkernel import global_order_csr, in_strict_global_order
from cellcensus.builder._xmath import is_nonnegative_integral, normalize, obs_stats
from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cellcensus.builder._genes import BandExtras, BandWork

logger = logging.getLogger(__name__)


#: TileDB memory settings of the builder's reads: result buffers and the readers' working memory
#: are bounded (TileDB's defaults let a read of scattered cells load every tile it touches).
BOUNDED_READS: dict[str, str | float] = {
    "soma.init_buffer_bytes": str(16 * 1024**2),
    "sm.mem.total_budget": str(64 * 1024**2),
}


@cache
def soma_context() -> soma.SOMATileDBContext:
    """A per-process TileDB context (contexts are expensive and thread-safe)."""
    return soma.SOMATileDBContext(tiledb_config=BOUNDED_READS)


@dataclass(frozen=True, kw_only=True)
class Segment:
    """Source rows of one dataset that hold some of a band's cells."""

    dataset: int  # position in the task's datasets
    row_start: int
    row_stop: int
    skip: int  # included cells of these rows that belong to the band before
    take: int  # included cells of these rows that belong to this band


@dataclass(frozen=True, kw_only=True)
class BandDataset:
    """What a band task needs of one contributing dataset."""

    dataset_id: str
    path: str
    features: str  # .npz: positions (local var), joinids (census var), lengths
    n_measured_vars: int
    spatial_columns: tuple[str, ...] = ()  # spatial obs columns the H5AD has


@dataclass(frozen=True, kw_only=True)
class BandTask:
    """Write the cells ``[joinid_start, joinid_stop)`` of one experiment."""

    organism: str
    index: int
    exp_uri: str
    joinid_start: int
    joinid_stop: int
    shape: tuple[int, int]  # (cells, features) of the experiment
    datasets: tuple[BandDataset, ...]
    segments: tuple[Segment, ...]
    dictionaries: str  # JSON file: dictionary values of every obs dictionary column
    timestamp: int
    chunk_nnz: int
    check_values: bool
    var_nnz_path: str  # where the band's per-feature value counts go (.npy)
    n_values: int  # estimated stored values (for progress and scheduling)
    #: gene-major copies and expression summary of the band (``_genes``); None: neither
    extras: BandExtras | None = None
    x_layers: tuple[str, ...] = S.X_LAYERS
    #: spatial experiments: the spatial obs columns some dataset of the experiment has (None for
    #: census_data). A dataset without such a column gets nulls in it; a column no dataset has
    #: holds INT64_MIN (what the official builder's placeholder columns hold).
    spatial_columns: tuple[str, ...] | None = None
    #: the task deletes what an interrupted attempt of the band committed (see
    #: :func:`clear_earlier_attempt`); False when the driver did it before dispatch
    clear_in_task: bool = True

    @property
    def n_cells(self) -> int:
        """Cells of the band."""
        return self.joinid_stop - self.joinid_start


@dataclass(frozen=True, kw_only=True)
class BandResult:
    """What a band wrote: cells and values, and where its per-feature counts are."""

    organism: str
    index: int
    n_cells: int
    n_values: int
    var_nnz_path: str
    seconds: float = 0.0  # wall time of the task


@dataclass(frozen=True)
class _Dictionaries:
    values: dict[str, list[str]]
    index: dict[str, pd.Index]


@cache
def _dictionaries(path: str) -> _Dictionaries:
    values: dict[str, list[str]] = json.loads(Path(path).read_text())
    return _Dictionaries(values, {k: pd.Index(v) for k, v in values.items()})


@cache
def _features(path: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], Any]:
    with np.load(path) as f:
        positions, joinids, lengths = f["positions"], f["joinids"], f["lengths"]
    return positions, joinids, lengths


def _full_gene_cells(assay: pd.Series) -> npt.NDArray[np.bool_]:
    """Which cells are of a full-length (Smart-seq-like) assay."""
    full_gene = sorted(S.full_gene_assays())
    if isinstance(assay.dtype, pd.CategoricalDtype):
        by_category = np.isin(assay.cat.categories.astype(str), full_gene)
        codes = assay.cat.codes.to_numpy()
        return np.where(codes >= 0, by_category[codes], False)
    return np.isin(assay.astype(str).to_numpy(), full_gene)


def dict_array(
    values: pd.Series | npt.ArrayLike,
    dictionary: list[str],
    column: str,
    value_type: pa.DataType | None = None,
    index: pd.Index | None = None,
) -> pa.DictionaryArray:
    """Encode string values against a fixed dictionary (narrowest index type for its size).

    A categorical Series is encoded through its categories (no per-cell string handling).
    """
    index = pd.Index(dictionary) if index is None else index
    codes: npt.NDArray[np.integer[Any]]
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        positions = index.get_indexer(values.cat.categories.astype(str))
        cat_codes = values.cat.codes.to_numpy()
        codes = np.where(cat_codes >= 0, positions[cat_codes], -1)
    else:
        codes = index.get_indexer(pd.Index(np.asarray(values, dtype=object)))
    if (codes < 0).any():
        msg = f"internal error: value outside the planned vocabulary of obs column {column!r}"
        raise AssertionError(msg)
    return pa.DictionaryArray.from_arrays(
        pa.array(codes, type=S.dictionary_index_type(len(dictionary))),
        pa.array(dictionary, type=value_type or pa.large_string()),
    )


#: What the official builder writes into an int64 obs column that no dataset of the experiment has.
INT64_PLACEHOLDER = int(np.iinfo(np.int64).min)


def _spatial_obs_column(obs: pd.DataFrame, name: str, experiment_has: bool) -> pa.Array:
    """An int64 spatial obs column: the H5AD's values, else nulls or the placeholder."""
    n = len(obs)
    if name in obs:
        values = obs[name].astype("Int64")  # a masked (nullable) column keeps its nulls
        return pa.array(values, type=pa.int64())
    if experiment_has:
        return pa.nulls(n, type=pa.int64())
    return pa.array(np.full(n, INT64_PLACEHOLDER, dtype=np.int64))


def obs_batch(
    obs: pd.DataFrame,
    *,
    first_joinid: int,
    dataset_id: str,
    stats: Any,  # noqa: ANN401 - an ObsStats
    n_measured_vars: int,
    dictionaries: _Dictionaries,
    schema: pa.Schema,
    spatial_columns: tuple[str, ...] = (),
) -> pa.RecordBatch:
    """The census obs rows of some cells of one dataset, in the census schema.

    A spatial experiment's schema has ``in_tissue``, ``array_row``, ``array_col``: taken from
    ``obs`` when it has them, else null when another dataset of the experiment has the column
    (``spatial_columns``), else ``INT64_PLACEHOLDER``.
    """
    n = len(obs)
    d = dictionaries
    columns: dict[str, pa.Array] = {
        "soma_joinid": pa.array(np.arange(first_joinid, first_joinid + n, dtype=np.int64)),
        "dataset_id": dict_array(
            np.full(n, dataset_id, dtype=object),
            d.values["dataset_id"],
            "dataset_id",
            index=d.index["dataset_id"],
        ),
    }
    for f in S.OBS_TERM_FIELDS:
        col = obs[f.name]
        if f.dictionary:
            columns[f.name] = dict_array(col, d.values[f.name], f.name, index=d.index[f.name])
        elif f.name == "is_primary_data":
            columns[f.name] = pa.array(col.to_numpy(dtype=bool))
        else:
            columns[f.name] = pa.array(col.astype(str).to_numpy(), type=pa.large_string())
    for name in S.SPATIAL_OBS_NUMERIC:
        if name in schema.names:
            columns[name] = _spatial_obs_column(obs, name, name in spatial_columns)
    general_id, general_label = tissue_general_columns(obs["tissue_ontology_term_id"])
    for name, values in (
        ("tissue_general", general_label),
        ("tissue_general_ontology_term_id", general_id),
    ):
        columns[name] = dict_array(values, d.values[name], name, index=d.index[name])
    for name in ("raw_sum", "nnz", "raw_mean_nnz", "raw_variance_nnz"):
        columns[name] = pa.array(getattr(stats, name))
    columns["n_measured_vars"] = pa.array(np.full(n, n_measured_vars, dtype=np.int64))
    return pa.RecordBatch.from_pydict(columns, schema=schema)


#: rows, columns, and the values of each layer
_Cells = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], tuple[npt.NDArray[np.float32], ...]]


def _cut(cells: _Cells, start: int, stop: int | None = None) -> _Cells:
    rows, cols, values = cells
    return rows[start:stop], cols[start:stop], tuple(v[start:stop] for v in values)


def _copy(cells: _Cells) -> _Cells:
    rows, cols, values = cells
    return rows.copy(), cols.copy(), tuple(v.copy() for v in values)


def _merge_band(a: _Cells, b: _Cells) -> _Cells:
    """Merge two global-ordered runs of one row band, all rows of ``a`` before those of ``b``.

    Within a tile row the global order is (column tile, row, column); both runs already follow it
    and every row of ``a`` precedes every row of ``b``, so a stable sort on the column tile is
    enough.
    """
    cols = np.concatenate([a[1], b[1]])
    tile = cols // S.X_TILE
    order = np.argsort(tile.astype(np.int16) if int(tile.max()) < 2**15 else tile, kind="stable")
    rows = np.concatenate([a[0], b[0]])[order]
    values = tuple(np.concatenate([x, y])[order] for x, y in zip(a[2], b[2], strict=True))
    return rows, cols[order], values


class XLayersWriter:
    """The X layers of one band, from chunks of cells already in global order.

    Chunks do not end on tile-row boundaries: the last, possibly incomplete, tile row of a chunk
    is held back and merged with the start of the next chunk. Every submit is checked for bounds
    and strict global order first.
    """

    def __init__(self, writers: list[ArrayBatchWriter], shape: tuple[int, int]) -> None:
        self._writers = writers
        self._shape = shape
        self._carry: _Cells | None = None
        self._last: tuple[int, int] | None = None
        self.submitted = 0

    def _submit(self, cells: _Cells) -> None:
        rows, cols, values = cells
        if len(rows) == 0:
            return
        if not in_strict_global_order(rows, cols, self._shape, S.X_TILE, self._last):
            msg = "internal error: X cells out of bounds or not in strict global order"
            raise AssertionError(msg)
        self._last = (int(rows[-1]), int(cols[-1]))
        for writer, layer in zip(self._writers, values, strict=True):
            writer.submit(rows, cols, layer)
        self.submitted += len(rows)

    def push(self, cells: _Cells) -> None:
        """Add a chunk's cells (global order; rows after every row pushed before)."""
        if len(cells[0]) == 0:
            return
        tile_row = cells[0] // S.X_TILE
        carry = self._carry
        if carry is not None:
            if int(carry[0][0]) // S.X_TILE == int(tile_row[0]):
                head = int(np.searchsorted(tile_row, tile_row[0], side="right"))
                merged = _merge_band(carry, _cut(cells, 0, head))
                if head == len(tile_row):
                    self._carry = merged
                    return
                self._submit(merged)
                cells, tile_row = _cut(cells, head), tile_row[head:]
            else:
                self._submit(carry)
        tail = int(np.searchsorted(tile_row, tile_row[-1], side="left"))
        self._submit(_cut(cells, 0, tail))
        self._carry = _copy(_cut(cells, tail))

    def flush(self) -> None:
        """Submit the held-back tile row."""
        if self._carry is not None:
            self._submit(self._carry)
            self._carry = None


@dataclass
class _Chunk:
    """The included cells of one row chunk, ready to write."""

    obs: pd.DataFrame
    cells: _Cells
    stats: Any
    var_nnz: npt.NDArray[np.int64]


def _process_chunk(
    src: H5ADSource,
    ds: BandDataset,
    rows: tuple[int, int],
    keep: npt.NDArray[np.int64],
    *,
    first_joinid: int,
    check_values: bool,
    normalized: bool = True,
) -> _Chunk:
    """Read and compute one chunk: ``keep`` are the chunk's rows (offsets) the band takes.

    ``normalized``: also compute the normalized layer (census_data; spatial experiments have raw
    counts only).
    """
    positions, joinids, lengths = _features(ds.features)
    lo = int(keep[0])
    hi = int(keep[-1]) + 1
    columns = [*S.REQUIRED_OBS_COLUMNS, *ds.spatial_columns]
    obs = src.read_obs(columns, rows[0] + lo, rows[0] + hi)
    local = keep - lo
    obs = obs.iloc[local].reset_index(drop=True)
    x = src.read_x_rows(rows[0] + lo, rows[0] + hi)[local][:, positions].tocsr()
    x.sum_duplicates()
    x.eliminate_zeros()
    if check_values and not is_nonnegative_integral(x.data):
        msg = "raw counts must be non-negative whole numbers"
        raise BadInputError(msg, dataset_id=ds.dataset_id, field=src.x_name)
    full = _full_gene_cells(obs["assay_ontology_term_id"])
    n_cells = x.shape[0]
    stats = obs_stats(x)
    var_nnz = np.bincount(x.indices, minlength=x.shape[1]).astype(np.int64)
    indptr = x.indptr
    col = x.indices.astype(np.int64)
    data = x.data.astype(np.float32)
    del x
    norm = None
    if normalized:
        norm = normalize(
            None,
            col,
            data,
            n_cells,
            full_gene_rows=full if full.any() else None,
            feature_length=lengths,
            indptr=indptr,
        )
    g_cols = joinids[col]
    # CSR rows hold sorted local columns; when the dataset's census columns increase with its
    # local ones, the cells are also sorted by census column within each row
    monotonic = bool(np.all(np.diff(joinids) > 0))
    order, g_rows = global_order_csr(
        indptr, g_cols, first_joinid, S.X_TILE, columns_sorted_within_rows=monotonic
    )
    layers = (data[order],) if norm is None else (data[order], norm[order])
    cells = (g_rows, g_cols[order], layers)
    return _Chunk(obs=obs, cells=cells, stats=stats, var_nnz=var_nnz)


def _band_chunks(
    src: H5ADSource, seg: Segment, chunk_nnz: int
) -> Iterator[tuple[tuple[int, int], npt.NDArray[np.int64]]]:
    """The segment's row chunks, each with the offsets of its rows that belong to the band."""
    seen = taken = 0  # included cells met so far in the segment, and taken of them
    for lo, hi in src.row_chunks(seg.row_start, seg.row_stop, chunk_nnz):
        if taken == seg.take:
            break
        obs = src.read_obs(list(S.INCLUSION_COLUMNS), lo, hi)
        included = np.flatnonzero(include_mask(obs))
        # the segment's included cells seen .. seen+len-1 are here: keep [skip, skip+take)
        a = max(seg.skip - seen, 0)
        b = min(seg.skip + seg.take - seen, len(included))
        seen += len(included)
        if b > a:
            taken += b - a
            yield (lo, hi), included[a:b].astype(np.int64)
    if taken != seg.take:
        msg = (
            f"rows {seg.row_start}-{seg.row_stop} hold {taken} of the {seg.take} included cells "
            "the scan counted; the source changed during the build"
        )
        raise BadInputError(msg, dataset_id=src.dataset_id)


def _band_work(task: BandTask) -> BandWork | None:
    if task.extras is None:
        return None
    from cellcensus.builder._genes import BandWork

    return BandWork(
        task.extras,
        timestamp=task.timestamp,
        shape=task.shape,
        joinid_start=task.joinid_start,
        budget=task.chunk_nnz,
    )


def _x_uris(task: BandTask) -> list[str]:
    return [f"{task.exp_uri}/ms/{S.MEASUREMENT}/X/{layer}" for layer in task.x_layers]


def clear_earlier_attempt(task: BandTask) -> None:
    """Delete the fragments an interrupted attempt of this band committed: its timestamp's, in X,
    obs and the gene-major copies (none on a first attempt).

    A task does it itself (``clear_in_task``: a Dask task re-run on another worker after its
    first worker was lost). When tasks run as threads of one process the driver does it for all
    of them before dispatch: TileDB refuses to delete fragments of an array another thread has
    open for writing.
    """
    import tiledb

    copies = tuple(uri for _, uri in task.extras.gene_major) if task.extras is not None else ()
    for uri in (*_x_uris(task), f"{task.exp_uri}/obs", *copies):
        tiledb.Array.delete_fragments(uri, task.timestamp, task.timestamp)


def run_band(task: BandTask) -> BandResult:
    """Write one band (see the module docstring); returns its counts."""
    t0 = time.perf_counter()
    if task.clear_in_task:
        clear_earlier_attempt(task)
    x_uris = _x_uris(task)
    obs_uri = f"{task.exp_uri}/obs"
    dictionaries = _dictionaries(task.dictionaries)
    n_var = task.shape[1]
    var_nnz = np.zeros(n_var, dtype=np.int64)
    joinid = task.joinid_start
    writers = [ArrayBatchWriter(uri, task.timestamp) for uri in x_uris]
    extras = _band_work(task)
    committed = False
    with soma.DataFrame.open(
        obs_uri, "w", context=soma_context(), tiledb_timestamp=task.timestamp
    ) as obs_df:
        obs_writer = DataFrameBatchWriter(obs_df)
        schema = obs_df.schema
        try:
            x_writer = XLayersWriter(writers, task.shape)
            for seg in task.segments:
                ds = task.datasets[seg.dataset]
                _, joinids, _ = _features(ds.features)
                with H5ADSource(ds.path, ds.dataset_id) as src:
                    for rows, keep in _band_chunks(src, seg, task.chunk_nnz):
                        chunk = _process_chunk(
                            src,
                            ds,
                            rows,
                            keep,
                            first_joinid=joinid,
                            check_values=task.check_values,
                            normalized="normalized" in task.x_layers,
                        )
                        x_writer.push(chunk.cells)
                        batch = obs_batch(
                            chunk.obs,
                            first_joinid=joinid,
                            dataset_id=ds.dataset_id,
                            stats=chunk.stats,
                            n_measured_vars=ds.n_measured_vars,
                            dictionaries=dictionaries,
                            schema=schema,
                            spatial_columns=task.spatial_columns or (),
                        )
                        obs_writer.submit(batch)
                        if extras is not None:
                            extras.add(chunk.cells, batch, joinid)
                        var_nnz[joinids] += chunk.var_nnz
                        joinid += len(keep)
                        # free this chunk before the next is read: at a chunk_nnz of 8 M values
                        # both were alive at once (measured ~0.2 GiB more at 1,000 values a cell)
                        del chunk, batch
            x_writer.flush()
            if extras is not None:
                extras.finish(dictionaries.values)
            committed = True
        finally:
            for w in writers:
                w.close(commit=committed)
            obs_writer.close(commit=committed)
            if extras is not None and not committed:
                extras.abort()
    if joinid != task.joinid_stop:  # pragma: no cover - an internal invariant
        msg = (
            f"internal error: band {task.index} wrote cells up to {joinid}, not {task.joinid_stop}"
        )
        raise AssertionError(msg)
    Path(task.var_nnz_path).parent.mkdir(parents=True, exist_ok=True)
    np.save(task.var_nnz_path, var_nnz)
    release_free_memory()
    return BandResult(
        organism=task.organism,
        index=task.index,
        n_cells=task.n_cells,
        n_values=int(var_nnz.sum()),
        var_nnz_path=task.var_nnz_path,
        seconds=time.perf_counter() - t0,
    )
