"""Streaming reader of CELLxGENE-schema H5AD files: obs columns and X rows in chunks, never whole.

Reads the AnnData on-disk format (encoding 0.1.0) directly with h5py, so that only the requested
rows of obs columns and X are ever in memory. X may be stored as CSR, CSC or dense; raw counts are
taken from ``raw/X`` (with ``raw/var``) when a ``raw`` group exists, else from ``X`` (with ``var``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse

from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from types import TracebackType

logger = logging.getLogger(__name__)

#: Rows of obs read at once when scanning columns.
OBS_CHUNK_ROWS = 32_768
#: Stored values read at once when scanning a CSC matrix for a row range.
CSC_SCAN_NNZ = 16_777_216


@dataclass(frozen=True)
class ColumnInfo:
    """How an obs column is stored: categorical (with its categories, in file order) or plain."""

    categorical: bool
    categories: tuple[str, ...] | None


def _decode(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if values.dtype.kind in ("S", "O"):
        return np.array(
            [v.decode() if isinstance(v, bytes) else v for v in values.tolist()], dtype=object
        )
    return values


class H5ADSource:
    """An open H5AD file, read lazily.

    Parameters
    ----------
    path
        The H5AD file.
    dataset_id
        Named in every error message.
    """

    def __init__(self, path: str | Path, dataset_id: str) -> None:
        self.path = Path(path)
        self.dataset_id = dataset_id
        try:
            self._file = h5py.File(self.path, "r")
        except FileNotFoundError as e:
            msg = f"file {self.path} does not exist"
            raise BadInputError(msg, dataset_id=dataset_id) from e
        except PermissionError as e:
            msg = f"file {self.path} is not readable"
            raise BadInputError(msg, dataset_id=dataset_id) from e
        except OSError as e:
            msg = (
                f"file {self.path} is not a readable HDF5/H5AD file (truncated or another format): "
                f"{e}"
            )
            raise BadInputError(
                msg,
                dataset_id=dataset_id,
            ) from e
        try:
            self._check_layout()
        except BaseException:
            self._file.close()
            raise

    # -- context management -------------------------------------------------------------
    def close(self) -> None:
        """Close the underlying HDF5 file."""
        self._file.close()

    def __enter__(self) -> H5ADSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- layout ----------------------------------------------------------------------------
    def _err(self, message: str, field: str | None = None) -> BadInputError:
        return BadInputError(message, dataset_id=self.dataset_id, field=field)

    def _group(self, name: str) -> h5py.Group:
        node = self._file.get(name)
        if not isinstance(node, h5py.Group):
            msg = f"H5AD has no '{name}' group"
            raise self._err(msg, field=name)
        return node

    def _check_layout(self) -> None:
        try:
            for name in ("obs", "uns"):
                self._group(name)
            self._obs = self._group("obs")
            self.has_raw = isinstance(self._file.get("raw"), h5py.Group)
            prefix = "raw/" if self.has_raw else ""
            self.x_name = f"{prefix}X"
            self._var = self._group(f"{prefix}var")
            x = self._file.get(self.x_name)
            if x is None:
                msg = f"H5AD has no '{self.x_name}'"
                raise self._err(msg, field=self.x_name)
            self._x = x
            self.n_obs = self._frame_length(self._obs)
            self.n_vars = self._frame_length(self._var)
            if isinstance(x, h5py.Group):
                fmt = x.attrs.get("encoding-type", "")
                if fmt not in ("csr_matrix", "csc_matrix"):
                    msg = f"unsupported X encoding {fmt!r}"
                    raise self._err(msg, field=self.x_name)
                self.x_format = "csr" if fmt == "csr_matrix" else "csc"
                shape = tuple(int(s) for s in x.attrs["shape"])
                for part in ("data", "indices", "indptr"):
                    if part not in x:
                        msg = f"sparse matrix lacks '{part}'"
                        raise self._err(msg, field=self.x_name)
            else:
                self.x_format = "dense"
                shape = tuple(int(s) for s in x.shape)
            if shape != (self.n_obs, self.n_vars):
                msg = f"X shape {shape} does not match obs x var ({self.n_obs}, {self.n_vars})"
                raise self._err(
                    msg,
                    field=self.x_name,
                )
        except (OSError, KeyError, RuntimeError) as e:
            if isinstance(e, BadInputError):
                raise
            msg = f"H5AD is damaged or truncated: {e}"
            raise self._err(msg) from e

    @staticmethod
    def _frame_length(group: h5py.Group) -> int:
        index_name = group.attrs.get("_index", "_index")
        node = group.get(index_name)
        if node is None:
            msg = f"dataframe index {index_name!r} missing in {group.name}"
            raise KeyError(msg)
        return int(node.shape[0])

    # -- uns ---------------------------------------------------------------------------------
    def uns_str(self, key: str) -> str | None:
        """A scalar string from uns, or None when absent."""
        node = self._file["uns"].get(key)
        if node is None or not isinstance(node, h5py.Dataset):
            return None
        value = node[()]
        if isinstance(value, bytes):
            return value.decode()
        if isinstance(value, np.ndarray) and value.size == 1:
            item = value.reshape(-1)[0]
            return item.decode() if isinstance(item, bytes) else str(item)
        return str(value)

    # -- obs / var columns ----------------------------------------------------------------
    def obs_columns(self) -> list[str]:
        """Names of the obs columns, in file order."""
        return [str(c) for c in self._obs.attrs.get("column-order", [])]

    def var_columns(self) -> list[str]:
        """Names of the var (raw/var when raw exists) columns, in file order."""
        return [str(c) for c in self._var.attrs.get("column-order", [])]

    def column_info(self, column: str) -> ColumnInfo:
        """Whether an obs column is categorical, and its categories in file order."""
        node = self._obs[column]
        if isinstance(node, h5py.Group) and node.attrs.get("encoding-type") == "categorical":
            cats = _decode(node["categories"][()])
            return ColumnInfo(True, tuple(str(c) for c in cats))
        return ColumnInfo(False, None)

    def _read_column(self, group: h5py.Group, column: str, start: int, stop: int) -> pd.Series:
        node = group.get(column)
        if node is None:
            msg = f"column missing from {group.name}"
            raise self._err(msg, field=column)
        try:
            if isinstance(node, h5py.Group):
                kind = node.attrs.get("encoding-type", "")
                if kind == "categorical":
                    codes = node["codes"][start:stop]
                    cats = _decode(node["categories"][()])
                    return pd.Series(
                        pd.Categorical.from_codes(np.asarray(codes), categories=pd.Index(cats))
                    )
                if kind in ("nullable-boolean", "nullable-integer"):
                    values = node["values"][start:stop]
                    mask = node["mask"][start:stop]
                    series = pd.Series(values)
                    return series.mask(mask.astype(bool))
                msg = f"unsupported column encoding {kind!r}"
                raise self._err(msg, field=column)
            return pd.Series(_decode(node[start:stop]))
        except (OSError, ValueError) as e:
            msg = f"cannot read column: {e}"
            raise self._err(msg, field=column) from e

    def read_obs(self, columns: list[str], start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """Rows ``[start, stop)`` of the named obs columns."""
        stop = self.n_obs if stop is None else stop
        return pd.DataFrame({c: self._read_column(self._obs, c, start, stop) for c in columns})

    def read_var(self, columns: list[str]) -> pd.DataFrame:
        """The named var columns (of raw/var when raw exists), indexed by feature id."""
        index_name = self._var.attrs.get("_index", "_index")
        index = self._read_column(self._var, index_name, 0, self.n_vars)
        frame = pd.DataFrame({c: self._read_column(self._var, c, 0, self.n_vars) for c in columns})
        frame.index = pd.Index(index.astype(str).to_numpy(), name="feature_id")
        return frame

    # -- X -------------------------------------------------------------------------------
    def indptr(self) -> npt.NDArray[np.int64] | None:
        """The CSR row pointer (exact nnz per row range), or None for CSC/dense."""
        if self.x_format != "csr":
            return None
        return np.asarray(self._x["indptr"][()], dtype=np.int64)

    def estimated_nnz_per_row(self) -> float:
        """Average stored values per row (exact for sparse, the full size for dense)."""
        if self.n_obs == 0:
            return 0.0
        if self.x_format == "dense":
            return float(self.n_vars)
        return float(self._x["data"].shape[0]) / self.n_obs

    def read_x_rows(self, start: int, stop: int) -> sparse.csr_matrix:
        """Rows ``[start, stop)`` of the counts matrix as canonical CSR (duplicates summed)."""
        try:
            if self.x_format == "csr":
                indptr = np.asarray(self._x["indptr"][start : stop + 1], dtype=np.int64)
                lo, hi = int(indptr[0]), int(indptr[-1])
                data = self._x["data"][lo:hi]
                indices = self._x["indices"][lo:hi]
                m = sparse.csr_matrix(
                    (data, indices, indptr - lo), shape=(stop - start, self.n_vars)
                )
            elif self.x_format == "csc":
                m = self._csc_rows(start, stop)
            else:
                m = sparse.csr_matrix(self._x[start:stop, :])
        except (OSError, ValueError, IndexError) as e:
            msg = f"cannot read rows {start}-{stop}: {e}"
            raise self._err(msg, field=self.x_name) from e
        m.sum_duplicates()
        return m

    def read_x_row_set(self, rows: npt.NDArray[np.int64]) -> sparse.csr_matrix:
        """Some rows (sorted, unique) of the counts matrix, in one pass for CSC and dense X."""
        rows = np.asarray(rows, dtype=np.int64)
        try:
            if self.x_format == "csr":
                m = self._csr_select(rows)
                m.sum_duplicates()
                return m
            if self.x_format == "dense":
                m = sparse.csr_matrix(self._x[rows, :])
            else:
                m = self._csc_select(rows)
        except (OSError, ValueError, IndexError) as e:
            msg = f"cannot read rows: {e}"
            raise self._err(msg, field=self.x_name) from e
        m.sum_duplicates()
        return m

    def _csr_select(self, rows: npt.NDArray[np.int64]) -> sparse.csr_matrix:
        """Rows of a CSR matrix, reading nearby rows' values in one bounded span."""
        indptr = np.asarray(self._x["indptr"][()], dtype=np.int64)
        lo, hi = indptr[rows], indptr[rows + 1]
        data_parts: list[npt.NDArray[Any]] = []
        index_parts: list[npt.NDArray[Any]] = []
        i = 0
        while i < len(rows):
            j = i
            # merge following rows while the span they share stays bounded
            while j + 1 < len(rows) and hi[j + 1] - lo[i] <= CSC_SCAN_NNZ:
                j += 1
            span_data = self._x["data"][lo[i] : hi[j]]
            span_idx = self._x["indices"][lo[i] : hi[j]]
            for k in range(i, j + 1):
                a, b = lo[k] - lo[i], hi[k] - lo[i]
                data_parts.append(span_data[a:b])
                index_parts.append(span_idx[a:b])
            i = j + 1
        counts = hi - lo
        new_indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        data = np.concatenate(data_parts) if data_parts else np.zeros(0, self._x["data"].dtype)
        indices = np.concatenate(index_parts) if index_parts else np.zeros(0, np.int64)
        return sparse.csr_matrix((data, indices, new_indptr), shape=(len(rows), self.n_vars))

    def _csc_select(self, rows: npt.NDArray[np.int64]) -> sparse.csr_matrix:
        indptr = np.asarray(self._x["indptr"][()], dtype=np.int64)
        nnz = int(indptr[-1])
        out_r: list[npt.NDArray[Any]] = []
        out_c: list[npt.NDArray[Any]] = []
        out_v: list[npt.NDArray[Any]] = []
        for lo in range(0, nnz, CSC_SCAN_NNZ):
            hi = min(lo + CSC_SCAN_NNZ, nnz)
            idx = self._x["indices"][lo:hi]
            keep = np.isin(idx, rows)
            if not keep.any():
                continue
            pos = np.flatnonzero(keep) + lo
            out_r.append(np.searchsorted(rows, idx[keep]))
            out_c.append(np.searchsorted(indptr, pos, side="right") - 1)
            out_v.append(self._x["data"][lo:hi][keep])
        shape = (len(rows), self.n_vars)
        if not out_r:
            return sparse.csr_matrix(shape, dtype=self._x["data"].dtype)
        return sparse.csr_matrix(
            (np.concatenate(out_v), (np.concatenate(out_r), np.concatenate(out_c))), shape=shape
        )

    def _csc_rows(self, start: int, stop: int) -> sparse.csr_matrix:
        """Rows of a CSC matrix, by scanning its stored values in bounded blocks."""
        indptr = np.asarray(self._x["indptr"][()], dtype=np.int64)
        nnz = int(indptr[-1])
        rows: list[npt.NDArray[Any]] = []
        cols: list[npt.NDArray[Any]] = []
        vals: list[npt.NDArray[Any]] = []
        for lo in range(0, nnz, CSC_SCAN_NNZ):
            hi = min(lo + CSC_SCAN_NNZ, nnz)
            idx = self._x["indices"][lo:hi]
            keep = (idx >= start) & (idx < stop)
            if not keep.any():
                continue
            pos = np.flatnonzero(keep) + lo
            rows.append(idx[keep] - start)
            cols.append(np.searchsorted(indptr, pos, side="right") - 1)
            vals.append(self._x["data"][lo:hi][keep])
        if not rows:
            return sparse.csr_matrix((stop - start, self.n_vars), dtype=self._x["data"].dtype)
        return sparse.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(stop - start, self.n_vars),
        )


def row_chunks(
    n_rows: int,
    *,
    chunk_nnz: int,
    indptr: npt.NDArray[np.int64] | None,
    nnz_per_row: float,
    max_rows: int = 1_000_000,
) -> list[tuple[int, int]]:
    """Split ``[0, n_rows)`` into row ranges of at most ``chunk_nnz`` stored values each.

    With a CSR row pointer the bound is exact (a single row larger than the budget is its own
    chunk); otherwise it uses the average density.
    """
    if n_rows == 0:
        return []
    if indptr is None:
        step = max(1, min(max_rows, int(chunk_nnz // max(nnz_per_row, 1.0))))
        return [(s, min(s + step, n_rows)) for s in range(0, n_rows, step)]
    bounds: list[tuple[int, int]] = []
    start = 0
    while start < n_rows:
        limit = indptr[start] + chunk_nnz
        stop = int(np.searchsorted(indptr, limit, side="right")) - 1
        stop = max(start + 1, min(stop, n_rows, start + max_rows))
        bounds.append((start, stop))
        start = stop
    return bounds
