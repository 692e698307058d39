"""Unit checks of the builder's arithmetic and write order."""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from cellcensus.builder._genemajor import GeneMajorSpill
from cellcensus.builder._summary import LOG1P_SCALE, accumulate, unique_rows
from cellcensus.builder._xkernel import global_order
from cellcensus.builder._xmath import normalize, obs_stats, round_half_to_even

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from cellcensus.builder._plan import OrganismPlan


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
    # columns not sorted within rows (a dataset whose genes map to census columns out of order)
    shuffled = np.concatenate([rng.permutation(cols[i : i + 20]) for i in range(0, len(cols), 20)])
    order = global_order(rows, shuffled)
    assert sorted(order.tolist()) == list(range(len(rows)))
    r, c = rows[order], shuffled[order]
    assert list(zip(r // 2048, c // 2048, r, c, strict=True)) == key
    with pytest.raises(ValueError, match="row order"):
        global_order(rows[::-1].copy(), cols)


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
    # the CSR fast path (an empty third row) gives the same bits
    indptr = np.array([0, 3, 5, 5])
    fast = normalize(row, col, data, 3, full_gene_rows=None, feature_length=None, indptr=indptr)
    np.testing.assert_array_equal(
        fast, normalize(row, col, data, 3, full_gene_rows=None, feature_length=None)
    )
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
    np.testing.assert_allclose(stats.raw_variance_nnz, [float(np.var([1, 2, 5], ddof=1)), 2.0, 0.0])


def _random_cells(rng: np.random.Generator, n_rows: int, n_cols: int) -> tuple[np.ndarray, ...]:
    per_row = rng.integers(0, 12, n_rows)
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), per_row)
    cols = np.concatenate([np.sort(rng.choice(n_cols, k, replace=False)) for k in per_row]).astype(
        np.int64
    )
    values = rng.random(len(rows)).astype(np.float32) + 1
    return rows, cols, values


@pytest.mark.parametrize("seed", [0, 1])
def test_layer_writer_makes_one_fragment_from_unaligned_chunks(seed: int, tmp_path: Path) -> None:
    """Chunks that split tile rows (2048 rows) anywhere are merged into one global-order write."""
    import pyarrow as pa
    import tiledb
    import tiledbsoma as soma

    from cellcensus.builder._band import XLayersWriter
    from cellcensus.builder._compat import ArrayBatchWriter
    from cellcensus.builder._schema import x_platform_config

    rng = np.random.default_rng(seed)
    n_rows, n_cols = 9000, 5000  # 5 tile rows, 3 column tiles
    rows, cols, values = _random_cells(rng, n_rows, n_cols)
    # chunk edges: inside tile rows, exactly on a tile-row edge, tiny chunks, an empty chunk
    edges = [0, 1, 700, 2048, 2050, 2051, 2051, 5000, 6143, 6144, 8999, n_rows]
    x_uri = str(tmp_path / "X")
    for layer in ("raw", "normalized"):
        soma.SparseNDArray.create(
            f"{x_uri}/{layer}",
            type=pa.float32(),
            shape=(n_rows, n_cols),
            platform_config=x_platform_config(layer),
        )
    uris = [f"{x_uri}/raw", f"{x_uri}/normalized"]
    for attempt in range(2):  # a re-run (as after a kill) replaces what the first committed
        for uri in uris:
            tiledb.Array.delete_fragments(uri, 1000, 1000)
        writers = [ArrayBatchWriter(uri, 1000) for uri in uris]
        xw = XLayersWriter(writers, (n_rows, n_cols))
        for a, b in itertools.pairwise(edges):
            sel = (rows >= a) & (rows < b)
            r, c, v = rows[sel], cols[sel], values[sel]
            order = global_order(r, c, columns_sorted_within_rows=True)
            xw.push((r[order], c[order], (v[order], 2 * v[order])))
        xw.flush()
        for w in writers:
            w.close(commit=True)
        assert xw.submitted == len(rows), attempt
        for uri, expected in zip(uris, (values, 2 * values), strict=True):
            assert len(tiledb.array_fragments(uri)) == 1
            with soma.SparseNDArray.open(uri) as arr:
                got = (
                    arr.read()
                    .tables()
                    .concat()
                    .sort_by([("soma_dim_0", "ascending"), ("soma_dim_1", "ascending")])
                )
            np.testing.assert_array_equal(got["soma_dim_0"].to_numpy(), rows)
            np.testing.assert_array_equal(got["soma_dim_1"].to_numpy(), cols)
            np.testing.assert_array_equal(got["soma_data"].to_numpy(), expected)


