"""Streaming reader of CELLxGENE-schema H5AD files: obs columns and X rows in chunks, never whole.

X is read through anndata's public I/O: ``anndata.io.sparse_dataset`` row slices for CSR
matrices (as fast as direct h5py reads, measured in ``benchmarks/RESULTS.md``), ``read_elem`` for
``uns``, ``var`` and categories. Two things have no bounded-memory public path in anndata 0.11 and
are read with h5py following anndata's documented on-disk format: row ranges of obs columns
(``read_elem`` reads whole columns; the lazy readers of anndata 0.11 accept neither categorical nor
string columns), and row ranges of CSC matrices (``sparse_dataset`` row slices of a CSC matrix
read whole columns), which are scanned in bounded blocks of stored values. Raw counts are taken
from ``raw/X`` (with ``raw/var``) when a ``raw`` group exists, else from ``X`` (with ``var``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import h5py
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse

from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

logger = logging.getLogger(__name__)

#: Rows of obs read at once when scanning columns (also the scan's block of rows).
OBS_CHUNK_ROWS = 32_768
#: Stored values read at once when scanning a CSC matrix for a row range.
CSC_SCAN_NNZ = 16_777_216
#: Rows read as one range when reading a set of rows (e.g. a validation sample): rows join the
#: range while less than _SAMPLE_GAP rows from the previous one and _SAMPLE_SPAN from its first.
_SAMPLE_SPAN = 4096
_SAMPLE_GAP = 64
#: Rows of the CSR row pointer read at once; also the most rows of one chunk (bounds obs memory).
_INDPTR_ROWS = 262_144


@dataclass(frozen=True)
class ColumnInfo:
    """How an obs column is stored: categorical (with its categories, in file order) or plain."""

    categorical: bool
    categories: tuple[str, ...] | None


@dataclass(frozen=True)
class _Column:
    """A dataframe column's encoding and its HDF5 datasets."""

    kind: str  # categorical, nullable-boolean, nullable-integer, string, plain
    data: Any  # h5py.Dataset: codes, values, or the column itself
    categories: pd.Index | None = None
    mask: Any = None  # h5py.Dataset of a nullable column's mask


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
            msg = f"file {self.path.name} does not exist"
            raise BadInputError(msg, dataset_id=dataset_id) from e
        except PermissionError as e:
            msg = f"file {self.path.name} is not readable"
            raise BadInputError(msg, dataset_id=dataset_id) from e
        except OSError as e:
            msg = f"not a readable HDF5/H5AD file (truncated or another format): {e}"
            raise BadInputError(msg, dataset_id=dataset_id) from e
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
                expected_ptr = (shape[0] if self.x_format == "csr" else shape[1]) + 1
                if x["indptr"].shape != (expected_ptr,) or x["data"].shape != x["indices"].shape:
                    msg = "sparse matrix parts have inconsistent lengths"
                    raise self._err(msg, field=self.x_name)
            else:
                self.x_format = "dense"
                shape = tuple(int(s) for s in x.shape)
            if shape != (self.n_obs, self.n_vars):
                msg = f"X shape {shape} does not match obs x var ({self.n_obs}, {self.n_vars})"
                raise self._err(msg, field=self.x_name)
        except (OSError, KeyError, RuntimeError, TypeError, ValueError) as e:
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

    @property
    def file(self) -> h5py.File:
        """The open HDF5 file (anndata's on-disk layout), for readers of other elements."""
        return self._file

    # -- uns ---------------------------------------------------------------------------------
    def uns_str(self, key: str) -> str | None:
        """A scalar string from uns, or None when absent or not a scalar."""
        from anndata.io import read_elem

        node = self._file["uns"].get(key)
        if node is None or not isinstance(node, h5py.Dataset):
            return None
        try:
            value = read_elem(node) if "encoding-type" in node.attrs else node[()]
        except Exception as e:  # anndata raises several types for elements it cannot decode
            msg = f"cannot read uns[{key!r}]: {e}"
            raise self._err(msg, field=f"uns.{key}") from e
        if isinstance(value, bytes):
            return value.decode()
        if isinstance(value, np.ndarray):
            if value.size != 1:
                return None
            item = value.reshape(-1)[0]
            return item.decode() if isinstance(item, bytes) else str(item)
        return str(value)

    # -- obs / var columns ----------------------------------------------------------------
    def obs_columns(self) -> list[str]:
        """Names of the obs columns, in file order."""
        # a column listed in column-order but absent from the file is missing
        return [str(c) for c in self._obs.attrs.get("column-order", []) if str(c) in self._obs]

    def var_columns(self) -> list[str]:
        """Names of the var (raw/var when raw exists) columns, in file order."""
        return [str(c) for c in self._var.attrs.get("column-order", []) if str(c) in self._var]

    def column_info(self, column: str) -> ColumnInfo:
        """Whether an obs column is categorical, and its categories in file order."""
        from anndata.io import read_elem

        node = self._obs[column]
        if isinstance(node, h5py.Group) and node.attrs.get("encoding-type") == "categorical":
            cats = _decode(np.asarray(read_elem(node["categories"])))
            return ColumnInfo(True, tuple(str(c) for c in cats))
        return ColumnInfo(False, None)

    def is_integer_column(self, column: str) -> bool:
        """Whether an obs column holds integers (a plain integer array or a nullable integer)."""
        col = self._column(self._obs, column)
        if col.kind == "nullable-integer":
            return True
        return col.kind == "plain" and np.dtype(col.data.dtype).kind in "iu"

    def _column(self, group: h5py.Group, column: str) -> _Column:
        """How to read a dataframe column (looked up once per file and column)."""
        from anndata.io import read_elem

        cache: dict[tuple[str, str], _Column] = self.__dict__.setdefault("_columns", {})
        key = (str(group.name), column)
        if key in cache:
            return cache[key]
        node = group.get(column)
        if node is None:
            msg = f"column missing from {group.name}"
            raise self._err(msg, field=column)
        if isinstance(node, h5py.Group):
            kind = str(node.attrs.get("encoding-type", ""))
            if kind == "categorical":
                cats = pd.Index(_decode(np.asarray(read_elem(node["categories"]))))
                col = _Column(kind, node["codes"], categories=cats)
            elif kind in ("nullable-boolean", "nullable-integer"):
                col = _Column(kind, node["values"], mask=node["mask"])
            else:
                msg = f"unsupported column encoding {kind!r}"
                raise self._err(msg, field=column)
        else:
            kind = "string" if h5py.check_string_dtype(node.dtype) is not None else "plain"
            col = _Column(kind, node)
        cache[key] = col
        return col

    def _read_column(
        self,
        group: h5py.Group,
        column: str,
        start: int,
        stop: int | None = None,
        *,
        rows: npt.NDArray[np.int64] | None = None,
    ) -> pd.Series:
        """Rows ``[start, stop)`` (or the sorted ``rows``) of a dataframe column.

        Follows anndata's on-disk dataframe encoding (0.2.0) with h5py: anndata 0.11 has no
        public reader of row ranges of categorical or string columns.
        """
        col = self._column(group, column)
        where: Any = slice(start, stop) if rows is None else rows
        try:
            if col.kind == "categorical":
                codes = np.asarray(col.data[where])
                cats = col.categories
                assert cats is not None  # noqa: S101 - set for categorical columns
                if codes.size and (int(codes.max()) >= len(cats) or int(codes.min()) < -1):
                    msg = "categorical codes point outside the categories"
                    raise self._err(msg, field=column)
                return pd.Series(
                    pd.Categorical.from_codes(cast("Sequence[int]", codes), categories=cats)
                )
            if col.kind in ("nullable-boolean", "nullable-integer"):
                assert col.mask is not None  # noqa: S101 - set for nullable columns
                series = pd.Series(col.data[where])
                return series.mask(np.asarray(col.mask[where]).astype(bool))
            if col.kind == "string":
                return pd.Series(col.data.asstr()[where])  # decoded in C, not per value
            return pd.Series(_decode(np.asarray(col.data[where])))
        except (OSError, ValueError, TypeError) as e:
            if isinstance(e, BadInputError):
                raise
            msg = f"cannot read column: {e}"
            raise self._err(msg, field=column) from e

    def read_obs(self, columns: list[str], start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """Rows ``[start, stop)`` of the named obs columns."""
        stop = self.n_obs if stop is None else stop
        frame = pd.DataFrame({c: self._read_column(self._obs, c, start, stop) for c in columns})
        if len(frame) != stop - start:
            msg = (
                f"obs columns are shorter than the obs index ({len(frame)} of {stop - start} rows)"
            )
            raise self._err(msg, field="obs")
        return frame

    def read_obs_rows(self, columns: list[str], rows: npt.NDArray[np.int64]) -> pd.DataFrame:
        """Some rows (sorted, unique) of the named obs columns (one read per column)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return pd.DataFrame({c: [] for c in columns})
        return pd.DataFrame({c: self._read_column(self._obs, c, 0, rows=rows) for c in columns})

    def obs_index(self, start: int, stop: int) -> pd.Series:
        """Rows ``[start, stop)`` of the obs index (cell names)."""
        index_name = self._obs.attrs.get("_index", "_index")
        return self._read_column(self._obs, index_name, start, stop)

    def read_var(self, columns: list[str]) -> pd.DataFrame:
        """The named var columns (of raw/var when raw exists), indexed by feature id."""
        index_name = self._var.attrs.get("_index", "_index")
        index = self._read_column(self._var, index_name, 0, self.n_vars)
        frame = pd.DataFrame({c: self._read_column(self._var, c, 0, self.n_vars) for c in columns})
        if len(frame) != self.n_vars:
            msg = "var columns are shorter than the var index"
            raise self._err(msg, field="var")
        frame.index = pd.Index(index.astype(str).to_numpy(), name="feature_id")
        return frame

    # -- X -------------------------------------------------------------------------------
    @property
    def nnz(self) -> int:
        """Stored values of the counts matrix (all cells for a dense one)."""
        if self.x_format == "dense":
            return self.n_obs * self.n_vars
        return int(self._x["data"].shape[0])

    def indptr(self, start: int, stop: int) -> npt.NDArray[np.int64] | None:
        """The CSR row pointer of rows ``[start, stop)`` (``stop - start + 1`` entries).

        None for CSC and dense matrices, whose stored values per row are not recorded.
        """
        if self.x_format != "csr":
            return None
        try:
            ptr = np.asarray(self._x["indptr"][start : stop + 1], dtype=np.int64)
        except OSError as e:
            msg = f"cannot read the row pointer: {e}"
            raise self._err(msg, field=self.x_name) from e
        if len(ptr) and (np.any(np.diff(ptr) < 0) or int(ptr[-1]) > self.nnz or int(ptr[0]) < 0):
            msg = "the CSR row pointer is not monotonic or points past the stored values"
            raise self._err(msg, field=self.x_name)
        return ptr

    def row_nnz(self, start: int, stop: int) -> int:
        """Stored values of rows ``[start, stop)``: exact for CSR, an average otherwise."""
        ptr = self.indptr(start, stop)
        if ptr is not None:
            return int(ptr[-1] - ptr[0])
        if self.n_obs == 0:
            return 0
        return round(self.nnz * (stop - start) / self.n_obs)

    def read_x_rows(self, start: int, stop: int) -> sparse.csr_matrix:
        """Rows ``[start, stop)`` of the counts matrix as canonical CSR (duplicates summed)."""
        try:
            if self.x_format == "csr":
                from anndata.io import sparse_dataset

                m = sparse.csr_matrix(sparse_dataset(self._x)[start:stop])
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
        """Some rows (sorted, unique) of the counts matrix."""
        rows = np.asarray(rows, dtype=np.int64)
        try:
            if self.x_format == "csr":
                # nearby rows in one row-range read, each spanning fewer than _SAMPLE_SPAN rows
                # (so a read never grows with the dataset, however dense the sample); a gap of
                # _SAMPLE_GAP rows starts a new read (far-apart rows are not read in between)
                from anndata.io import sparse_dataset

                x = sparse_dataset(self._x)  # one for all reads: it loads the row pointers
                parts = []
                first = 0
                for i in range(1, len(rows) + 1):
                    if (
                        i == len(rows)
                        or rows[i] - rows[i - 1] >= _SAMPLE_GAP
                        or rows[i] - rows[first] >= _SAMPLE_SPAN
                    ):
                        group = rows[first:i]
                        block = sparse.csr_matrix(x[int(group[0]) : int(group[-1]) + 1])
                        parts.append(block[group - group[0]])
                        first = i
                m = (
                    sparse.vstack(parts, format="csr")
                    if parts
                    else sparse.csr_matrix((0, self.n_vars))
                )
            elif self.x_format == "dense":
                m = sparse.csr_matrix(self._x[rows, :])
            else:
                m = self._csc_scan(lambda idx: np.isin(idx, rows), len(rows), rows)
        except (OSError, ValueError, IndexError) as e:
            msg = f"cannot read rows: {e}"
            raise self._err(msg, field=self.x_name) from e
        m.sum_duplicates()
        return m

    def _csc_rows(self, start: int, stop: int) -> sparse.csr_matrix:
        """Rows of a CSC matrix, by scanning its stored values in bounded blocks."""
        return self._csc_scan(lambda idx: (idx >= start) & (idx < stop), stop - start, start)

    def _csc_scan(
        self,
        keep_rows: Any,  # noqa: ANN401 - a vectorized predicate over row indices
        n_rows: int,
        where: int | npt.NDArray[np.int64],
    ) -> sparse.csr_matrix:
        indptr = np.asarray(self._x["indptr"][()], dtype=np.int64)  # one entry per gene
        nnz = int(indptr[-1])
        out_r: list[npt.NDArray[Any]] = []
        out_c: list[npt.NDArray[Any]] = []
        out_v: list[npt.NDArray[Any]] = []
        for lo in range(0, nnz, CSC_SCAN_NNZ):
            hi = min(lo + CSC_SCAN_NNZ, nnz)
            idx = self._x["indices"][lo:hi]
            keep = keep_rows(idx)
            if not keep.any():
                continue
            pos = np.flatnonzero(keep) + lo
            if isinstance(where, int):
                out_r.append(idx[keep] - where)
            else:
                out_r.append(np.searchsorted(where, idx[keep]))
            out_c.append(np.searchsorted(indptr, pos, side="right") - 1)
            out_v.append(self._x["data"][lo:hi][keep])
        shape = (n_rows, self.n_vars)
        if not out_r:
            return sparse.csr_matrix(shape, dtype=self._x["data"].dtype)
        return sparse.csr_matrix(
            (np.concatenate(out_v), (np.concatenate(out_r), np.concatenate(out_c))), shape=shape
        )

    def row_chunks(self, start: int, stop: int, chunk_nnz: int) -> list[tuple[int, int]]:
        """Split rows ``[start, stop)`` into ranges of at most ``chunk_nnz`` stored values.

        Exact for CSR (a single row larger than the budget is its own chunk), by the average
        density otherwise. The row pointer is read in bounded pieces.
        """
        if self.x_format != "csr":
            per_row = self.nnz / self.n_obs if self.n_obs else 0.0
            step = max(1, min(_INDPTR_ROWS, int(chunk_nnz // max(per_row, 1.0))))
            return [(s, min(s + step, stop)) for s in range(start, stop, step)]
        bounds: list[tuple[int, int]] = []
        chunk_start = start
        while chunk_start < stop:
            piece_stop = min(chunk_start + _INDPTR_ROWS, stop)
            ptr = self.indptr(chunk_start, piece_stop)
            assert ptr is not None  # noqa: S101 - CSR has a row pointer
            first = 0  # position in ptr of the open chunk's first row
            while True:
                k = int(np.searchsorted(ptr, ptr[first] + chunk_nnz, side="right")) - 1
                end = max(first + 1, k)
                if end < len(ptr) - 1:
                    bounds.append((chunk_start + first, chunk_start + end))
                    first = end
                    continue
                if piece_stop == stop or first == 0:
                    # the piece's end closes the chunk (the data's end, or at most
                    # _INDPTR_ROWS rows in one chunk)
                    bounds.append((chunk_start + first, piece_stop))
                    chunk_start = piece_stop
                else:
                    chunk_start += first  # measure this chunk again in the next piece
                break
        return bounds
