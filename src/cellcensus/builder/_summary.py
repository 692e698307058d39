"""The expression summary of an experiment: per gene and cell group, counts and sums of X.

A *cell group* is one combination of (dataset, tissue_general, cell_type, assay, disease, sex),
term ids and labels, among the experiment's **primary** cells (``is_primary_data``; duplicate
cells would otherwise count twice). Per (gene, group) with at least one stored value the summary
holds: the number of cells expressing the gene (stored values), and the sums of the normalized
values ``x``, of ``x**2``, of ``log1p(LOG1P_SCALE * x)`` and of its square. Groups with their cell
counts are a table of their own. Any coarser view (by cell type, by tissue and cell type, by
assay, ...) is a sum over groups; the means and fractions divide by the cells of the groups whose
dataset measures the gene (see ``cellcensus.experimental.summarize``).

Determinism: band tasks accumulate their cells' values and the driver adds the bands' partial sums;
floating-point sums would then depend on how the census was cut into bands and chunks. Each value
is therefore rounded once to a fixed-point integer (``x`` and ``x**2`` in units of 2**-62, the
log1p terms of 2**-58 and 2**-55: below a float64's own resolution for all but tiny values) and
sums are exact integer sums, kept as two int64 words of 31 bits each (exact up to 2**32 cells a
group). The stored float64 sums are therefore identical whatever the number of workers, bands or
chunk sizes.

Memory: a band keeps at most ``budget`` partial rows (spilled to ``_work`` as sorted runs); the
driver reduces them gene range by gene range, ``budget`` rows at a time.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import tiledbsoma as soma

from cellcensus._leftovers import drop_members
from cellcensus.builder import _schema as S
from cellcensus.builder._runs import Run, write_run
from cellcensus.builder._xkernel import bucket_starts, counting_order

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

logger = logging.getLogger(__name__)

#: Normalized values are scaled by this before ``log1p`` (counts per 10,000: "log CPTT", what the
#: CELLxGENE Gene Expression app shows).
LOG1P_SCALE = 10_000.0
#: obs columns whose combination makes a cell group (codes of the census obs dictionaries).
GROUP_COLUMNS = (
    "dataset_id",
    "tissue_general_ontology_term_id",
    "tissue_general",
    "cell_type_ontology_term_id",
    "cell_type",
    "assay_ontology_term_id",
    "assay",
    "disease_ontology_term_id",
    "disease",
    "sex_ontology_term_id",
    "sex",
)
#: The statistics summed, and the binary exponent of the fixed point each is rounded to.
STATISTICS = ("sum", "sumsq", "sum_log1p", "sumsq_log1p")
_SHIFTS = (62, 62, 58, 55)
_WORD = 31
_LOW = (1 << _WORD) - 1
#: names of the two SOMA DataFrames (members of the organism's ``cellcensus_genes`` collection)
SUMMARY = "expression_summary"
GROUPS = "expression_summary_cell_groups"

#: Columns of the summary: none is nullable (every row has every value; nullable attributes would
#: add a validity tile to every data tile a read decodes).
SUMMARY_SCHEMA = pa.schema(
    [
        pa.field("soma_joinid", pa.int64(), nullable=False),
        pa.field("var_joinid", pa.int64(), nullable=False),
        pa.field("group_joinid", pa.int64(), nullable=False),
        pa.field("n_expressing", pa.int64(), nullable=False),
        *(pa.field(name, pa.float64(), nullable=False) for name in STATISTICS),
    ]
)
GROUPS_SCHEMA = pa.schema(
    [
        pa.field("soma_joinid", pa.int64()),
        *(pa.field(name, pa.large_string()) for name in GROUP_COLUMNS),
        pa.field("n_cells", pa.int64()),
    ]
)


#: Summary rows per data tile. Rows are in (gene, group) order, so a gene's rows fill consecutive
#: tiles and a read of a few genes decodes their rows plus at most a tile's worth around each:
#: with non-nullable columns, 2,048 made ``summarize`` of 10 genes on a 1 M-cell release (about
#: 780 rows a gene) 2.3x faster than 8,192 for +2.5 % size (RESULTS.md, "Third pass").
SUMMARY_CAPACITY = 2048


def _group_tile(n_groups: int) -> int:
    """The summary's space-tile extent over groups: a power of two, at least ``n_groups``."""
    return 1 << max(n_groups - 1, 0).bit_length()