def test_layer_writer_order_check_refuses_bad_cells(tmp_path: Path) -> None:
    """The writer's own check (TileDB's per-cell checks are off) catches every kind of bad cell."""
    from cellcensus.builder._band import XLayersWriter

    def check(rows: list[int], cols: list[int]) -> None:
        xw = XLayersWriter([], (5000, 3000))
        xw._submit((np.array(rows, np.int64), np.array(cols, np.int64), ()))

    check([0, 0, 1, 0, 2047, 2048], [1, 5, 0, 2100, 2100, 0])  # global order: fine
    check([0, 1, 0], [1, 0, 2100])  # tile (0, 0) row by row, then tile (0, 1)
    for rows, cols in (
        ([0, 0], [5, 5]),  # duplicate
        ([0, 0], [2100, 1]),  # column tile 1 before column tile 0 of the same band
        ([2048, 0], [0, 0]),  # band 1 before band 0
        ([5000], [0]),  # row out of bounds
        ([0], [3000]),  # column out of bounds
        ([-1], [0]),  # negative
    ):
        with pytest.raises(AssertionError, match="global order"):
            check(rows, cols)


def test_compat_guard_refuses_unchecked_library_versions() -> None:
    from cellcensus.builder._compat import UnsupportedLibraryError, check_versions

    check_versions({"tiledb": "0.36.1", "tiledbsoma": "2.3.0"})
    check_versions()  # the installed versions are supported ones
    for bad in ({"tiledb": "0.37.0", "tiledbsoma": "2.3.0"}, {"tiledb": "0.36.1"}):
        with pytest.raises(UnsupportedLibraryError, match=r"tiledb(soma)? .*supported: "):
            check_versions(bad)
    with pytest.raises(UnsupportedLibraryError, match=r"tiledbsoma 2\.4\.0 \(supported: 2\.3\.x\)"):
        check_versions({"tiledb": "0.36.0", "tiledbsoma": "2.4.0"})


def test_raw_count_check_refuses_every_non_count() -> None:
    from cellcensus.builder._xmath import is_nonnegative_integral

    assert is_nonnegative_integral(np.array([0.0, 1.0, 7.0, 2.0**30], dtype=np.float32))
    assert is_nonnegative_integral(np.array([], dtype=np.float32))
    assert is_nonnegative_integral(np.array([0, 3], dtype=np.int32))
    assert not is_nonnegative_integral(np.array([-1, 3], dtype=np.int64))
    for bad in (0.5, -1.0, -0.0, np.nan, np.inf, -np.inf, 1e-30):
        values = np.array([1.0, bad, 2.0], dtype=np.float32)
        assert not is_nonnegative_integral(values), bad


