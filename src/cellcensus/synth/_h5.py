"""Streaming writers for the AnnData (H5AD) layout.

Matrices are written chunk by chunk, never whole, and every element is created by anndata's public
I/O (:func:`anndata.io.write_elem`), so the encoding is anndata's: CSR by writing the first chunk
with resizable datasets and appending the others (``sparse_dataset(...).append``); dense matrices
and embeddings by writing an empty resizable array whose rows are then filled block by block. CSC
cannot be appended by rows (anndata appends CSC matrices by columns), so anndata writes an empty
CSC element of the final shape whose ``data``/``indices`` are then grown to the final size and
filled in two passes (column counts first, then each chunk's entries scattered to their column
ranges). The small elements (obs, var, uns) go through :func:`~anndata.io.write_elem` as well.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import scipy.sparse as sp
from anndata.io import sparse_dataset, write_elem

if TYPE_CHECKING:
    from collections.abc import Mapping

    import h5py
    import numpy.typing as npt
    import pandas as pd

__all__ = [
    "COMPRESSION",
    "CscWriter",
    "CsrWriter",
    "DenseWriter",
    "EmbeddingWriter",
    "MatrixWriter",
    "vstack_csr",
    "write_element",
    "write_empty_dict",
    "write_file_header",
]

logger = logging.getLogger(__name__)

#: Filter settings of compressed datasets (gzip level 4, as ``anndata``'s ``compression="gzip"``).
COMPRESSION: Final[dict[str, Any]] = {"compression": "gzip", "compression_opts": 4}
_CHUNK_ELEMENTS: Final = 1 << 18  # elements per HDF5 chunk of 1-D sparse arrays
_CSC_BUFFER: Final = 1 << 22  # entries buffered before a CSC scatter (~50 MB with temporaries)


def vstack_csr(parts: list[sp.csr_matrix]) -> sp.csr_matrix:
    """Stack CSR row blocks (sorted indices kept).

    Parameters
    ----------
    parts
        Row blocks with the same number of columns.

    Returns
    -------
    scipy.sparse.csr_matrix
        The rows of all parts, in order.
    """
    indptr = [np.zeros(1, dtype=np.int64)]
    offset = 0
    for part in parts:
        indptr.append(part.indptr[1:].astype(np.int64) + offset)
        offset += part.nnz
    return sp.csr_matrix(
        (
            np.concatenate([p.data for p in parts]),
            np.concatenate([p.indices for p in parts]),
            np.concatenate(indptr),
        ),
        shape=(sum(p.shape[0] for p in parts), parts[0].shape[1]),
    )


def write_file_header(f: h5py.File) -> None:
    """Stamp the file-level AnnData encoding attributes.

    Parameters
    ----------
    f
        The open H5AD file.
    """
    f.attrs["encoding-type"] = "anndata"
    f.attrs["encoding-version"] = "0.1.0"


def write_empty_dict(parent: h5py.Group, name: str) -> None:
    """Create an empty AnnData ``dict`` group (``layers``, ``obsp``, ``varm``, ...).

    Parameters
    ----------
    parent
        Group to create it in.
    name
        Its name.
    """
    group = parent.create_group(name)
    group.attrs["encoding-type"] = "dict"
    group.attrs["encoding-version"] = "0.1.0"


def write_element(
    parent: h5py.Group, name: str, value: pd.DataFrame | dict[str, Any], *, compress: bool = True
) -> None:
    """Write a DataFrame, dict or array with anndata's element writer.

    Parameters
    ----------
    parent
        Group to write into.
    name
        Element name.
    value
        A DataFrame (obs, var) or a dict (uns).
    compress
        Apply :data:`COMPRESSION` to its datasets.
    """
    kwargs: Mapping[str, Any] = COMPRESSION if compress else {}
    write_elem(parent, name, value, dataset_kwargs=kwargs)


class MatrixWriter:
    """Interface of the chunked matrix writers: ``append`` rows in order, then ``close``."""

    def append(self, rows: sp.csr_matrix) -> None:
        """Write the next rows."""
        raise NotImplementedError

    def close(self) -> None:
        """Check that every row was written and finish the encoding."""
        raise NotImplementedError


def _csr(rows: sp.csr_matrix, n_cols: int) -> sp.csr_matrix:
    """float32 values, int32 column indices, int64 row pointers (as anndata writes them)."""
    out = sp.csr_matrix(
        (rows.data.astype(np.float32, copy=False), rows.indices.astype(np.int32, copy=False),
         rows.indptr.astype(np.int32, copy=False)),
        shape=(rows.shape[0], n_cols),
    )  # fmt: skip
    out.indptr = rows.indptr.astype(np.int64)  # 64-bit pointers: any number of stored values
    return out


class CsrWriter(MatrixWriter):
    """CSR matrix grown chunk by chunk: anndata writes the first chunk with resizable datasets,
    the others are appended with ``sparse_dataset(...).append``."""

    def __init__(self, parent: h5py.Group, name: str, shape: tuple[int, int]) -> None:
        self.parent, self.name, self.shape = parent, name, shape
        self.row = 0
        self.dataset: Any = None

    def append(self, rows: sp.csr_matrix) -> None:
        """Append rows (CSR with sorted indices)."""
        chunk = _csr(rows, self.shape[1])
        if self.dataset is None:
            # no maxshape: anndata makes a sparse matrix's HDF5 datasets growable itself (0.12
            # refuses a second maxshape)
            kwargs = {"chunks": (_CHUNK_ELEMENTS,), **COMPRESSION}
            write_elem(self.parent, self.name, chunk, dataset_kwargs=kwargs)
            self.dataset = sparse_dataset(self.parent[self.name])
        else:
            self.dataset.append(chunk)
        self.row += rows.shape[0]

    def close(self) -> None:
        """Check the row count (a matrix without rows is written empty here)."""
        if self.dataset is None:
            empty = sp.csr_matrix((0, self.shape[1]), dtype=np.float32)
            write_elem(self.parent, self.name, _csr(empty, self.shape[1]))
        if self.row != self.shape[0]:
            msg = f"wrote {self.row} rows of {self.shape[0]}"
            raise RuntimeError(msg)


class CscWriter(MatrixWriter):
    """CSC matrix filled from row chunks, given every column's non-zero count beforehand.

    ``data`` and ``indices`` have their final size and contiguous layout, so entries are written
    straight to their column ranges. Row chunks are buffered up to ``_CSC_BUFFER`` entries so each
    column gets one write per buffer, not one per chunk.
    """

    def __init__(
        self, parent: h5py.Group, name: str, shape: tuple[int, int], col_nnz: npt.NDArray[np.int64]
    ) -> None:
        self.shape = shape
        indptr = np.zeros(shape[1] + 1, dtype=np.int64)
        np.cumsum(col_nnz, out=indptr[1:])
        total = int(indptr[-1])
        # anndata writes the element (encoding, shape) from an empty matrix of the final shape with
        # resizable datasets; data/indices grow to the final size, indptr gets the real pointers
        empty = sp.csc_matrix(shape, dtype=np.float32)
        empty.indices = empty.indices.astype(np.int32)
        empty.indptr = np.zeros(shape[1] + 1, dtype=np.int64)
        kwargs = {"chunks": (_CHUNK_ELEMENTS,)}  # growable: anndata sets maxshape (see above)
        write_elem(parent, name, empty, dataset_kwargs=kwargs)
        group = parent[name]
        group["indptr"][:] = indptr
        self.data = group["data"]
        self.indices = group["indices"]
        self.data.resize((total,))
        self.indices.resize((total,))
        self.cursor = indptr[:-1].copy()
        self.end = indptr[1:].copy()
        self.row = 0  # rows written
        self.pending: list[sp.csr_matrix] = []
        self.pending_nnz = 0

    def append(self, rows: sp.csr_matrix) -> None:
        """Buffer the next rows; write the buffer to the columns when it is full."""
        self.pending.append(rows)
        self.pending_nnz += rows.nnz
        if self.pending_nnz >= _CSC_BUFFER:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        stacked = self.pending[0] if len(self.pending) == 1 else vstack_csr(self.pending)
        by_col = stacked.tocsc()
        by_col.sort_indices()
        counts = np.diff(by_col.indptr)
        if np.any(self.cursor + counts > self.end):
            msg = "more entries than counted in the first pass"
            raise RuntimeError(msg)
        data = by_col.data.astype(np.float32, copy=False)
        indices = (by_col.indices + self.row).astype(np.int32)
        for col in np.flatnonzero(counts):
            lo, hi = by_col.indptr[col], by_col.indptr[col + 1]
            at = self.cursor[col]
            self.data[at : at + hi - lo] = data[lo:hi]
            self.indices[at : at + hi - lo] = indices[lo:hi]
        self.cursor += counts
        self.row += stacked.shape[0]
        self.pending, self.pending_nnz = [], 0

    def close(self) -> None:
        """Write what is buffered and check that every row and entry was written."""
        self._flush()
        if self.row != self.shape[0] or np.any(self.cursor != self.end):
            msg = f"CSC incomplete: wrote {self.row} of {self.shape[0]} rows"
            raise RuntimeError(msg)


def _rows_dataset(
    parent: h5py.Group, name: str, shape: tuple[int, int], chunk_rows: int, *, compress: bool
) -> h5py.Dataset:
    """A float32 array element written by anndata with no rows and a resizable first axis."""
    kwargs: dict[str, Any] = {"maxshape": (None, shape[1]), "chunks": (chunk_rows, shape[1])}
    if compress:
        kwargs.update(COMPRESSION)
    write_elem(parent, name, np.zeros((0, shape[1]), dtype=np.float32), dataset_kwargs=kwargs)
    dataset: h5py.Dataset = parent[name]
    dataset.resize(shape[0], axis=0)
    return dataset


class DenseWriter(MatrixWriter):
    """Dense float32 matrix written by row blocks (at most 1,024 rows densified at a time)."""

    def __init__(self, parent: h5py.Group, name: str, shape: tuple[int, int]) -> None:
        self.shape = shape
        if shape[1]:
            rows_per_chunk = int(max(1, min(shape[0], _CHUNK_ELEMENTS // shape[1])))
            self.ds = _rows_dataset(parent, name, shape, rows_per_chunk, compress=True)
        else:
            write_elem(parent, name, np.zeros(shape, dtype=np.float32))
            self.ds = parent[name]
        self.row = 0

    def append(self, rows: sp.csr_matrix) -> None:
        """Write the next rows."""
        for lo in range(0, rows.shape[0], 1024):
            part = rows[lo : lo + 1024]
            self.ds[self.row + lo : self.row + lo + part.shape[0]] = part.toarray()
        self.row += rows.shape[0]

    def close(self) -> None:
        """Check the row count."""
        if self.row != self.shape[0]:
            msg = f"wrote {self.row} rows of {self.shape[0]}"
            raise RuntimeError(msg)


class EmbeddingWriter:
    """An ``obsm`` embedding (n_obs x k float32 array) written by row chunks."""

    def __init__(self, parent: h5py.Group, name: str, shape: tuple[int, int]) -> None:
        chunk_rows = max(1, min(shape[0], 1 << 16))
        self.ds = _rows_dataset(parent, name, shape, chunk_rows, compress=True)
        self.row = 0

    def append(self, values: npt.NDArray[np.float32]) -> None:
        """Write the next rows."""
        self.ds[self.row : self.row + len(values)] = values
        self.row += len(values)
