"""Streaming writers of an export: ``.h5ad`` and ``.zarr`` (AnnData on-disk encoding), ``.parquet``.

Each writer receives, in order: the ``obs`` rows (Arrow tables, in ``soma_joinid`` order), the
``var`` rows, then the X values in row-major order as COO batches (global ``soma_joinid`` of
both axes and the value) together with the batch's row positions. Nothing is held beyond one
batch: h5ad/zarr append to growable arrays, parquet appends row groups.

AnnData encoding written (the one ``anndata`` 0.11 writes and reads): root ``anndata`` 0.1.0;
``obs``/``var`` ``dataframe`` 0.2.0 with ``_index`` (``"0"``, ``"1"``, ... as ``get_anndata``
gives), ``column-order``; dictionary columns as ``categorical`` 0.2.0 (``categories`` +
``codes``), text as ``string-array`` 0.2.0, numbers and booleans as ``array`` 0.2.0; ``X`` as
``csr_matrix`` 0.1.0 (float32 ``data``, int32/int64 ``indices``, int64 ``indptr``); empty
``obsm``, ``varm``, ``obsp``, ``varp``, ``layers``, ``uns`` (``dict`` 0.1.0).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from pathlib import Path

    import numpy.typing as npt

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
PARQUET_FORMAT_VERSION = 1
_CHUNK = 1 << 16
_EMPTY_DICTS = ("obsm", "varm", "obsp", "varp", "layers", "uns")


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
    def commit(self, meta: dict[str, Any]) -> None:
        """Finish, then move the result to its final name."""

    @abstractmethod
    def abort(self) -> None:
        """Remove everything written."""


# ---------------------------------------------------------------------------- AnnData sinks
class _Array(ABC):
    @abstractmethod
    def append(self, values: npt.NDArray[Any]) -> None: ...


class _Sink(ABC):
    @abstractmethod
    def attrs(self, path: str, attrs: dict[str, Any]) -> None: ...

    @abstractmethod
    def group(self, path: str, attrs: dict[str, Any]) -> None: ...

    @abstractmethod
    def array(self, path: str, dtype: Any, attrs: dict[str, Any]) -> _Array: ...  # noqa: ANN401

    @abstractmethod
    def close(self) -> None: ...

    def flush(self) -> None:  # noqa: B027 - optional: most sinks write through
        """Write what is buffered, so that a write error is raised here and not later from a
        destructor, where it is lost and leaves the writer broken (h5py)."""

    def discard(self) -> None:
        """Close a partial output that is about to be deleted (errors do not matter)."""
        with contextlib.suppress(Exception):
            self.close()


class _H5Array(_Array):
    def __init__(self, ds: Any) -> None:  # noqa: ANN401 - h5py.Dataset
        self.ds = ds

    def append(self, values: npt.NDArray[Any]) -> None:
        n = int(self.ds.shape[0])
        self.ds.resize((n + len(values),))
        self.ds[n:] = values


class _H5Sink(_Sink):
    def __init__(self, path: Path) -> None:
        import h5py

        self._h5py = h5py
        self.f = h5py.File(path, "w")

    def _conv(self, v: Any) -> Any:  # noqa: ANN401
        if isinstance(v, list):
            if all(isinstance(x, str) for x in v):
                return np.array(v, dtype=self._h5py.string_dtype())
            return np.array(v)
        return v

    def attrs(self, path: str, attrs: dict[str, Any]) -> None:
        node = self.f[path] if path else self.f
        for k, v in attrs.items():
            node.attrs[k] = self._conv(v)

    def group(self, path: str, attrs: dict[str, Any]) -> None:
        self.f.require_group(path)
        self.attrs(path, attrs)

    def array(self, path: str, dtype: Any, attrs: dict[str, Any]) -> _Array:  # noqa: ANN401
        is_str = dtype is str
        ds = self.f.create_dataset(
            path,
            shape=(0,),
            maxshape=(None,),
            chunks=(_CHUNK,),
            dtype=self._h5py.string_dtype() if is_str else dtype,
        )
        self.attrs(path, attrs)
        return _H5Array(ds)

    def close(self) -> None:
        self.f.close()

    def flush(self) -> None:
        self.f.flush()

    def discard(self) -> None:
        """Close a partial file that is about to be deleted, without writing to it.

        After a write failed on a full disk, HDF5's close (which flushes its caches) fails too,
        and h5py then crashes the process (segmentation fault) while it frees the objects. So
        the file descriptor HDF5 writes to is first pointed at ``/dev/null``: the flush
        succeeds, nothing reaches the disk, and the file is deleted right after.
        """
        with contextlib.suppress(Exception):
            fd = int(self.f.id.get_vfd_handle())
            null = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
        with contextlib.suppress(Exception):
            self.f.close()


class _ZarrArray(_Array):
    def __init__(self, arr: Any) -> None:  # noqa: ANN401 - zarr.Array
        self.arr = arr

    def append(self, values: npt.NDArray[Any]) -> None:
        if len(values):
            self.arr.append(values)


class _ZarrSink(_Sink):
    def __init__(self, path: Path) -> None:
        try:
            import zarr
        except ImportError as e:  # pragma: no cover - depends on the environment
            msg = "exporting to .zarr needs the 'zarr' package (version 2): pip install 'zarr<3'"
            raise BadInputError(msg) from e
        self.root = zarr.open_group(str(path), mode="w")

    def attrs(self, path: str, attrs: dict[str, Any]) -> None:
        node = self.root[path] if path else self.root
        node.attrs.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in attrs.items()})

    def group(self, path: str, attrs: dict[str, Any]) -> None:
        self.root.require_group(path)
        self.attrs(path, attrs)

    def array(self, path: str, dtype: Any, attrs: dict[str, Any]) -> _Array:  # noqa: ANN401
        if dtype is str:
            import numcodecs

            arr = self.root.create_dataset(
                path, shape=(0,), chunks=(_CHUNK,), dtype=object, object_codec=numcodecs.VLenUTF8()
            )
        else:
            arr = self.root.create_dataset(path, shape=(0,), chunks=(_CHUNK,), dtype=dtype)
        self.attrs(path, attrs)
        return _ZarrArray(arr)

    def close(self) -> None:
        store = getattr(self.root, "store", None)
        if store is not None and hasattr(store, "close"):
            store.close()


def _enc(kind: str, version: str = "0.2.0") -> dict[str, Any]:
    return {"encoding-type": kind, "encoding-version": version}


class _Column:
    """One obs/var column being written: converts Arrow chunks to the AnnData encoding."""

    def __init__(
        self, sink: _Sink, path: str, field: pa.Field, categories: list[str] | None
    ) -> None:
        self.field = field
        t = field.type
        if categories is not None:
            self.categories = categories
            self.lookup = {c: i for i, c in enumerate(categories)}
            ordered = bool(getattr(t, "ordered", False))
            sink.group(path, {**_enc("categorical"), "ordered": ordered})
            sink.array(f"{path}/categories", str, _enc("string-array")).append(
                np.array(categories, dtype=object)
            )
            n = len(categories)
            self.code_dtype: Any = np.int8 if n < 2**7 else np.int16 if n < 2**15 else np.int32
            self.out = sink.array(f"{path}/codes", self.code_dtype, _enc("array"))
            self.kind = "cat"
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            self.out = sink.array(path, str, _enc("string-array"))
            self.kind = "str"
        elif pa.types.is_boolean(t):
            self.out = sink.array(path, np.bool_, _enc("array"))
            self.kind = "num"
        elif pa.types.is_integer(t) or pa.types.is_floating(t):
            self.out = sink.array(path, t.to_pandas_dtype(), _enc("array"))
            self.kind = "num"
        else:
            msg = f"column {field.name!r} has type {t}, which export does not support"
            raise BadInputError(msg)

    def append(self, arr: pa.ChunkedArray | pa.Array) -> None:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if self.kind == "cat":
            self.out.append(self._codes(arr))
        elif self.kind == "str":
            self.out.append(np.array(arr.to_pylist(), dtype=object))
        else:
            self.out.append(arr.to_numpy(zero_copy_only=False))

    def _codes(self, arr: pa.Array) -> npt.NDArray[Any]:
        """Category codes without a Python object per row: map the (small) dictionary once."""
        if not pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_encode()
        dictionary = [str(v) for v in arr.dictionary.to_pylist()]
        unknown = [v for v in dictionary if v not in self.lookup]
        if unknown:
            msg = f"column {self.field.name!r}: values {unknown[:5]} are not in its enumeration"
            raise BadInputError(msg)
        mapping = np.array([self.lookup[v] for v in dictionary] + [-1], dtype=self.code_dtype)
        idx = arr.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False)
        codes: npt.NDArray[Any] = mapping[idx]
        return codes


class AnnDataWriter(ExportWriter):
    """Writes ``.h5ad`` (h5py) or ``.zarr`` (zarr v2) in AnnData's on-disk encoding."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.partial")
        self.fmt = fmt
        _remove(self.tmp)
        try:
            self.sink: _Sink = _H5Sink(self.tmp) if fmt == "h5ad" else _ZarrSink(self.tmp)
            self.sink.attrs("", _enc("anndata", "0.1.0"))
        except BaseException:
            _remove(self.tmp)  # a full or read-only disk: leave nothing behind
            raise
        self._cols: list[_Column] = []
        self._index: _Array | None = None
        self._pos = 0
        self._indptr: _Array | None = None
        self._data: _Array | None = None
        self._indices: _Array | None = None
        self._index_dtype: Any = np.int32
        self._n_obs = 0
        self._rows = 0
        self._written = 0

    def begin_axis(
        self, axis: str, n: int, schema: pa.Schema, categories: dict[str, list[str]]
    ) -> None:
        """Create the axis' dataframe group and its columns."""
        self.sink.flush()  # before the previous axis' columns are let go
        self._cols = []
        names = list(schema.names)
        self.sink.group(axis, {**_enc("dataframe"), "_index": "_index", "column-order": names})
        self._index = self.sink.array(f"{axis}/_index", str, _enc("string-array"))
        self._cols = [
            _Column(self.sink, f"{axis}/{f.name}", f, categories.get(f.name)) for f in schema
        ]
        self._pos = 0

    def write_rows(self, axis: str, table: pa.Table) -> None:
        """Append rows: index ``"<position>"`` and each column."""
        n = table.num_rows
        assert self._index is not None  # noqa: S101 - begin_axis was called
        self._index.append(np.arange(self._pos, self._pos + n).astype(str).astype(object))
        for col in self._cols:
            col.append(table.column(col.field.name))
        self._pos += n

    def begin_x(self, n_obs: int, n_vars: int, nnz_hint: int) -> None:
        """Create the CSR group."""
        self.sink.flush()  # a full disk fails here, not in the datasets' destructors
        self._cols = []  # let the column datasets (and their chunk caches) go
        self._index = None
        self.sink.group("X", {**_enc("csr_matrix", "0.1.0"), "shape": [n_obs, n_vars]})
        self._index_dtype = np.int32 if n_vars < 2**31 else np.int64
        self._data = self.sink.array("X/data", np.float32, {})
        self._indices = self.sink.array("X/indices", self._index_dtype, {})
        self._indptr = self.sink.array("X/indptr", np.int64, {})
        self._indptr.append(np.zeros(1, np.int64))
        self._n_obs = n_obs
        self._rows = 0
        self._written = 0

    def write_x(self, chunk: CsrChunk) -> None:
        """Append a chunk's values, column indices and row ends."""
        assert self._data is not None  # noqa: S101
        assert self._indices is not None  # noqa: S101
        assert self._indptr is not None  # noqa: S101
        self._data.append(chunk.data)
        self._indices.append(chunk.indices.astype(self._index_dtype, copy=False))
        self._indptr.append(self._written + chunk.indptr[1:].astype(np.int64, copy=False))
        self._written += int(chunk.indptr[-1])
        self._rows += len(chunk.obs_joinids)

    def commit(self, meta: dict[str, Any]) -> None:
        """Close the remaining rows, add the empty mappings, rename into place."""
        assert self._indptr is not None  # noqa: S101
        if self._rows != self._n_obs:
            msg = f"internal error: X has {self._rows} rows written, expected {self._n_obs}"
            raise AssertionError(msg)
        for name in _EMPTY_DICTS:
            self.sink.group(name, _enc("dict", "0.1.0"))
        self.sink.flush()
        self._data = self._indices = self._indptr = None
        self.sink.close()
        _remove(self.path)
        self.tmp.rename(self.path)

    def abort(self) -> None:
        """Close and delete the partial output."""
        try:
            self.sink.discard()
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

    def commit(self, meta: dict[str, Any]) -> None:
        """Close the files, write the metadata, rename into place."""
        if self._x is not None:
            self._x.close()
        if self._axis is not None:
            self._axis.close()
        doc = {"format": "cellcensus-parquet-export", "format_version": PARQUET_FORMAT_VERSION}
        doc.update(meta)
        self.tmp["meta"].write_text(json.dumps(doc, indent=2) + "\n")
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