def test_census_info_table_replaces_an_object_left_outside_the_collection(tmp_path: Path) -> None:
    """A build killed after creating a census_info DataFrame but before adding it to the
    collection leaves an object that is not a member; the resumed write makes it again (it
    failed with ``AlreadyExistsError``)."""
    import pyarrow as pa
    import tiledbsoma as soma

    from cellcensus.builder._band import soma_context
    from cellcensus.builder._write import write_info_table

    uri = str(tmp_path / "census_info")
    info: soma.Collection[Any]
    soma.Collection.create(uri, context=soma_context()).close()
    table = pa.table({"soma_joinid": pa.array([0, 1], pa.int64()), "name": ["a", "b"]})
    stale = pa.table({"soma_joinid": pa.array([0], pa.int64()), "name": ["stale"]})
    soma.DataFrame.create(  # the kill: created on disk, never set as a member
        f"{uri}/datasets", schema=stale.schema, domain=[(0, 0)], context=soma_context()
    ).close()
    with soma.Collection.open(uri, "w", context=soma_context()) as info:
        assert "datasets" not in info
        write_info_table(info, "datasets", table)
    with soma.Collection.open(uri, context=soma_context()) as info:
        got: pd.DataFrame = info["datasets"].read().concat().to_pandas()
    assert got["name"].tolist() == ["a", "b"]
    # resumed again with the member present: the write is idempotent
    with soma.Collection.open(uri, "w", context=soma_context()) as info:
        write_info_table(info, "datasets", table)
    with soma.Collection.open(uri, context=soma_context()) as info:
        assert info["datasets"].read().concat().to_pandas()["name"].tolist() == ["a", "b"]


@pytest.mark.parametrize(("n", "take"), [(0, 256), (10, 256), (256, 256), (257, 256), (300, 17)])
def test_validation_sample_small_sources(n: int, take: int) -> None:
    from cellcensus.builder.validate import sample_ranks

    ranks = sample_ranks(n, take, np.random.default_rng(0))
    assert len(ranks) == min(n, take)
    assert len(np.unique(ranks)) == len(ranks)
    assert (np.diff(ranks) > 0).all()
    assert len(ranks) == 0 or (ranks.min() >= 0 and ranks.max() < n)
    if take >= n:
        assert ranks.tolist() == list(range(n))


