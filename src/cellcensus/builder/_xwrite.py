"""Write the X layers of one experiment, each as a single TileDB fragment, in global order.

The X tasks (``_xtask``) leave each row chunk's cells in the work directory, already sorted into
the arrays' global order. One writer per experiment streams those chunks, in joinid order, into one
TileDB global-order write query per layer (raw and normalized share the coordinates) with a submit
per chunk, so each array ends with exactly one fragment and needs no consolidation rewrite (which
otherwise costs about 40 % of the write time).

Chunks do not start and end on tile boundaries: the cells of a band of ``X_TILE`` rows can span two
or more chunks (or datasets). The writer therefore holds back each chunk's last band and merges it
with the start of the next chunk before submitting. Memory is one chunk plus one band.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cellcensus.builder import _schema as S
from cellcensus.builder._xkernel import in_strict_global_order

_DIMS = ("soma_dim_0", "soma_dim_1")


@dataclass(frozen=True)
class XWriteTask:
    """Write the ``layers`` below the X collection ``x_uri`` from the chunk files, in this order."""

    x_uri: str
    layers: tuple[str, ...]
    chunk_stems: tuple[str, ...]
    n_values: int
    shape: tuple[int, int]  # (cells, features) of the experiment


def save_chunk(
    stem: str,
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    layers: dict[str, npt.NDArray[np.float32]],
) -> None:
    """Store a chunk's cells (in global order) for the layer writers; int32 coords if they fit."""
    Path(stem).parent.mkdir(parents=True, exist_ok=True)
    for name, coords in (("rows", rows), ("cols", cols)):
        small = len(coords) == 0 or int(coords.max()) < np.iinfo(np.int32).max
        np.save(f"{stem}.{name}.npy", coords.astype(np.int32) if small else coords)
    for name, values in layers.items():
        np.save(f"{stem}.{name}.npy", values.astype(np.float32, copy=False))


#: rows, columns, and the values of each layer
_Cells = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], tuple[npt.NDArray[np.float32], ...]]


def _load(stem: str, layers: tuple[str, ...]) -> _Cells:
    rows = np.load(f"{stem}.rows.npy").astype(np.int64, copy=False)
    cols = np.load(f"{stem}.cols.npy").astype(np.int64, copy=False)
    return rows, cols, tuple(np.load(f"{stem}.{layer}.npy") for layer in layers)


def _cut(cells: _Cells, start: int, stop: int | None = None) -> _Cells:
    rows, cols, values = cells
    return rows[start:stop], cols[start:stop], tuple(v[start:stop] for v in values)


def _copy(cells: _Cells) -> _Cells:
    rows, cols, values = cells
    return rows.copy(), cols.copy(), tuple(v.copy() for v in values)


def _merge_band(a: _Cells, b: _Cells) -> _Cells:
    """Merge two global-ordered runs of one row band, all rows of ``a`` before those of ``b``.

    Within a band the global order is (column tile, row, column); both runs already follow it and
    every row of ``a`` precedes every row of ``b``, so a stable sort on the column tile suffices.
    """
    cols = np.concatenate([a[1], b[1]])
    tile = cols // S.X_TILE
    order = np.argsort(tile.astype(np.int16) if int(tile.max()) < 2**15 else tile, kind="stable")
    rows = np.concatenate([a[0], b[0]])[order]
    values = tuple(np.concatenate([x, y])[order] for x, y in zip(a[2], b[2], strict=True))
    return rows, cols[order], values


def clear_fragments(array_uri: str) -> None:
    """Remove every fragment (committed, or half-written by a killed writer) of a local array."""
    root = Path(array_uri.removeprefix("file://"))
    if "://" in str(root):  # pragma: no cover - builds are staged on a local filesystem
        msg = f"internal error: X arrays are written to a local staging directory, not {array_uri}"
        raise AssertionError(msg)
    for sub in ("__fragments", "__commits", "__fragment_meta"):
        d = root / sub
        if d.is_dir():
            shutil.rmtree(d)
            d.mkdir()