def _platform_config(compression: str, n_groups: int) -> dict[str, Any]:
    """One space tile spans every group: TileDB's global order is then (gene, group), the order
    the reduction makes, and the rows are written as they come (no sort by TileDB: 2.3x faster
    to write, measured on the 200 k-cell corpus's 568 k rows). The extent is a power of two:
    tiles start at the dimension's lowest value, -2**63, so only such extents align with 0."""
    group_tile = _group_tile(n_groups)
    level = S.FAST_ZSTD_LEVEL if compression == "fast" else 9
    zstd = {"_type": "ZstdFilter", "level": level}
    return {
        "tiledb": {
            "create": {
                "capacity": SUMMARY_CAPACITY,
                "dims": {
                    "var_joinid": {"tile": 64, "filters": [zstd]},
                    "group_joinid": {
                        "tile": group_tile,
                        "filters": ["ByteShuffleFilter", zstd],
                    },
                },
                "attrs": {
                    name: {"filters": ["ByteShuffleFilter", zstd]}
                    for name in SUMMARY_SCHEMA.names
                    if name not in ("var_joinid", "group_joinid")
                },
                "allows_duplicates": S.ALLOWS_DUPLICATES,
            }
        }
    }


# ----------------------------------------------------------------------------- compiled kernels
@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _n_runs(
    genes: npt.NDArray[np.int64], groups: npt.NDArray[np.int64], order: npt.NDArray[np.int64]
) -> int:
    """How many distinct (gene, group) runs the rows sorted by ``order`` form."""
    m = 0
    for j in range(order.shape[0]):
        i = order[j]
        if j == 0 or genes[i] != genes[order[j - 1]] or groups[i] != groups[order[j - 1]]:
            m += 1
    return m


@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _order(
    genes: npt.NDArray[np.int64], groups: npt.NDArray[np.int64], n_genes: int, n_groups: int
) -> npt.NDArray[np.int64]:
    """Stable permutation sorting by (gene, group): two counting sorts, group then gene."""
    n = genes.shape[0]
    first = np.empty(n, np.int64)
    counting_order(groups, n_groups, first)
    order = np.empty(n, np.int64)
    fill = bucket_starts(genes, n_genes)
    for j in range(n):
        i = first[j]
        order[fill[genes[i]]] = i
        fill[genes[i]] += 1
    return order


#: Fixed-point scales of the statistics (exact powers of two, see ``_SHIFTS``).
_F_SUM = 2.0 ** _SHIFTS[0]
_F_LOG = 2.0 ** _SHIFTS[2]
_F_LOGSQ = 2.0 ** _SHIFTS[3]
#: Entries of the log1p memo (a power of two): a cell's values repeat (counts over one total).
_MEMO = 1 << 12