def test_validation_sample_is_runs_of_consecutive_cells_anywhere() -> None:
    from cellcensus.builder.validate import SAMPLE_RUN, sample_ranks

    n, take = 100_000, 10 * SAMPLE_RUN + 3
    seen = np.zeros(n, dtype=bool)
    for seed in range(200):
        ranks = sample_ranks(n, take, np.random.default_rng(seed))
        assert len(ranks) == take
        assert (np.diff(ranks) > 0).all()
        assert ranks.min() >= 0
        assert ranks.max() < n
        # the sample is made of runs: at most 11 places where the ranks jump
        assert np.count_nonzero(np.diff(ranks) > 1) <= 10
        seen[ranks] = True
        assert sample_ranks(n, take, np.random.default_rng(seed)).tolist() == ranks.tolist()
    # no part of the source is left out, the first and the last cells included (runs placed
    # uniformly: 200 samples of 163 cells cover about 28 % of 100,000)
    first_tenth, last_tenth = seen[: n // 10].mean(), seen[-n // 10 :].mean()
    assert 0.15 < first_tenth < 0.45
    assert 0.15 < last_tenth < 0.45
    small = np.zeros(40, dtype=bool)
    for seed in range(200):
        small[sample_ranks(40, SAMPLE_RUN, np.random.default_rng(seed))] = True
    assert small.all()


@pytest.mark.parametrize("fmt", ["csr", "csc", "dense"])
def test_reading_a_set_of_source_rows_equals_reading_them_all(fmt: str, tmp_path: Path) -> None:
    import anndata as ad
    import pandas as pd
    from scipy import sparse

    from cellcensus.builder._source import H5ADSource

    rng = np.random.default_rng(3)
    x = sparse.random(9_000, 50, density=0.1, format="csr", random_state=4, dtype=np.float32)
    x.data = np.ceil(x.data * 10)
    obs = pd.DataFrame(index=[f"c{i}" for i in range(x.shape[0])])
    var = pd.DataFrame(index=[f"g{j}" for j in range(x.shape[1])])
    stored = {"csr": x, "csc": x.tocsc(), "dense": x.toarray()}[fmt]
    path = tmp_path / "a.h5ad"
    ad.AnnData(X=stored, obs=obs, var=var).write_h5ad(path)
    # single rows, runs, rows close together, far apart and across the span of one read
    rows = np.unique(
        np.concatenate(
            [[0, 1, 2, 63, 64, 200, 4095, 4096, 4097, 8999], rng.choice(9_000, 300), [5000]]
        )
    )
    with H5ADSource(path, "ds") as src:
        got = src.read_x_row_set(rows)
        want = src.read_x_rows(0, x.shape[0])[rows]
    assert got.shape == want.shape == (len(rows), 50)
    assert (got != want).nnz == 0


def _plan_of_blocks(cells: list[int], values_per_cell: int) -> OrganismPlan:
    import pandas as pd

    from cellcensus.builder import _schema as S
    from cellcensus.builder._plan import _BLOCK_DTYPE, OrganismPlan

    blocks = np.array(
        [(i, 0, n, n, n * values_per_cell) for i, n in enumerate(cells)], dtype=_BLOCK_DTYPE
    )
    organism = S.ORGANISMS[0]
    return OrganismPlan(organism, [], pd.DataFrame(), {}, sum(cells), 0, blocks=blocks)


@pytest.mark.parametrize("cost", [900_000, 2_000_000, 4_000_000, 8_000_000])
def test_bands_are_cut_inside_blocks_into_equal_work(cost: int) -> None:
    """Bands of even work, wherever the plan's blocks end: cuts fall inside blocks (one block
    may give several bands), on X tile boundaries, and no band holds more than ``cost`` plus
    one X tile of cells."""
    from cellcensus.builder import _schema as S
    from cellcensus.builder._plan import CELL_COST, _boundaries

    cells = [32_768, 17_232, 30_000, 16_280, 10_000, 32_768, 3_000, 1]
    per_cell = 170 + CELL_COST
    plan = _plan_of_blocks(cells, 170)
    bounds = _boundaries(plan, cost)
    assert bounds[0] == 0
    assert bounds[-1] == sum(cells)
    assert all(b % S.X_TILE == 0 for b in bounds[1:-1])
    sizes = np.diff(bounds)
    assert (sizes > 0).all()
    assert len(sizes) == -(-sum(cells) * per_cell // cost)
    # even work: every band within one X tile of the mean, at most cost + one tile
    assert sizes.max() - sizes.min() <= 2 * S.X_TILE
    assert sizes.max() * per_cell <= cost + S.X_TILE * per_cell


def test_one_band_when_the_work_fits() -> None:
    from cellcensus.builder._plan import _boundaries

    plan = _plan_of_blocks([5_000, 7_000], 20)
    assert _boundaries(plan, 10**9) == [0, 12_000]


@pytest.mark.parametrize("cardinality", [3, 70, 40_000])
def test_unique_rows_equals_numpy_unique_over_rows(cardinality: int) -> None:
    rng = np.random.default_rng(cardinality)
    # columns of different sizes, with gaps in the codes; 40,000 values in 11 columns cannot be
    # combined into one int64 and take the numpy fallback
    codes = rng.integers(0, cardinality, size=(5000, 11)) * 3
    codes[:, 0] = 7  # a constant column
    unique, inverse = unique_rows(codes)
    want, want_inverse = np.unique(codes, axis=0, return_inverse=True)
    np.testing.assert_array_equal(unique, want)
    np.testing.assert_array_equal(inverse, want_inverse.reshape(-1))
    assert unique_rows(codes[:0])[0].shape == (0, 11)


def test_accumulate_sums_exactly_in_fixed_point() -> None:
    """The summary kernel equals a plain Python computation of the same fixed-point integers,
    including values whose log1p memo slots collide and cells left out (group -1)."""
    rng = np.random.default_rng(5)
    n, n_genes, n_groups = 20_000, 50, 7
    genes = rng.integers(0, n_genes, n)
    groups = rng.integers(-1, n_groups, n)
    counts = rng.integers(1, 6, n)
    values = (counts / rng.integers(50, 5000, n)).astype(np.float32)
    values[:50] = np.float32(1.0)  # the largest normalized value
    part = accumulate(genes, groups, values, n_genes, n_groups)
    want: dict[tuple[int, int], list[int]] = {}
    for g, k, v in zip(genes.tolist(), groups.tolist(), values.tolist(), strict=True):
        if k < 0:
            continue
        lg = math.log1p(LOG1P_SCALE * v)  # libm, as the compiled kernel
        terms = (
            round(v * 2.0**62),
            round(v * v * 2.0**62),
            round(lg * 2.0**58),
            round(lg * lg * 2.0**55),
        )
        acc = want.setdefault((g, k), [0, 0, 0, 0, 0])
        acc[0] += 1
        for s, q in enumerate(terms):
            acc[s + 1] += q
    keys = sorted(want)
    assert list(zip(part.genes.tolist(), part.groups.tolist(), strict=True)) == keys
    assert part.nnz.tolist() == [want[k][0] for k in keys]
    for s in range(4):
        got = [(hi << 31) + lo for hi, lo in part.words[:, 2 * s : 2 * s + 2].tolist()]
        assert got == [want[k][s + 1] for k in keys]


@pytest.mark.parametrize(("n_runs", "budget"), [(1, 10_000), (1, 300), (4, 10_000), (4, 300)])
def test_gene_major_spill_gives_every_value_once_in_gene_cell_order(
    n_runs: int, budget: int, tmp_path: Path
) -> None:
    """Runs spilled chunk by chunk come back, batch by batch, as a lexsort by (gene, cell)."""
    rng = np.random.default_rng(n_runs * budget)
    n_genes, start = 50, 1000
    spill = GeneMajorSpill(
        tmp_path / "spill", (10_000, n_genes), start, budget, [("raw", "a"), ("normalized", "b")]
    )
    kept: list[list[np.ndarray]] = [[], [], [], []]  # rows, cols, raw, normalized
    cell = start
    for _ in range(n_runs):
        n_cells = 200
        per_cell = rng.integers(0, 12, n_cells)
        rows = np.repeat(np.arange(cell, cell + n_cells), per_cell).astype(np.int64)
        cols = np.concatenate(
            [np.sort(rng.choice(n_genes, k, replace=False)) for k in per_cell]
        ).astype(np.int64)
        cols[rows % 3 == 0] = 7  # one gene holds more values than the small budget
        keep = np.ones(len(rows), bool)
        keep[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        rows, cols = rows[keep], cols[keep]
        raw = rng.random(len(rows)).astype(np.float32)
        norm = rng.random(len(rows)).astype(np.float32)
        # X's global order within the chunk: (row tile, column tile, row, column)
        order = np.lexsort((cols, rows, cols // 2048, rows // 2048))
        rows, cols, raw, norm = rows[order], cols[order], raw[order], norm[order]
        spill.add(rows, cols, {"raw": raw, "normalized": norm})
        parts: list[np.ndarray] = [rows, cols, raw, norm]
        for acc, part in zip(kept, parts, strict=True):
            acc.append(part)
        cell += n_cells
    rows, cols, raw, norm = (np.concatenate(acc) for acc in kept)
    expected = np.lexsort((rows, cols))
    got: list[list[np.ndarray]] = [[], [], [], []]
    for g0, g1 in spill.batches():
        for r, c, (raw_part, norm_part) in spill._pieces(g0, g1):
            assert len(r) <= budget or g1 - g0 == 1
            assert ((c >= g0) & (c < g1)).all()
            pieces: list[np.ndarray] = [r, c, raw_part, norm_part]
            for acc, piece in zip(got, pieces, strict=True):
                acc.append(piece)
    np.testing.assert_array_equal(np.concatenate(got[0]), rows[expected])
    np.testing.assert_array_equal(np.concatenate(got[1]), cols[expected])
    np.testing.assert_array_equal(np.concatenate(got[2]), raw[expected])
    np.testing.assert_array_equal(np.concatenate(got[3]), norm[expected])
