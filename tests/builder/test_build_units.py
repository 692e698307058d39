"""Unit checks of the builder's arithmetic and write order."""

from __future__ import annotations

import numpy as np
import pytest

from cellcensus.build._xmath import normalize, obs_stats, round_half_to_even
from cellcensus.build._xtask import global_order


@pytest.mark.parametrize("n_cols", [100, 2048, 5000])
def test_global_order_fast_path_equals_full_sort(n_cols: int) -> None:
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(3000, 7500), 20).astype(np.int64)
    cols = np.concatenate(
        [np.sort(rng.choice(n_cols, 20, replace=False)) for _ in range(4500)]
    ).astype(np.int64)
    fast = global_order(rows, cols, columns_sorted_within_rows=True)
    full = global_order(rows, cols)
    np.testing.assert_array_equal(fast, full)
    r, c = rows[full], cols[full]
    key = list(zip(r // 2048, c // 2048, r, c, strict=True))
    assert key == sorted(key)


def test_round_half_to_even_keeps_15_bits() -> None:
    a = np.array([1.0, 1 / 3, 0.1, 2**-30, 0.0], dtype=np.float32)
    out = round_half_to_even(a.copy(), 15)
    bits = out.view(np.int32) & ((1 << 8) - 1)
    assert (bits == 0).all()
    np.testing.assert_allclose(out, a, rtol=2**-15)
    # exact halves round to even
    half = np.array([1 + 2**-16], dtype=np.float32)  # halfway between two 15-bit values
    assert round_half_to_even(half.copy(), 15)[0] == np.float32(1.0)


def test_normalize_and_stats_follow_their_definitions() -> None:
    row = np.array([0, 0, 0, 1, 1], dtype=np.int64)
    col = np.array([0, 1, 2, 0, 2], dtype=np.int64)
    data = np.array([1, 2, 5, 3, 1], dtype=np.float32)
    norm = normalize(row, col, data, 2, full_gene_rows=None, feature_length=None)
    np.testing.assert_allclose(norm, [1 / 8, 2 / 8, 5 / 8, 3 / 4, 1 / 4], rtol=2**-14)
    lengths = np.array([10, 100, 1000], dtype=np.int64)
    full = normalize(
        row, col, data, 2, full_gene_rows=np.array([True, False]), feature_length=lengths
    )
    scaled = np.array([0.1, 0.02, 0.005])
    np.testing.assert_allclose(full[:3], scaled / scaled.sum(), rtol=2**-14)
    from scipy import sparse

    stats = obs_stats(sparse.csr_matrix((data, (row, col)), shape=(3, 3)))
    np.testing.assert_array_equal(stats.nnz, [3, 2, 0])
    np.testing.assert_allclose(stats.raw_sum, [8, 4, 0])
    np.testing.assert_allclose(stats.raw_mean_nnz, [8 / 3, 2, 0])
    np.testing.assert_allclose(stats.raw_variance_nnz, [np.var([1, 2, 5], ddof=1), 2.0, 0.0])