#: TileDB's own per-cell checks of a write (bounds, duplicates, global order) cost about 70 % of
#: its time; the writer checks the same properties itself in one compiled pass instead.
_UNCHECKED = {
    "sm.check_coord_dups": "false",
    "sm.check_coord_oob": "false",
    "sm.check_global_order": "false",
}


class _OrderCheck:
    """Every submitted cell in bounds, and strictly after the previous one in global order."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.last: tuple[int, int] | None = None

    def __call__(self, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]) -> None:
        if len(rows) == 0:
            return
        if not in_strict_global_order(rows, cols, self.shape, S.X_TILE, self.last):
            msg = "internal error: X cells out of bounds or not in strict global order"
            raise AssertionError(msg)
        self.last = (int(rows[-1]), int(cols[-1]))


class _GlobalOrderWriter:
    """One TileDB global-order write query per layer, fed by successive submits."""

    def __init__(self, arrays: list[Any], check: _OrderCheck) -> None:
        import tiledb.libtiledb as lt

        self._queries = []
        for array in arrays:
            query = lt.Query(lt.Context(array.ctx), array.array, lt.QueryType.WRITE)
            query.layout = lt.LayoutType.GLOBAL_ORDER
            self._queries.append(query)
        self._check = check
        self.submitted = 0

    def submit(self, cells: _Cells) -> None:
        n = len(cells[0])
        if n == 0:
            return
        rows = np.ascontiguousarray(cells[0], dtype=np.int64)
        cols = np.ascontiguousarray(cells[1], dtype=np.int64)
        self._check(rows, cols)
        for query, values in zip(self._queries, cells[2], strict=True):
            buffers = (rows, cols, np.ascontiguousarray(values, dtype=np.float32))
            for name, buf in zip((*_DIMS, "soma_data"), buffers, strict=True):
                query.set_data_buffer(name, buf, np.uint64(n))
            # tiledb-py's own (pybind) query: its public API has no multi-submit global-order
            # writes
            query._submit()
        self.submitted += n

    def finalize(self) -> None:
        if self.submitted:
            for query in self._queries:
                query.finalize()


def write_layers(task: XWriteTask) -> str:
    """Write the layers from the chunk files, one fragment each (idempotent: replaces earlier)."""
    import tiledb

    uris = [f"{task.x_uri}/{layer}" for layer in task.layers]
    for uri in uris:
        clear_fragments(uri)
    carry: _Cells | None = None  # the last, possibly incomplete, row band seen so far
    check = _OrderCheck(task.shape)
    ctx = tiledb.Ctx(_UNCHECKED)
    with contextlib.ExitStack() as stack:
        arrays = [stack.enter_context(tiledb.open(uri, "w", ctx=ctx)) for uri in uris]
        writer = _GlobalOrderWriter(arrays, check)
        for stem in task.chunk_stems:
            cells = _load(stem, task.layers)
            if len(cells[0]) == 0:
                continue
            band = cells[0] // S.X_TILE
            if carry is not None:
                if int(carry[0][0]) // S.X_TILE == int(band[0]):
                    head = int(np.searchsorted(band, band[0], side="right"))
                    merged = _merge_band(carry, _cut(cells, 0, head))
                    if head == len(band):
                        carry = merged
                        continue
                    writer.submit(merged)
                    cells, band = _cut(cells, head), band[head:]
                else:
                    writer.submit(carry)
            tail = int(np.searchsorted(band, band[-1], side="left"))
            writer.submit(_cut(cells, 0, tail))
            carry = _copy(_cut(cells, tail))
        if carry is not None:
            writer.submit(carry)
        writer.finalize()
    if writer.submitted != task.n_values:  # pragma: no cover - an internal invariant
        msg = f"internal error: wrote {writer.submitted} of {task.n_values} values to {task.x_uri}"
        raise AssertionError(msg)
    return task.x_uri
