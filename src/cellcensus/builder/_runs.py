"""Gene-sorted runs spilled to a build's ``_work``: write once, read back gene range by range.

A run is one binary file: the gene offsets (``n_genes + 1`` int64, like a CSC ``indptr``), then
each column of the run's rows in turn (fixed-width numpy dtypes; a column may have several values
a row). Reading genes ``[g0, g1)`` reads two offsets and one contiguous slice of each column, so a
band or the driver can gather a gene range from many runs with a few small reads each, holding
nothing but the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


def write_run(
    path: Path, indptr: npt.NDArray[np.int64], columns: Sequence[npt.NDArray[Any]]
) -> None:
    """Write a run: gene offsets, then every column (rows in the offsets' order)."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        np.ascontiguousarray(indptr, dtype=np.int64).tofile(f)
        for col in columns:
            np.ascontiguousarray(col).tofile(f)
    tmp.replace(path)


@dataclass(frozen=True)
class Run:
    """A run file and its layout."""

    path: Path
    n_genes: int
    n_rows: int
    dtypes: tuple[np.dtype[Any], ...]
    widths: tuple[int, ...]  # values per row of each column

    @classmethod
    def of(cls, path: Path, n_genes: int, n_rows: int, columns: Sequence[npt.NDArray[Any]]) -> Run:
        """The layout of a run written from ``columns``."""
        return cls(
            path,
            n_genes,
            n_rows,
            tuple(c.dtype for c in columns),
            tuple(1 if c.ndim == 1 else int(c.shape[1]) for c in columns),
        )

    def offsets(self) -> npt.NDArray[np.int64]:
        """All gene offsets (``n_genes + 1``)."""
        return np.fromfile(self.path, dtype=np.int64, count=self.n_genes + 1)

    def read(self, g0: int, g1: int) -> tuple[npt.NDArray[np.int64], list[npt.NDArray[Any]]]:
        """Rows of genes ``[g0, g1)``: each gene's row count, and the columns' slices."""
        with self.path.open("rb") as f:
            f.seek(8 * g0)
            ptr = np.fromfile(f, dtype=np.int64, count=g1 - g0 + 1)
            a, b = int(ptr[0]), int(ptr[-1])
            out: list[npt.NDArray[Any]] = []
            base = 8 * (self.n_genes + 1)
            for dtype, width in zip(self.dtypes, self.widths, strict=True):
                row_bytes = dtype.itemsize * width
                if b > a:
                    f.seek(base + row_bytes * a)
                    col = np.fromfile(f, dtype=dtype, count=(b - a) * width)
                else:
                    col = np.zeros(0, dtype=dtype)
                out.append(col.reshape(-1, width) if width > 1 else col)
                base += row_bytes * self.n_rows
        return np.diff(ptr), out
