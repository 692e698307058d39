"""Streaming writers of an export: ``.h5ad`` and ``.zarr`` (through anndata), ``.parquet``.

Each writer receives, in order: the ``obs`` rows (Arrow tables, in ``soma_joinid`` order), the
``var`` rows, then X as consecutive CSR chunks of cells. Nothing is held beyond one chunk:
h5ad/zarr are written by ``anndata.io.write_elem`` and grown chunk by chunk (X by
``anndata.io.sparse_dataset(...).append``), parquet appends row groups.

The AnnData files hold what ``get_anndata`` returns: ``obs``/``var`` indexed ``"0"``, ``"1"``, ...,
dictionary columns as categoricals (with every value of the column's enumeration), X as CSR
float32; ``.zarr`` needs the ``[export]`` extra (zarr 2 with anndata 0.11, zarr 2 or 3 with
anndata 0.12).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cellcensus._extras import require_extra
from cellcensus._formats.export import FORMAT_VERSION, ExportInfo
from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import numpy.typing as npt
    from scipy import sparse

__all__ = [
    "EXPORT_FORMATS",
    "PARQUET_FORMAT_VERSION",
    "AnnDataWriter",
    "CsrChunk",
    "ExportWriter",
    "ParquetWriter",
    "export_format",
    "parquet_paths",
]

EXPORT_FORMATS = ("h5ad", "zarr", "parquet")
#: Version of the parquet export layout (in ``<stem>.export.json``).
PARQUET_FORMAT_VERSION = FORMAT_VERSION
_CHUNK = 1 << 16


@dataclass(frozen=True)
class CsrChunk:
    """Consecutive rows of X as CSR: rows ``obs_joinids``, columns positions into
    ``var_joinids`` (the whole selection), values float32."""

    obs_joinids: npt.NDArray[np.int64]
    var_joinids: npt.NDArray[np.int64]
    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int32]
    data: npt.NDArray[np.float32]


def export_format(path: Path, fmt: str | None) -> str:
    """The format of an export target, from ``fmt`` or the path's suffix.

    Raises
    ------
    BadInputError
        For an unknown format or suffix.
    """
    chosen = (fmt or path.suffix.lstrip(".")).lower()
    if chosen not in EXPORT_FORMATS:
        msg = (
            f"cannot tell the export format of {str(path)!r}: name it *.h5ad, *.zarr or *.parquet "
            f"(or pass format= one of {', '.join(EXPORT_FORMATS)})"
        )
        raise BadInputError(msg, field="to")
    return chosen


def parquet_paths(path: Path) -> dict[str, Path]:
    """The files of a parquet export at ``path`` (``X``, ``obs``, ``var``, ``meta``)."""
    stem = path.name[: -len(".parquet")] if path.name.endswith(".parquet") else path.name
    return {
        "X": path,
        "obs": path.with_name(stem + ".obs.parquet"),
        "var": path.with_name(stem + ".var.parquet"),
        "meta": path.with_name(stem + ".export.json"),
    }


class ExportWriter(ABC):
    """Receives an export's parts in order; writes to temporary names, renames on commit."""

    @abstractmethod
    def begin_axis(
        self, axis: str, n: int, schema: pa.Schema, categories: dict[str, list[str]]
    ) -> None:
        """Start ``obs`` or ``var``: ``n`` rows with these columns (and dictionary values)."""

    @abstractmethod
    def write_rows(self, axis: str, table: pa.Table) -> None:
        """Append rows of the current axis (in ``soma_joinid`` order)."""

    @abstractmethod
    def begin_x(self, n_obs: int, n_vars: int, nnz_hint: int) -> None:
        """Start X."""

    @abstractmethod
    def write_x(self, chunk: CsrChunk) -> None:
        """Append the next rows of X (consecutive rows, in order)."""

    @abstractmethod
    def commit(self, meta: ExportInfo) -> None:
        """Finish, then move the result to its final name."""

    @abstractmethod
    def abort(self) -> None:
        """Remove everything written."""


# ---------------------------------------------------------------------------- AnnData
#: Chunking of every array written (zarr arrays always grow; anndata makes X's HDF5 datasets
#: growable itself, dataframe columns need ``maxshape``).
_X_KWARGS: dict[str, Any] = {"chunks": (_CHUNK,)}
_H5_FRAME_KWARGS: dict[str, Any] = {"maxshape": (None,), "chunks": (_CHUNK,)}


