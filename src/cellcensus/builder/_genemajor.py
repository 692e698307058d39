"""Gene-major copies of X, written by the band tasks under the builder's memory bound.

A copy is a SOMA ``SparseNDArray`` with exactly the shape and coordinates of its X layer
(``soma_dim_0`` = obs ``soma_joinid``, ``soma_dim_1`` = var ``soma_joinid``, same values), stored
**column-major** with a tile extent of one gene: TileDB's global order is then (gene, cell), so the
values of one gene across all cells of a band are contiguous on disk, and a query for a few genes
reads only their data tiles instead of every tile of X. Readers see an ordinary array: the same
``read(coords=(cells, genes))`` returns the same cells (in another order).

How a band writes its fragment of the copy (one per band and layer, disjoint in the cell
dimension, at the band's timestamp like X):

1. For each chunk (already in X's global order), a stable counting sort by gene puts its values in
   (gene, cell) order; the chunk is appended to the band's spill directory as one *run* file
   (gene offsets, cell offsets, raw and normalized values: 12 bytes a value).
2. At the end of the band, genes are taken in order in batches of at most ``budget`` values (from
   the band's per-gene counts); each batch gathers its slice of every run, and a stable counting
   sort by gene interleaves them. Runs follow each other in cell order, so within a gene the
   cells stay ascending: the batch is in global order and is submitted to one global-order write
   per layer. A gene with more values in the band than ``budget`` is streamed run by run.

Memory: one chunk while spilling, one batch of ``budget`` values while writing — never the band.
"""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import numpy.typing as npt

from cellcensus.builder import _schema as S
from cellcensus.builder._compat import ArrayBatchWriter
from cellcensus.builder._runs import Run, write_run
from cellcensus.builder._xkernel import counting_order

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

logger = logging.getLogger(__name__)

#: Cell (``soma_dim_0``) tile extent of the copies. With a gene tile extent of 1 the global order
#: is (gene, cell) whatever this is; it only sets the space tiles TileDB reasons about.
CELL_TILE = 2048
#: Values per data tile (TileDB "capacity"). X holds 65,536; a copy is read a few genes at a
#: time, and a gene's values in a band rarely fill such a tile, so a read decoded mostly other
#: genes' values. 8,192 read 1-100 genes across all cells of a 1 M-cell release 1.6-4.2x faster
#: for +1.4 % size (RESULTS.md, "Third pass"); the price is 8x the tiles, whose bounding
#: rectangles and offsets (about 60 bytes a tile) a handle's first read loads for every fragment.
CAPACITY = 2**13


def platform_config(layer: str, compression: str = "fast") -> dict[str, Any]:
    """TileDB settings of a gene-major copy: column-major, gene tile extent 1, zstd.

    Cell coordinates ascend within a gene, so they are delta-encoded before compression; the
    gene coordinate is constant over long runs.
    """
    level = S.FAST_ZSTD_LEVEL if compression == "fast" else 9
    zstd: dict[str, Any] = {"_type": "ZstdFilter", "level": level}
    data_filters: list[Any] = (
        ["ByteShuffleFilter", zstd]
        if layer == "raw"
        else [{"_type": "ZstdFilter", "level": S.FAST_ZSTD_LEVEL if compression == "fast" else 13}]
    )
    return {
        "tiledb": {
            "create": {
                "capacity": CAPACITY,
                "dims": {
                    "soma_dim_0": {
                        "tile": CELL_TILE,
                        "filters": [{"_type": "DeltaFilter"}, "ByteShuffleFilter", zstd],
                    },
                    "soma_dim_1": {"tile": 1, "filters": [zstd]},
                },
                "attrs": {"soma_data": {"filters": data_filters}},
                "cell_order": "col-major",
                "tile_order": "col-major",
                "allows_duplicates": S.ALLOWS_DUPLICATES,
            }
        }
    }