@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _sort_terms(
    genes: npt.NDArray[np.int64],
    groups: npt.NDArray[np.int64],
    values: npt.NDArray[np.float32],
    n_genes: int,
    n_groups: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """The values with a group (``groups >= 0``) sorted by (gene, group), stably.

    Returns each one's key ``gene * n_groups + group``, its value and
    ``log1p(LOG1P_SCALE * value)``.
    Two counting sorts (group, then gene); the second scatters the values straight into their
    sorted places, reading them nearly in order (a piece holds few groups), so no value is
    gathered at random. log1p (a slow libm call) is remembered by the float's bits: values read
    in cell order repeat within a cell, and the result is the same function of the value.
    """
    first = np.empty(genes.shape[0], np.int64)
    kept = counting_order(groups, n_groups, first)[n_groups]  # no group (-1): left out
    fill = np.zeros(n_genes + 1, np.int64)
    for j in range(kept):
        fill[genes[first[j]] + 1] += 1
    for k in range(n_genes):
        fill[k + 1] += fill[k]
    keys = np.empty(kept, np.int64)
    out = np.empty(kept, np.float32)
    logs = np.empty(kept, np.float64)
    memo_bits = np.full(_MEMO, np.uint32(0xFFFFFFFF), np.uint32)  # a NaN: never a stored value
    memo_logs = np.full(_MEMO, np.nan)  # log1p of that NaN
    bits = values.view(np.uint32)
    for j in range(kept):
        i = first[j]
        g = genes[i]
        p = fill[g]
        fill[g] = p + 1
        b = bits[i]
        h = np.uint32(b * np.uint32(2654435761)) >> np.uint32(20)
        if memo_bits[h] != b:
            memo_bits[h] = b
            memo_logs[h] = np.log1p(LOG1P_SCALE * np.float64(values[i]))
        keys[p] = g * n_groups + groups[i]
        out[p] = values[i]
        logs[p] = memo_logs[h]
    return keys, out, logs


@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _accumulate(
    keys: npt.NDArray[np.int64],
    values: npt.NDArray[np.float32],
    logs: npt.NDArray[np.float64],
    n_groups: int,
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]
]:
    """Exact fixed-point sums per (gene, group) key of values sorted by key."""
    n = keys.shape[0]
    m = 0
    for j in range(n):
        if j == 0 or keys[j] != keys[j - 1]:
            m += 1
    out_gene = np.empty(m, np.int64)
    out_group = np.empty(m, np.int64)
    nnz = np.zeros(m, np.int64)
    words = np.zeros((m, 8), np.int64)
    k = -1
    j = 0
    while j < n:
        key = keys[j]
        k += 1
        out_gene[k] = key // n_groups
        out_group[k] = key % n_groups
        c = 0
        w0 = w1 = w2 = w3 = w4 = w5 = w6 = w7 = np.int64(0)
        while j < n and keys[j] == key:
            x = np.float64(values[j])
            lg = logs[j]
            c += 1
            q = np.int64(np.rint(x * _F_SUM))
            w0 += q >> 31
            w1 += q & 2147483647
            q = np.int64(np.rint(x * x * _F_SUM))
            w2 += q >> 31
            w3 += q & 2147483647
            q = np.int64(np.rint(lg * _F_LOG))
            w4 += q >> 31
            w5 += q & 2147483647
            q = np.int64(np.rint(lg * lg * _F_LOGSQ))
            w6 += q >> 31
            w7 += q & 2147483647
            j += 1
        nnz[k] = c
        words[k, 0] = w0
        words[k, 1] = w1
        words[k, 2] = w2
        words[k, 3] = w3
        words[k, 4] = w4
        words[k, 5] = w5
        words[k, 6] = w6
        words[k, 7] = w7
    return out_gene, out_group, nnz, words


@numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _combine(
    genes: npt.NDArray[np.int64],
    groups: npt.NDArray[np.int64],
    nnz: npt.NDArray[np.int64],
    words: npt.NDArray[np.int64],
    order: npt.NDArray[np.int64],
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]
]:
    """Add partial rows with the same (gene, group), sorted by ``order``."""
    n = order.shape[0]
    m = _n_runs(genes, groups, order)
    out_gene = np.empty(m, np.int64)
    out_group = np.empty(m, np.int64)
    out_nnz = np.zeros(m, np.int64)
    out_words = np.zeros((m, 8), np.int64)
    k = -1
    for j in range(n):
        i = order[j]
        if j == 0 or genes[i] != genes[order[j - 1]] or groups[i] != groups[order[j - 1]]:
            k += 1
            out_gene[k] = genes[i]
            out_group[k] = groups[i]
        out_nnz[k] += nnz[i]
        for w in range(8):
            out_words[k, w] += words[i, w]
    return out_gene, out_group, out_nnz, out_words


@dataclass
class Partial:
    """Partial sums: one row per (gene, group), sorted by (gene, group)."""

    genes: npt.NDArray[np.int64]
    groups: npt.NDArray[np.int64]
    nnz: npt.NDArray[np.int64]
    words: npt.NDArray[np.int64]  # (rows, 8): high and low 31-bit words of each statistic

    def __len__(self) -> int:
        return len(self.genes)

    @staticmethod
    def concat(parts: Sequence[Partial]) -> Partial:
        """The rows of several partials (not combined)."""
        return Partial(
            np.concatenate([p.genes for p in parts]),
            np.concatenate([p.groups for p in parts]),
            np.concatenate([p.nnz for p in parts]),
            np.concatenate([p.words for p in parts]),
        )

    def combined(self, n_genes: int, n_groups: int) -> Partial:
        """Rows with equal (gene, group) added (exact integer sums), sorted."""
        order = _order(self.genes, self.groups, n_genes, n_groups)
        return Partial(*_combine(self.genes, self.groups, self.nnz, self.words, order))

    def floats(self) -> dict[str, npt.NDArray[np.float64]]:
        """The statistics as float64 sums."""
        out = {}
        for s, name in enumerate(STATISTICS):
            hi = self.words[:, 2 * s].astype(np.float64)
            lo = self.words[:, 2 * s + 1].astype(np.float64)
            shift = _SHIFTS[s]
            out[name] = np.ldexp(hi, _WORD - shift) + np.ldexp(lo, -shift)
        return out