def _open_store(path: Path, fmt: str) -> Any:  # noqa: ANN401 - h5py.File or zarr.Group
    """A new, empty ``h5py.File`` or zarr group at ``path``."""
    if fmt == "h5ad":
        import h5py

        return h5py.File(path, "w")
    require_extra("export", "exporting to .zarr")
    import zarr

    kwargs: dict[str, Any] = {}
    if int(zarr.__version__.split(".")[0]) >= 3:
        import anndata

        # the zarr format anndata writes by default (2, readable by every anndata release)
        kwargs["zarr_format"] = getattr(anndata.settings, "zarr_write_format", 2)
    return zarr.open_group(str(path), mode="w", **kwargs)


def _append(array: Any, values: npt.NDArray[Any]) -> None:  # noqa: ANN401
    """Append to a 1-D array anndata wrote (an ``h5py.Dataset`` or a ``zarr.Array``)."""
    if not len(values):
        return
    if hasattr(array, "resize") and hasattr(array, "id"):  # h5py.Dataset
        n = int(array.shape[0])
        array.resize((n + len(values),))
        array[n:] = values
    else:
        array.append(values)


class _Column:
    """One obs/var column: Arrow chunks to the numpy / pandas values anndata encodes."""

    def __init__(self, field: pa.Field, categories: list[str] | None) -> None:
        self.field = field
        t = field.type
        self.categories = categories
        self.ordered = bool(getattr(t, "ordered", False))
        if categories is not None:
            n = len(categories)
            self.lookup = {c: i for i, c in enumerate(categories)}
            self.dtype: Any = np.int8 if n < 2**7 else np.int16 if n < 2**15 else np.int32
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            self.dtype = object
        elif pa.types.is_boolean(t):
            self.dtype = np.bool_
        elif pa.types.is_integer(t) or pa.types.is_floating(t):
            self.dtype = t.to_pandas_dtype()
        else:
            msg = f"column {field.name!r} has type {t}, which export does not support"
            raise BadInputError(msg)

    def values(self, arr: pa.ChunkedArray | pa.Array) -> npt.NDArray[Any]:
        """The chunk as one numpy array: category codes, or the values."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if self.categories is not None:
            return self._codes(arr)
        if self.dtype is object:
            return np.array(arr.to_pylist(), dtype=object)
        out: npt.NDArray[Any] = arr.to_numpy(zero_copy_only=False).astype(self.dtype, copy=False)
        return out

    def series(self, values: npt.NDArray[Any]) -> Any:  # noqa: ANN401 - pd.Categorical | ndarray
        """What anndata writes for the first chunk (it picks the encoding from the type)."""
        if self.categories is None:
            return values
        import pandas as pd

        # pandas-stubs 2.x types codes as Sequence[int]; pandas takes the integer array as is
        return pd.Categorical.from_codes(
            cast("Sequence[int]", values),
            categories=pd.Index(self.categories, dtype=object),
            ordered=self.ordered,
        )

    def _codes(self, arr: pa.Array) -> npt.NDArray[Any]:
        """Category codes without a Python object per row: map the (small) dictionary once."""
        if not pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_encode()
        dictionary = [str(v) for v in arr.dictionary.to_pylist()]
        unknown = [v for v in dictionary if v not in self.lookup]
        if unknown:
            msg = f"column {self.field.name!r}: values {unknown[:5]} are not in its enumeration"
            raise BadInputError(msg)
        mapping = np.array([self.lookup[v] for v in dictionary] + [-1], dtype=self.dtype)
        idx = arr.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False)
        codes: npt.NDArray[Any] = mapping[idx]
        return codes


class AnnDataWriter(ExportWriter):
    """Writes ``.h5ad`` (h5py) or ``.zarr`` through anndata's element I/O.

    ``anndata.io.write_elem`` writes the AnnData skeleton and every element (``obs`` and ``var``
    from their first chunk of rows, X from its first chunk of cells); later chunks are appended:
    X by ``anndata.io.sparse_dataset(...).append``, dataframe columns (category codes, values,
    index) by growing the 1-D arrays anndata created. So the file is in whatever encoding the
    installed anndata writes (0.11 and 0.12 are supported), and memory stays at one chunk.
    """

    def __init__(self, path: Path, fmt: str) -> None:
        import anndata
        from anndata.io import write_elem

        self.path = path
        self.tmp = path.with_name(f".{path.name}.partial")
        self.fmt = fmt
        _remove(self.tmp)
        self._kwargs = _H5_FRAME_KWARGS if fmt == "h5ad" else _X_KWARGS
        try:
            self.store = _open_store(self.tmp, fmt)
            # the skeleton: root encoding, empty obs/var, obsm, varm, obsp, varp, layers, uns
            write_elem(self.store, "/", anndata.AnnData())
        except BaseException:
            _remove(self.tmp)  # a full or read-only disk: leave nothing behind
            raise
        self._axis = ""
        self._cols: list[_Column] = []
        self._pos = 0
        self._n_obs = 0
        self._n_vars = 0
        self._rows = 0
        self._index_dtype: Any = np.int32
        self._x_started = False

    # ------------------------------------------------------------------ obs / var
    def begin_axis(
        self, axis: str, n: int, schema: pa.Schema, categories: dict[str, list[str]]
    ) -> None:
        """Start ``axis``: its columns are written with the first rows (or empty at the end)."""
        self._finish_axis()
        self._flush()  # before the previous axis' datasets are let go
        self._axis = axis
        self._cols = [_Column(f, categories.get(f.name)) for f in schema]
        self._pos = 0

    def _index(self, n: int) -> npt.NDArray[Any]:
        # "0", "1", ... as get_anndata gives
        return np.arange(self._pos, self._pos + n).astype(str).astype(object)

    def _write_frame(self, columns: list[npt.NDArray[Any]], n: int) -> None:
        import pandas as pd
        from anndata.io import write_elem

        frame = pd.DataFrame(
            {c.field.name: c.series(v) for c, v in zip(self._cols, columns, strict=True)},
            index=pd.Index(self._index(n), dtype=object),
        )
        if not self._cols:
            frame = pd.DataFrame(index=pd.Index(self._index(n), dtype=object))
        write_elem(self.store, self._axis, frame, dataset_kwargs=self._kwargs)

    def write_rows(self, axis: str, table: pa.Table) -> None:
        """Append rows: index ``"<position>"`` and each column."""
        n = table.num_rows
        values = [c.values(table.column(c.field.name)) for c in self._cols]
        if self._pos == 0:
            self._write_frame(values, n)
        else:
            group = self.store[axis]
            _append(group[group.attrs["_index"]], self._index(n))
            for col, v in zip(self._cols, values, strict=True):
                name = col.field.name
                _append(group[f"{name}/codes"] if col.categories is not None else group[name], v)
        self._pos += n

    def _finish_axis(self) -> None:
        """An axis without rows is still written (its columns, empty)."""
        if self._axis and self._pos == 0:
            self._write_frame([np.zeros(0, dtype=c.dtype) for c in self._cols], 0)
        self._axis = ""
        self._cols = []

    # ------------------------------------------------------------------ X
    def begin_x(self, n_obs: int, n_vars: int, nnz_hint: int) -> None:
        """Prepare X (written with its first chunk)."""
        self._finish_axis()
        self._flush()  # a full disk fails here, not in the datasets' destructors
        self._n_obs = n_obs
        self._n_vars = n_vars
        self._rows = 0
        # anndata cannot widen a 32-bit indptr later: decide from the (upper-bound) estimate
        big = max(nnz_hint, n_vars) >= np.iinfo(np.int32).max
        self._index_dtype = np.int64 if big else np.int32

    def _csr(self, chunk: CsrChunk) -> sparse.csr_matrix:
        from scipy import sparse

        shape = (len(chunk.obs_joinids), self._n_vars)
        m = sparse.csr_matrix((chunk.data, chunk.indices, chunk.indptr), shape=shape)
        # scipy narrows index arrays that fit 32 bits; keep the width chosen for the file
        m.indices = chunk.indices.astype(self._index_dtype, copy=False)
        m.indptr = chunk.indptr.astype(self._index_dtype, copy=False)
        return m

    def write_x(self, chunk: CsrChunk) -> None:
        """Append a chunk of rows of X."""
        from anndata.io import sparse_dataset, write_elem

        m = self._csr(chunk)
        if not self._x_started:
            write_elem(self.store, "X", m, dataset_kwargs=_X_KWARGS)
            self._x_started = True
        else:
            sparse_dataset(self.store["X"]).append(m)
        self._rows += m.shape[0]

    def commit(self, meta: ExportInfo) -> None:
        """Check the row count, close, rename into place."""
        self._finish_axis()
        if not self._x_started:
            self.write_x(
                CsrChunk(
                    obs_joinids=np.zeros(0, np.int64),
                    var_joinids=np.zeros(0, np.int64),
                    indptr=np.zeros(1, np.int64),
                    indices=np.zeros(0, np.int32),
                    data=np.zeros(0, np.float32),
                )
            )
        if self._rows != self._n_obs:
            msg = f"internal error: X has {self._rows} rows written, expected {self._n_obs}"
            raise AssertionError(msg)
        self._close()
        _remove(self.path)
        self.tmp.rename(self.path)

    def _flush(self) -> None:
        """Write what h5py buffers, so that a write error (a full disk) is raised here and not
        later from a destructor, where it is lost and leaves the file broken."""
        flush = getattr(self.store, "flush", None)
        if flush is not None and hasattr(self.store, "id"):  # h5py.File
            flush()

    def _close(self) -> None:
        self._flush()
        close = getattr(self.store, "close", None)
        if close is not None:  # h5py.File (zarr groups need no closing)
            close()

    def _discard(self) -> None:
        """Close a partial output that is about to be deleted, without writing to it.

        After a write failed on a full disk, HDF5's close (which flushes its caches) fails too,
        and h5py then crashes the process (segmentation fault) while it frees the objects. So
        the file descriptor HDF5 writes to is first pointed at ``/dev/null``: the flush
        succeeds, nothing reaches the disk, and the file is deleted right after.
        """
        if hasattr(self.store, "id"):  # h5py.File
            with contextlib.suppress(Exception):
                fd = int(self.store.id.get_vfd_handle())
                null = os.open(os.devnull, os.O_RDWR)
                try:
                    os.dup2(null, fd)
                finally:
                    os.close(null)
        with contextlib.suppress(Exception):
            close = getattr(self.store, "close", None)
            if close is not None:
                close()

    def abort(self) -> None:
        """Close and delete the partial output."""
        try:
            self._discard()
        finally:
            _remove(self.tmp)


# ---------------------------------------------------------------------------- parquet
class ParquetWriter(ExportWriter):
    """Writes X as a long (COO) table plus ``obs`` / ``var`` side files.

    ``<stem>.parquet``: ``obs_soma_joinid`` int64, ``var_soma_joinid`` int64, ``value`` float32,
    one row per stored value, ordered by cell then gene; ``<stem>.obs.parquet`` and
    ``<stem>.var.parquet``: the selected rows with their ``soma_joinid`` (join keys);
    ``<stem>.export.json``: what was exported (format version, query, counts).
    """

    X_SCHEMA = pa.schema(
        [
            pa.field("obs_soma_joinid", pa.int64(), nullable=False),
            pa.field("var_soma_joinid", pa.int64(), nullable=False),
            pa.field("value", pa.float32(), nullable=False),
        ]
    )

    def __init__(self, path: Path) -> None:
        self.paths = parquet_paths(path)
        self.tmp = {k: p.with_name(f".{p.name}.partial") for k, p in self.paths.items()}
        for p in self.tmp.values():
            _remove(p)
        self._axis: pq.ParquetWriter | None = None
        self._x: pq.ParquetWriter | None = None

    def begin_axis(
        self, axis: str, n: int, schema: pa.Schema, categories: dict[str, list[str]]
    ) -> None:
        """Open the side file of ``axis``."""
        if self._axis is not None:
            self._axis.close()
        self._axis = pq.ParquetWriter(self.tmp[axis], schema, compression="zstd")

    def write_rows(self, axis: str, table: pa.Table) -> None:
        """Append rows to the side file."""
        assert self._axis is not None  # noqa: S101
        self._axis.write_table(table)

    def begin_x(self, n_obs: int, n_vars: int, nnz_hint: int) -> None:
        """Open the X table."""
        if self._axis is not None:
            self._axis.close()
            self._axis = None
        self._x = pq.ParquetWriter(self.tmp["X"], self.X_SCHEMA, compression="zstd")

    def write_x(self, chunk: CsrChunk) -> None:
        """Append a chunk as one row group of (obs joinid, var joinid, value)."""
        assert self._x is not None  # noqa: S101
        if len(chunk.data):
            obs = np.repeat(chunk.obs_joinids, np.diff(chunk.indptr))
            var = chunk.var_joinids[chunk.indices]
            self._x.write_table(pa.table([obs, var, chunk.data], schema=self.X_SCHEMA))

    def commit(self, meta: ExportInfo) -> None:
        """Close the files, write the metadata, rename into place."""
        if self._x is not None:
            self._x.close()
        if self._axis is not None:
            self._axis.close()
        self.tmp["meta"].write_bytes(meta.to_json())
        for key in ("obs", "var", "meta", "X"):
            _remove(self.paths[key])
            self.tmp[key].rename(self.paths[key])

    def abort(self) -> None:
        """Close and delete the partial files."""
        for w in (self._x, self._axis):
            if w is not None:
                with contextlib.suppress(Exception):  # best effort before deleting
                    w.close()
        for p in self.tmp.values():
            _remove(p)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def make_writer(path: Path, fmt: str) -> ExportWriter:
    """The writer for ``fmt``."""
    if fmt == "parquet":
        return ParquetWriter(path)
    return AnnDataWriter(path, fmt)