@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _by_gene(
    cols: npt.NDArray[np.int64], n_genes: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Stable counting sort by gene: the permutation, and each gene's offsets (``n_genes + 1``)."""
    order = np.empty(cols.shape[0], np.int64)
    indptr = counting_order(cols, n_genes, order)
    return order, indptr


def gene_order(
    cols: npt.NDArray[np.integer[Any]], n_genes: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Stable permutation of values by gene (``0 <= cols < n_genes``), and the gene offsets.

    Values given in X's global order (row band, column tile, row, column) come out in
    (gene, cell) order: for a fixed gene, X's order already has the cells ascending.
    """
    result: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] = _by_gene(
        np.ascontiguousarray(cols, dtype=np.int64), int(n_genes)
    )
    return result


@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _interleave(
    counts: npt.NDArray[np.int64],
    cells: npt.NDArray[np.int32],
    g0: int,
    joinid_start: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Merge runs' slices of genes ``[g0, g0 + counts.shape[1])`` into (gene, cell) order.

    ``cells`` holds the runs' slices one after the other, each gene-sorted; ``counts[r, g]`` is
    run ``r``'s number of values of gene ``g0 + g``. Runs follow each other in cell order, so
    taking, gene by gene, each run's values in run order keeps the cells ascending. Returns the
    source position of each output value, its row (``joinid_start`` + cell offset) and gene.
    """
    n_runs, n_g = counts.shape
    n = cells.shape[0]
    at = np.empty(n_runs, np.int64)
    s = 0
    for r in range(n_runs):
        at[r] = s
        for g in range(n_g):
            s += counts[r, g]
    order = np.empty(n, np.int64)
    rows = np.empty(n, np.int64)
    cols = np.empty(n, np.int64)
    k = 0
    for g in range(n_g):
        for r in range(n_runs):
            p = at[r]
            for j in range(p, p + counts[r, g]):
                order[k] = j
                rows[k] = cells[j] + joinid_start
                cols[k] = g0 + g
                k += 1
            at[r] = p + counts[r, g]
    return order, rows, cols


@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _check(
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    shape: tuple[int, int],
    previous: tuple[int, int],
) -> bool:
    n_rows, n_cols = shape
    r0, c0 = previous
    for i in range(rows.shape[0]):
        r, c = rows[i], cols[i]
        if r < 0 or c < 0 or r >= n_rows or c >= n_cols:
            return False
        if r0 >= 0 and not (c0 < c or (c0 == c and r0 < r)):
            return False
        r0, c0 = r, c
    return True


def in_gene_major_order(
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    shape: tuple[int, int],
    previous: tuple[int, int] | None = None,
) -> bool:
    """Whether cells are in bounds and strictly increasing in (gene, cell) order.

    ``previous`` is the last (row, column) of an earlier submit of the same write.
    """
    ok: bool = _check(
        np.ascontiguousarray(rows, dtype=np.int64),
        np.ascontiguousarray(cols, dtype=np.int64),
        (int(shape[0]), int(shape[1])),
        (int(previous[0]), int(previous[1])) if previous is not None else (-1, -1),
    )
    return ok


class GeneMajorSpill:
    """The gene-major copy of one band: spilled chunk by chunk, written at the end.

    Parameters
    ----------
    spill_dir
        The band's own work directory (removed by :meth:`remove`).
    shape
        (cells, genes) of the experiment.
    joinid_start
        First cell (obs ``soma_joinid``) of the band.
    budget
        Values held at once while writing (the build's ``chunk_nnz``).
    copies
        (X layer, URI) of each copy written: only those layers' values are spilled.
    """

    def __init__(
        self,
        spill_dir: Path,
        shape: tuple[int, int],
        joinid_start: int,
        budget: int,
        copies: Sequence[tuple[str, str]],
    ) -> None:
        self.dir = spill_dir
        self.layers = tuple(layer for layer, _ in copies)
        self.uris = tuple(uri for _, uri in copies)
        self.shape = shape
        self.n_genes = int(shape[1])
        self.joinid_start = joinid_start
        self.budget = max(int(budget), 1)
        self.totals = np.zeros(self.n_genes, dtype=np.int64)
        self.runs: list[Run] = []
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)

    def add(
        self,
        rows: npt.NDArray[np.int64],
        cols: npt.NDArray[np.int64],
        values: Mapping[str, npt.NDArray[np.float32]],
    ) -> None:
        """Spill one chunk's cells (in X's global order; after every cell added before).

        ``values``: each X layer's values of the cells (those of :attr:`layers` are kept).
        """
        n = len(rows)
        if n == 0:
            return
        order, indptr = gene_order(cols, self.n_genes)
        offsets = rows[order] - self.joinid_start
        if int(offsets.max()) >= 2**31:  # pragma: no cover - a band of 2 billion cells
            msg = "internal error: a band holds more than 2**31 cells"
            raise AssertionError(msg)
        columns = [
            offsets.astype(np.int32),
            *(values[layer][order].astype(np.float32, copy=False) for layer in self.layers),
        ]
        path = self.dir / f"run-{len(self.runs):06d}.bin"
        write_run(path, indptr, columns)
        self.runs.append(Run.of(path, self.n_genes, n, columns))
        self.totals += np.diff(indptr)

    def batches(self) -> Iterator[tuple[int, int]]:
        """Gene ranges of at most ``budget`` values (a single gene may hold more)."""
        g = 0
        cum = np.cumsum(self.totals)
        while g < self.n_genes:
            base = int(cum[g - 1]) if g else 0
            stop = int(np.searchsorted(cum, base + self.budget, side="right"))
            stop = max(stop, g + 1)
            yield g, stop
            g = stop

    def _pieces(
        self, g0: int, g1: int
    ) -> Iterator[
        tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[npt.NDArray[np.float32]]]
    ]:
        """The cells of genes ``[g0, g1)`` in (gene, cell) order, in pieces of bounded size:
        rows, columns, and the values of each of :attr:`layers`."""
        single = g1 - g0 == 1 and int(self.totals[g0]) > self.budget
        cells: list[npt.NDArray[np.int32]] = []
        counts_of: list[npt.NDArray[np.int64]] = []
        values: list[list[npt.NDArray[np.float32]]] = [[] for _ in self.layers]
        for run in self.runs:
            counts, (c, *vs) = run.read(g0, g1)
            if not len(c):
                continue
            if single:  # one gene larger than the budget: runs are already in cell order
                for k in range(0, len(c), self.budget):
                    part = slice(k, k + self.budget)
                    yield (
                        c[part].astype(np.int64) + self.joinid_start,
                        np.full(len(c[part]), g0, dtype=np.int64),
                        [v[part] for v in vs],
                    )
                continue
            cells.append(c)
            counts_of.append(counts)
            for kept, v in zip(values, vs, strict=True):
                kept.append(v)
        if not cells:
            return
        order, rows, cols = _interleave(
            np.stack(counts_of),
            np.concatenate(cells) if len(cells) > 1 else cells[0],
            g0,
            self.joinid_start,
        )
        if len(cells) == 1:  # one run holds these genes: already in (gene, cell) order
            yield rows, cols, [v[0] for v in values]
        else:
            yield rows, cols, [np.concatenate(v)[order] for v in values]

    def write(self, timestamp: int) -> int:
        """Write the band's fragment of each copy; returns the values written."""
        writers = [ArrayBatchWriter(uri, timestamp) for uri in self.uris]
        last: tuple[int, int] | None = None
        written = 0
        committed = False
        try:
            for g0, g1 in self.batches():
                for rows, cols, layer_values in self._pieces(g0, g1):
                    if not in_gene_major_order(rows, cols, self.shape, last):
                        msg = "internal error: gene-major cells out of bounds or out of order"
                        raise AssertionError(msg)
                    last = (int(rows[-1]), int(cols[-1]))
                    for writer, values in zip(writers, layer_values, strict=True):
                        writer.submit(rows, cols, values)
                    written += len(rows)
            committed = True
        finally:
            for w in writers:
                w.close(commit=committed)
        if written != int(self.totals.sum()):  # pragma: no cover - an internal invariant
            msg = f"internal error: wrote {written} of {int(self.totals.sum())} gene-major values"
            raise AssertionError(msg)
        return written

    def remove(self) -> None:
        """Delete the spill."""
        shutil.rmtree(self.dir, ignore_errors=True)