def accumulate(
    genes: npt.NDArray[np.int64],
    groups: npt.NDArray[np.int64],
    normalized: npt.NDArray[np.float32],
    n_genes: int,
    n_groups: int,
) -> Partial:
    """Partial sums of normalized values by (gene, group); values whose group is -1 are left out."""
    keys, values, logs = _sort_terms(
        np.ascontiguousarray(genes, dtype=np.int64),
        np.ascontiguousarray(groups, dtype=np.int64),
        np.ascontiguousarray(normalized, dtype=np.float32),
        n_genes,
        n_groups,
    )
    return Partial(*_accumulate(keys, values, logs, n_groups))


def unique_rows(
    codes: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``np.unique(codes, axis=0, return_inverse=True)`` of non-negative codes, faster.

    Each column's codes are ranked among those present (order kept) and the ranks are combined
    into one integer per row, most significant column first, so sorting the integers sorts the
    rows. ``np.unique`` over rows compares them as opaque bytes, which took ~1 s of a 200 k-cell
    build. Falls back to it if the combined integer could overflow.
    """
    n, m = codes.shape
    if n == 0:
        return codes, np.zeros(0, np.int64)
    key = np.zeros(n, np.int64)
    span = 1
    for c in range(m):
        col = codes[:, c]
        present = np.zeros(int(col.max(initial=0)) + 1, dtype=bool)
        present[col] = True
        rank = np.cumsum(present, dtype=np.int64) - 1
        card = int(rank[-1]) + 1
        span *= card
        if span >= 1 << 62:
            unique, inverse = np.unique(codes, axis=0, return_inverse=True)
            return unique, inverse.reshape(-1)
        key = key * card + rank[col]
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return codes[first], inverse.reshape(-1)


# ----------------------------------------------------------------------------- band side
def _codes(batch: pa.RecordBatch, column: str) -> npt.NDArray[np.int64]:
    col = batch.column(column)
    if not isinstance(col, pa.DictionaryArray):  # pragma: no cover - obs schema invariant
        msg = f"internal error: obs column {column} is not dictionary-encoded"
        raise TypeError(msg)
    codes: npt.NDArray[np.int64] = col.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes


class BandSummary:
    """The summary partial sums of one band, spilled to ``out_dir`` as sorted runs.

    Parameters
    ----------
    out_dir
        The band's directory under ``_work`` (replaced).
    n_genes
        Genes (var) of the experiment.
    budget
        Partial rows held in memory before a run is written.
    piece
        Values summed at once (a chunk is taken in pieces: the sort's temporaries stay small).
    """

    def __init__(self, out_dir: Path, n_genes: int, budget: int, *, piece: int = 1 << 22) -> None:
        self.dir = out_dir
        self.n_genes = n_genes
        self.budget = max(int(budget), 1)
        self.piece = max(int(piece), 1)
        self.group_of: dict[tuple[int, ...], int] = {}
        self.n_cells: list[int] = []
        self.pending: list[Partial] = []
        self.n_pending = 0
        self.n_runs = 0
        self.n_rows: list[int] = []  # rows of each run
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)

    def add(
        self,
        rows: npt.NDArray[np.int64],
        cols: npt.NDArray[np.int64],
        normalized: npt.NDArray[np.float32],
        obs: pa.RecordBatch,
        first_joinid: int,
    ) -> None:
        """Add a chunk: its cells' normalized values and their obs rows (census dictionaries)."""
        primary = obs.column("is_primary_data").to_numpy(zero_copy_only=False).astype(bool)
        if not primary.any():
            return
        codes = np.stack([_codes(obs, c) for c in GROUP_COLUMNS], axis=1)[primary]
        unique, inverse = unique_rows(codes)
        local = np.empty(len(unique), dtype=np.int64)
        for i, key in enumerate(map(tuple, unique.tolist())):
            known = self.group_of.get(key)
            if known is None:
                known = self.group_of[key] = len(self.n_cells)
                self.n_cells.append(0)
            local[i] = known
        counts = np.bincount(inverse, minlength=len(unique))
        for g, n in zip(local.tolist(), counts.tolist(), strict=True):
            self.n_cells[g] += n
        cell_group = np.full(obs.num_rows, -1, dtype=np.int64)
        cell_group[primary] = local[inverse]
        for a in range(0, len(rows), self.piece):
            b = a + self.piece
            part = accumulate(
                cols[a:b],
                cell_group[rows[a:b] - first_joinid],
                normalized[a:b],
                self.n_genes,
                len(self.n_cells),
            )
            self.pending.append(part)
            self.n_pending += len(part)
            if self.n_pending >= self.budget:
                self._spill()

    def _spill(self) -> None:
        if not self.pending:
            return
        part = Partial.concat(self.pending).combined(self.n_genes, len(self.n_cells))
        self.pending, self.n_pending = [], 0
        indptr = np.searchsorted(part.genes, np.arange(self.n_genes + 1)).astype(np.int64)
        write_run(self.dir / f"run-{self.n_runs:06d}.bin", indptr, _columns(part))
        self.n_runs += 1
        self.n_rows.append(len(part))

    def finish(self, dictionaries: dict[str, list[str]]) -> None:
        """Write the last run and the band's groups (as strings) with their cell counts."""
        self._spill()
        groups = [
            [dictionaries[c][code] for c, code in zip(GROUP_COLUMNS, key, strict=True)]
            for key in self.group_of
        ]
        doc = {"groups": groups, "n_cells": self.n_cells, "run_rows": self.n_rows}
        tmp = self.dir / "groups.json.tmp"
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.dir / "groups.json")


# ----------------------------------------------------------------------------- driver side
def _columns(part: Partial) -> list[npt.NDArray[Any]]:
    return [part.groups, part.nnz, part.words]


def _run(path: Path, n_genes: int, n_rows: int) -> Run:
    empty = np.zeros(0, np.int64)
    return Run.of(
        path, n_genes, n_rows, _columns(Partial(empty, empty, empty, np.zeros((0, 8), np.int64)))
    )


@dataclass
class _BandRuns:
    to_global: npt.NDArray[np.int64]  # band-local group -> census group
    runs: list[Run]


def _bands(
    band_dirs: Sequence[Path], n_genes: int
) -> tuple[list[tuple[str, ...]], list[int], list[_BandRuns]]:
    """Every band's groups merged into census groups (sorted by their strings)."""
    docs = [(d, json.loads((d / "groups.json").read_text())) for d in band_dirs]
    n_cells: dict[tuple[str, ...], int] = {}
    for _, doc in docs:
        for key, n in zip(doc["groups"], doc["n_cells"], strict=True):
            n_cells[tuple(key)] = n_cells.get(tuple(key), 0) + int(n)
    keys = sorted(n_cells)
    index = {k: i for i, k in enumerate(keys)}
    bands = [
        _BandRuns(
            to_global=np.array([index[tuple(k)] for k in doc["groups"]], dtype=np.int64),
            runs=[
                _run(d / f"run-{i:06d}.bin", n_genes, int(n)) for i, n in enumerate(doc["run_rows"])
            ],
        )
        for d, doc in docs
    ]
    return keys, [n_cells[k] for k in keys], bands


def _gene_batches(bands: list[_BandRuns], n_genes: int, budget: int) -> Iterator[tuple[int, int]]:
    """Gene ranges holding at most ``budget`` partial rows over all runs (one gene may hold
    more)."""
    totals = np.zeros(n_genes, dtype=np.int64)
    for b in bands:
        for run in b.runs:
            totals += np.diff(run.offsets())
    cum = np.cumsum(totals)
    g = 0
    while g < n_genes:
        base = int(cum[g - 1]) if g else 0
        stop = max(int(np.searchsorted(cum, base + budget, side="right")), g + 1)
        yield g, stop
        g = stop


def _read_batch(bands: list[_BandRuns], g0: int, g1: int) -> Partial:
    parts = []
    for b in bands:
        for run in b.runs:
            counts, (groups, nnz, words) = run.read(g0, g1)
            if len(groups):
                parts.append(
                    Partial(
                        genes=np.repeat(np.arange(g0, g1, dtype=np.int64), counts),
                        groups=b.to_global[groups],
                        nnz=nnz,
                        words=words,
                    )
                )
    if not parts:
        empty = np.zeros(0, np.int64)
        return Partial(empty, empty, empty, np.zeros((0, 8), np.int64))
    return Partial.concat(parts)


def write_summary(
    genes_uri: str,
    band_dirs: Sequence[Path],
    *,
    n_genes: int,
    budget: int,
    compression: str,
    context: Any,  # noqa: ANN401 - a SOMATileDBContext
) -> tuple[int, int]:
    """Reduce the bands' partial sums into the two summary DataFrames under ``genes_uri``.

    Returns the number of groups and of summary rows.
    """
    keys, n_cells, bands = _bands(band_dirs, n_genes)
    n_groups = len(keys)
    drop_members(genes_uri, (SUMMARY, GROUPS), context)  # a resumed build: start over
    groups_uri = f"{genes_uri.rstrip('/')}/{GROUPS}"
    summary_uri = f"{genes_uri.rstrip('/')}/{SUMMARY}"
    soma.DataFrame.create(
        groups_uri,
        schema=GROUPS_SCHEMA,
        index_column_names=["soma_joinid"],
        domain=[(0, max(n_groups - 1, 0))],
        platform_config={"tiledb": {"create": {"allows_duplicates": S.ALLOWS_DUPLICATES}}},
        context=context,
    ).close()
    soma.DataFrame.create(
        summary_uri,
        schema=SUMMARY_SCHEMA,
        index_column_names=["var_joinid", "group_joinid"],
        # the groups' domain is a whole tile: TileDB-SOMA shortens a tile to the domain
        domain=[(0, max(n_genes - 1, 0)), (0, _group_tile(n_groups) - 1)],
        platform_config=_platform_config(compression, n_groups),
        context=context,
    ).close()
    if n_groups:
        table = {"soma_joinid": pa.array(np.arange(n_groups, dtype=np.int64))}
        for i, name in enumerate(GROUP_COLUMNS):
            table[name] = pa.array([k[i] for k in keys], type=pa.large_string())
        table["n_cells"] = pa.array(np.asarray(n_cells, dtype=np.int64))
        with soma.DataFrame.open(groups_uri, "w", context=context) as df:
            df.write(pa.Table.from_pydict(table, schema=GROUPS_SCHEMA))
    rows = 0
    pending: list[Partial] = []
    with soma.DataFrame.open(summary_uri, "w", context=context) as df:

        def flush() -> None:
            nonlocal rows
            if not pending:
                return
            part = Partial.concat(pending)
            pending.clear()
            n = len(part)
            table = {
                "soma_joinid": pa.array(np.arange(rows, rows + n, dtype=np.int64)),
                "var_joinid": pa.array(part.genes),
                "group_joinid": pa.array(part.groups),
                "n_expressing": pa.array(part.nnz),
                **{k: pa.array(v) for k, v in part.floats().items()},
            }
            df.write(
                pa.Table.from_pydict(table, schema=SUMMARY_SCHEMA),
                platform_config=soma.TileDBWriteOptions(sort_coords=False),  # TileDB checks order
            )
            rows += n

        held = 0
        for g0, g1 in _gene_batches(bands, n_genes, budget):
            part = _read_batch(bands, g0, g1)
            if len(part):
                pending.append(part.combined(n_genes, n_groups))
                held += len(pending[-1])
            if held >= budget:
                flush()
                held = 0
        flush()
    coll: soma.Collection[Any]
    with soma.Collection.open(genes_uri, "w", context=context) as coll:
        for name, uri in ((GROUPS, groups_uri), (SUMMARY, summary_uri)):
            member: soma.DataFrame
            with soma.DataFrame.open(uri, context=context) as member:
                coll.set(name, member, use_relative_uri=True)  # type: ignore[arg-type]
        coll.metadata["cellcensus_summary_log1p_scale"] = LOG1P_SCALE
    return n_groups, rows
