"""One unit of X work: a row chunk of one dataset → raw and normalized cells + statistics.

Each task reads only its rows, computes the normalized layer and the statistics, sorts the chunk's
cells into the X arrays' global order and leaves them (and its per-cell statistics) in the work
directory for the layer writers (``_xwrite``); it returns per-feature counts. Memory is bounded by
the chunk's stored values, never by the dataset's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import tiledbsoma as soma

from cellcensus.builder import _schema as S
from cellcensus.builder._source import H5ADSource
from cellcensus.builder._xkernel import global_order_csr
from cellcensus.builder._xmath import is_nonnegative_integral, normalize, obs_stats
from cellcensus.builder._xwrite import save_chunk
from cellcensus.errors import BadInputError


@cache
def soma_context(config_items: tuple[tuple[str, str], ...] = ()) -> soma.SOMATileDBContext:
    """A per-process TileDB context (contexts are expensive and thread-safe)."""
    return soma.SOMATileDBContext(tiledb_config=dict(config_items))


@dataclass(frozen=True)
class XChunkTask:
    """Everything a worker needs to process rows ``[start, stop)`` of one dataset."""

    dataset_id: str
    path: str
    start: int
    stop: int
    mask_path: str | None
    var_keep: npt.NDArray[np.int64]  # local var positions of census features
    var_joinids: npt.NDArray[np.int64]  # their census soma_joinids
    feature_length: npt.NDArray[np.int64]  # their lengths (full-gene normalization)
    obs_joinid_start: int  # soma_joinid of the chunk's first included cell
    stats_path: str
    cells_stem: str  # where the chunk's sorted cells go: ``<stem>.<part>.npy``
    check_values: bool


@dataclass(frozen=True)
class XChunkResult:
    """Per-feature stored-value counts (aligned with ``var_joinids``) and cells written."""

    dataset_id: str
    start: int
    n_cells: int
    var_nnz: npt.NDArray[np.int64]

    @property
    def n_values(self) -> int:
        """Stored values of the chunk."""
        return int(self.var_nnz.sum())


def global_order(
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    *,
    columns_sorted_within_rows: bool = False,
) -> npt.NDArray[np.int64]:
    """Permutation putting cells given in row order into TileDB's global order for X.

    X arrays are row-major with row-major tiles of ``X_TILE`` x ``X_TILE``: cells sort by
    (row tile, column tile, row, column). Writing in that order lets TileDB skip its own sort.
    Coordinates are unique; columns may or may not ascend within each row.
    """
    if len(rows) == 0:
        return np.arange(0, dtype=np.int64)
    if np.any(rows[1:] < rows[:-1]):
        msg = "global_order expects cells in row order"
        raise ValueError(msg)
    row0 = int(rows[0])
    indptr = np.searchsorted(rows, np.arange(row0, int(rows[-1]) + 2))
    order, _ = global_order_csr(
        indptr, cols, row0, S.X_TILE, columns_sorted_within_rows=columns_sorted_within_rows
    )
    return order


def _full_gene_cells(assay: pd.Series) -> npt.NDArray[np.bool_]:
    """Which cells are of a full-length (Smart-seq-like) assay."""
    full_gene = sorted(S.full_gene_assays())
    if isinstance(assay.dtype, pd.CategoricalDtype):
        by_category = np.isin(assay.cat.categories.astype(str), full_gene)
        codes = assay.cat.codes.to_numpy()
        return np.where(codes >= 0, by_category[codes], False)
    return np.isin(assay.astype(str).to_numpy(), full_gene)


def process_x_chunk(task: XChunkTask) -> XChunkResult:
    """Read, check, summarize and write one row chunk (see module docstring)."""
    with H5ADSource(task.path, task.dataset_id) as src:
        x = src.read_x_rows(task.start, task.stop)
        if task.mask_path is not None:
            mask = np.load(task.mask_path, mmap_mode="r")[task.start : task.stop]
            rows_kept = np.flatnonzero(mask)
            x = x[rows_kept]
        else:
            rows_kept = np.arange(task.stop - task.start)
        x = x[:, task.var_keep].tocsr()
        x.sum_duplicates()
        x.eliminate_zeros()
        if task.check_values and not is_nonnegative_integral(x.data):
            msg = "raw counts must be non-negative whole numbers"
            raise BadInputError(
                msg,
                dataset_id=task.dataset_id,
                field=src.x_name,
            )
        assays = src.read_obs(["assay_ontology_term_id"], task.start, task.stop)
        full = _full_gene_cells(assays["assay_ontology_term_id"])[rows_kept]
    n_cells = x.shape[0]
    stats = obs_stats(x)
    Path(task.stats_path).parent.mkdir(parents=True, exist_ok=True)
    with Path(task.stats_path).open("wb") as fh:
        np.savez(
            fh,
            raw_sum=stats.raw_sum,
            nnz=stats.nnz,
            raw_mean_nnz=stats.raw_mean_nnz,
            raw_variance_nnz=stats.raw_variance_nnz,
        )
    var_nnz = np.bincount(x.indices, minlength=x.shape[1]).astype(np.int64)
    indptr = x.indptr
    col = x.indices.astype(np.int64)
    data = x.data.astype(np.float32)
    del x
    norm = normalize(
        None,  # rows follow from indptr
        col,
        data,
        n_cells,
        full_gene_rows=full if full.any() else None,
        feature_length=task.feature_length,
        indptr=indptr,
    )
    g_cols = task.var_joinids[col]
    # CSR chunks are row-major with sorted local columns; when the dataset's census var
    # joinids increase with its local columns, that order is also sorted by census column
    monotonic = bool(np.all(np.diff(task.var_joinids) > 0))
    order, g_rows = global_order_csr(
        indptr, g_cols, task.obs_joinid_start, S.X_TILE, columns_sorted_within_rows=monotonic
    )
    save_chunk(
        task.cells_stem,
        g_rows,
        g_cols[order],
        {"raw": data[order], "normalized": norm[order]},
    )
    return XChunkResult(task.dataset_id, task.start, n_cells, var_nnz)
