"""Per-cell statistics and the normalized layer, computed on CSR chunks of raw counts.

Definitions follow the Census schema (and the official builder's arithmetic, so values are equal
bit for bit): float64 accumulation, float32 results, normalized values rounded to 15 mantissa bits
with round-half-to-even and zeros replaced by the smallest positive float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from scipy import sparse

#: Mantissa bits kept in the normalized layer.
NORMALIZED_KEEPBITS = 15
_SMALLEST = np.finfo(np.float32).smallest_subnormal


@dataclass(frozen=True)
class ObsStats:
    """Per-cell statistics over raw counts (explicit zeros excluded)."""

    raw_sum: npt.NDArray[np.float64]
    nnz: npt.NDArray[np.int64]
    raw_mean_nnz: npt.NDArray[np.float64]
    raw_variance_nnz: npt.NDArray[np.float64]


def is_nonnegative_integral(values: npt.NDArray[np.floating] | npt.NDArray[np.integer]) -> bool:
    """True when every value is a non-negative whole number (NaN and -0.0 fail)."""
    if values.dtype.kind in "iu":
        return bool(values.dtype.kind == "u" or not (values < 0).any())
    if np.signbit(values).any():
        return False
    if values.size == 0:
        return True
    if not values.max() < np.inf:  # infinity, or NaN (which compares false)
        return False
    return bool(np.array_equal(np.rint(values), values))


def _csr_row_sums(
    values: npt.NDArray[np.float64], indptr: npt.NDArray[np.integer], n_rows: int
) -> npt.NDArray[np.float64]:
    """Per-row float64 sums of CSR-ordered values (exact in any order for whole numbers)."""
    has = np.diff(indptr) > 0
    out = np.zeros(n_rows, dtype=np.float64)
    if has.any():
        out[has] = np.add.reduceat(values, indptr[:-1][has])
    return out


def obs_stats(x: sparse.csr_matrix) -> ObsStats:
    """raw_sum, nnz, raw_mean_nnz and raw_variance_nnz (ddof 1, 0 when nnz < 2) of each row.

    The variance uses the shifted-data formula (shift = first stored value of the row), as the
    official builder does, so results match to the last bit.
    """
    n_rows = x.shape[0]
    indptr = x.indptr.astype(np.int64)
    nnz = np.diff(indptr)
    data = x.data.astype(np.float32).astype(np.float64)
    has = nnz > 0

    def row_sums(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return _csr_row_sums(values, indptr, n_rows)

    raw_sum = row_sums(data)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = raw_sum / nnz
    mean[~np.isfinite(mean)] = 0.0
    shift = np.zeros(n_rows, dtype=np.float64)
    shift[has] = data[indptr[:-1][has]]
    centered = data - np.repeat(shift, nnz)
    ex = row_sums(centered)
    ex2 = row_sums(centered * centered)
    var = np.zeros(n_rows, dtype=np.float64)
    many = nnz >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        var[many] = (ex2[many] - ex[many] ** 2 / nnz[many]) / (nnz[many] - 1)
    return ObsStats(
        raw_sum=raw_sum, nnz=nnz.astype(np.int64), raw_mean_nnz=mean, raw_variance_nnz=var
    )


def round_half_to_even(a: npt.NDArray[np.float32], keepbits: int) -> npt.NDArray[np.float32]:
    """Keep ``keepbits`` mantissa bits of float32 values, rounding half to even (in place)."""
    nmant = 23
    if keepbits < 1 or keepbits >= nmant:
        return a
    maskbits = nmant - keepbits
    mask = np.int32(((0xFFFFFFFF >> maskbits) << maskbits) - (1 << 32))
    half_quantum1 = np.int32((1 << (maskbits - 1)) - 1)
    b = a.view(np.int32)
    b += ((b >> maskbits) & 1) + half_quantum1
    b &= mask
    return a


def normalize(
    row: npt.NDArray[np.int64] | None,
    col: npt.NDArray[np.int64],
    data: npt.NDArray[np.float32],
    n_rows: int,
    *,
    full_gene_rows: npt.NDArray[np.bool_] | None,
    feature_length: npt.NDArray[np.int64] | None,
    indptr: npt.NDArray[np.integer] | None = None,
) -> npt.NDArray[np.float32]:
    """The normalized layer's values for COO raw counts of ``n_rows`` cells.

    Each value is divided by its cell's sum; for cells of full-length assays (``full_gene_rows``)
    values are first divided by the feature's length. ``indptr`` (values in CSR order) allows a
    faster path when no cell is of a full-length assay; with it, ``row`` may be None.
    """
    full = full_gene_rows is not None and bool(full_gene_rows.any())
    if indptr is not None and not full:
        # whole-number counts: the float64 row sums are exact in any summation order
        sums = _csr_row_sums(data.astype(np.float64), indptr, n_rows)
        out = (data / np.repeat(sums, np.diff(indptr))).astype(np.float32)
    else:
        if row is None:
            if indptr is None:
                msg = "normalize needs the values' rows or the CSR row pointer"
                raise ValueError(msg)
            row = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))
        values = data
        if full and full_gene_rows is not None:
            if feature_length is None:
                msg = "feature_length is required to normalize full-length assay cells"
                raise ValueError(msg)
            scaled = np.where(full_gene_rows[row], data / feature_length[col], data)
            values = scaled.astype(np.float32)
        row_sum = np.bincount(row, weights=values.astype(np.float64), minlength=n_rows)
        out = (values / row_sum[row]).astype(np.float32)
    round_half_to_even(out, NORMALIZED_KEEPBITS)
    out[out == 0] = _SMALLEST
    return out
