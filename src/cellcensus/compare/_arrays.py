"""Compare two SOMA N-d arrays: shape, value type, and every stored coordinate and value.

Sparse arrays (X layers, the presence matrix) are read in blocks of ``soma_dim_0`` so that a block
holds about ``block_values`` stored values of each build; the block length adapts to the density
met so far. Dense arrays (image levels) are read in slabs of at most ``block_values`` elements.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from cellcensus.compare._values import unequal_numpy

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cellcensus.compare._report import CompareOptions, ObjectResult

__all__ = ["compare_dense", "compare_sparse"]

_INT64_MAX = np.iinfo(np.int64).max


def _compare_header(
    a: Any,  # noqa: ANN401 - tiledbsoma NDArray
    b: Any,  # noqa: ANN401
    res: ObjectResult,
    opts: CompareOptions,
) -> bool:
    """Shape and value type; False when the arrays cannot be compared element-wise."""
    lim = opts.max_differences
    ta, tb = a.schema.field("soma_data").type, b.schema.field("soma_data").type
    if ta != tb:
        res.add("arrow-type", f"soma_data: A {ta}, B {tb}", limit=lim)
    if tuple(a.shape) != tuple(b.shape):
        res.add("shape", f"shape: A {tuple(a.shape)}, B {tuple(b.shape)}", limit=lim)
    if len(a.shape) != len(b.shape):
        return False
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
    return ta == tb or (any(k(ta) for k in numeric) and any(k(tb) for k in numeric))


def _row_range(a: Any, b: Any) -> tuple[int, int] | None:  # noqa: ANN401
    spans = []
    for arr in (a, b):
        if arr.nnz:
            (lo, hi), *_ = arr.non_empty_domain()
            spans.append((int(lo), int(hi)))
    if not spans:
        return None
    return min(s[0] for s in spans), max(s[1] for s in spans)


def _keys(coords: list[npt.NDArray[np.int64]], dims: tuple[int, ...]) -> npt.NDArray[Any]:
    """One sortable key per stored cell: the flat index, or a record when that would overflow."""
    if math.prod(max(d, 1) for d in dims) < _INT64_MAX:
        return np.ravel_multi_index(tuple(coords), dims).astype(np.int64, copy=False)
    rec = np.empty(len(coords[0]), dtype=[(f"d{i}", np.int64) for i in range(len(coords))])
    for i, c in enumerate(coords):
        rec[f"d{i}"] = c
    return rec


def _unkey(key: Any, dims: tuple[int, ...]) -> tuple[int, ...]:  # noqa: ANN401
    if isinstance(key, np.void):
        return tuple(int(v) for v in key.tolist())
    return tuple(int(v) for v in np.unravel_index(int(key), dims))


def _read_sparse(arr: Any, lo: int, hi: int, ndim: int) -> tuple[list[Any], Any]:  # noqa: ANN401
    table: pa.Table = arr.read(coords=(slice(lo, hi),)).tables().concat()
    coords = [table[f"soma_dim_{i}"].to_numpy() for i in range(ndim)]
    return coords, table["soma_data"].to_numpy()


def _sorted(keys: Any, values: Any) -> tuple[Any, Any]:  # noqa: ANN401
    order = np.argsort(keys, kind="stable")
    return keys[order], values[order]


def compare_sparse(
    a: Any,  # noqa: ANN401 - tiledbsoma SparseNDArray
    b: Any,  # noqa: ANN401
    res: ObjectResult,
    opts: CompareOptions,
) -> None:
    """Compare two open sparse arrays into ``res``, block by block of the first dimension."""
    res.unit = "values"
    if not _compare_header(a, b, res, opts):
        return
    ndim = len(a.shape)
    dims = tuple(max(int(x), int(y)) for x, y in zip(a.shape, b.shape, strict=True))
    span = _row_range(a, b)
    if span is None:
        return
    lo, hi = span
    per_row = max(a.nnz, b.nnz) / max(1, hi - lo + 1)
    rows = max(1, int(opts.block_values / max(per_row, 1.0)))
    lim = opts.max_differences
    start = lo
    while start <= hi:
        end = min(hi, start + rows - 1)
        ca, va = _read_sparse(a, start, end, ndim)
        cb, vb = _read_sparse(b, start, end, ndim)
        ka, va = _sorted(_keys(ca, dims), va)
        kb, vb = _sorted(_keys(cb, dims), vb)
        for side, k in (("A", ka), ("B", kb)):
            dup = int(np.count_nonzero(k[1:] == k[:-1]))  # keys are sorted
            if dup:
                res.add("coordinates", f"{dup} duplicate coordinate(s) in {side}", limit=lim)
        if ka.shape == kb.shape and np.array_equal(ka, kb):
            both_a, both_b, shared = va, vb, ka
        else:
            shared, ia, ib = np.intersect1d(ka, kb, return_indices=True)
            for side, k, other in (("A", ka, kb), ("B", kb, ka)):
                only = np.setdiff1d(k, other)
                res.add_examples(
                    "coordinates",
                    len(only),
                    (f"{_unkey(key, dims)} stored only in {side}" for key in only),
                    limit=lim,
                )
            both_a, both_b = va[ia], vb[ib]
        mask = unequal_numpy(both_a, both_b, opts.rtol)
        bad = np.flatnonzero(mask)
        res.add_examples(
            "data",
            len(bad),
            (f"{_unkey(shared[i], dims)}: A {both_a[i]!r}, B {both_b[i]!r}" for i in bad),
            limit=lim,
        )
        res.compared += len(shared)
        # adapt the block length to the density met, so a block holds ~block_values values
        got = max(len(ka), len(kb))
        if got:
            rows = max(1, min(rows * 4, int(rows * opts.block_values / got)))
        start = end + 1


def _slabs(shape: tuple[int, ...], budget: int) -> Iterator[tuple[slice, ...]]:
    """Boxes tiling ``shape`` in C order, each at most ``budget`` elements (≥ 1 along each axis)."""
    if not shape:
        return
    if len(shape) == 1 or math.prod(shape[1:]) <= budget:
        step = max(1, budget // max(1, math.prod(shape[1:])))
        for i in range(0, shape[0], step):
            yield (slice(i, min(shape[0], i + step) - 1),)
        return
    for i in range(shape[0]):
        for rest in _slabs(shape[1:], budget):
            yield (slice(i, i), *rest)


def compare_dense(
    a: Any,  # noqa: ANN401 - tiledbsoma DenseNDArray
    b: Any,  # noqa: ANN401
    res: ObjectResult,
    opts: CompareOptions,
) -> None:
    """Compare two open dense arrays (shape, type, every element) into ``res``."""
    res.unit = "elements"
    if not _compare_header(a, b, res, opts) or tuple(a.shape) != tuple(b.shape):
        return
    lim = opts.max_differences
    for box in _slabs(tuple(int(s) for s in a.shape), opts.block_values):
        xa = np.asarray(a.read(coords=box).to_numpy()).ravel()
        xb = np.asarray(b.read(coords=box).to_numpy()).ravel()
        bad = np.flatnonzero(unequal_numpy(xa, xb, opts.rtol))
        res.add_examples(
            "data",
            len(bad),
            (
                f"element {int(i)} of block {[(s.start, s.stop) for s in box]}: "
                f"A {xa[i]!r}, B {xb[i]!r}"
                for i in bad
            ),
            limit=lim,
        )
        res.compared += len(xa)
