"""The expression model and the counts it draws, block by block.

Counts of cell i and feature g are negative-binomial with mean
``size_factor[i] * exp(log_mean[cell_type[i], g] + assay_offset[assay[i], g])`` (spike-ins have
no size factor: their amount is fixed per cell) and dispersion ``dispersion[assay[i], g]``. A draw
is the inverse CDF of a uniform number, so zeros are decided on the dense uniform array and the
quantile is only searched for the ~7 % of entries that are non-zero. Uniforms come from a stream
keyed by (seed, dataset, fixed 1,024-cell block, fixed 4,096-gene tile), so the values do not
depend on how rows are grouped into chunks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import scipy.sparse as sp
from scipy.stats import nbinom

from cellcensus.synth._genes import ERCC_REFERENCE, gene_table, organism_model
from cellcensus.synth._random import BLOCK_CELLS, TILE_GENES, Stream, generator, text_key

if TYPE_CHECKING:
    import numpy.typing as npt

    from cellcensus.synth._genes import FeatureSet
    from cellcensus.synth._obs import CellTable

__all__ = ["FULL_LENGTH_ASSAYS", "CountsSource", "ExpressionModel", "build_model", "normalize"]

logger = logging.getLogger(__name__)

#: Full-gene-length assays (the Census builder's list): reads spread over the whole transcript,
#: so counts scale with feature length.
FULL_LENGTH_ASSAYS: Final = frozenset(
    {
        "EFO:0003755", "EFO:0008747", "EFO:0008763", "EFO:0008797", "EFO:0008877",
        "EFO:0008930", "EFO:0008931", "EFO:0008956", "EFO:0009999", "EFO:0010004",
        "EFO:0010006", "EFO:0010022", "EFO:0010058", "EFO:0010184", "EFO:0022396",
        "EFO:0022488", "EFO:0022839", "EFO:0030031", "EFO:0030060", "EFO:0030061",
        "EFO:0700016",
    }
)  # fmt: skip
_READS_PER_MOLECULE: Final = 6.0  # full-length assays count reads, not UMIs
_PROGRAM_FRACTION: Final = 0.03  # genes a cell type moves away from the baseline
_MARKER_LFC: Final = 3.5
_LOOP_LIMIT: Final = 24  # CDF terms summed for all open entries before the tail is handed over
_LOOP_TAIL: Final = 256  # ... once no more than this many entries are still open


@dataclass(frozen=True)
class ExpressionModel:
    """Per-dataset expression parameters (small: cell types x features)."""

    log_mean: npt.NDArray[np.float32]  # (n_cell_types, n_features)
    assay_offset: npt.NDArray[np.float32]  # (n_assays, n_features)
    dispersion: npt.NDArray[np.float32]  # (n_assays, n_features)
    centers: npt.NDArray[np.float32]  # (n_cell_types, 2) embedding cluster centres
    n_genes: int
    #: exp(log_mean + assay_offset), row ``cell_type * n_assays + assay`` (before size factors)
    exp_mean: npt.NDArray[np.float32]

    @property
    def n_assays(self) -> int:
        """Number of assays."""
        return int(self.assay_offset.shape[0])


def build_model(
    features: FeatureSet, cells: CellTable, *, seed: int, dataset_key: int
) -> ExpressionModel:
    """Build the expression model of a dataset.

    Parameters
    ----------
    features
        The dataset's features.
    cells
        Its cells (cell types and assays are used).
    seed
        Corpus seed.
    dataset_key
        Integer key of the dataset.

    Returns
    -------
    ExpressionModel
        Log means per cell type, assay offsets and dispersions per assay, embedding centres.
    """
    org = organism_model(features.organism, seed)
    n_ref = len(gene_table(features.organism))
    rows = features.gene_rows
    n_genes, n_features = features.n_genes, features.n_features

    batch = generator(seed, dataset_key, Stream.BATCH).normal(0.0, 0.25, n_genes)
    base = org.log_mean[rows] + batch
    ercc_rng = generator(seed, text_key(ERCC_REFERENCE), Stream.GENES)
    ercc_log_mean = ercc_rng.normal(-0.5, 1.8, len(gene_table(ERCC_REFERENCE)))

    log_mean = np.empty((len(cells.cell_types), n_features), dtype=np.float32)
    centers = np.empty((len(cells.cell_types), 2), dtype=np.float32)
    for c, cell_type in enumerate(cells.cell_types):
        ct_key = text_key(f"{features.organism}/{cell_type}")
        rng = generator(seed, ct_key, Stream.CELL_TYPE)
        program = np.zeros(n_ref, dtype=np.float64)
        moved = rng.choice(n_ref, size=int(_PROGRAM_FRACTION * n_ref), replace=False)
        program[moved] = rng.normal(0.0, 1.2, len(moved))
        program[org.markers.get(cell_type, np.empty(0, np.int64))] += _MARKER_LFC
        log_mean[c, :n_genes] = base + program[rows]
        log_mean[c, n_genes:] = ercc_log_mean[features.spike_rows]
        centers[c] = generator(seed, text_key(cell_type), Stream.EMBEDDING).normal(0.0, 7.0, 2)

    lengths = features.lengths().astype(np.float64)
    length_offset = np.log(
        np.clip(lengths[:n_genes] / max(np.median(lengths[:n_genes]), 1), 0.05, 20)
    )
    assay_offset = np.zeros((len(cells.assays), n_features), dtype=np.float32)
    dispersion = np.empty((len(cells.assays), n_features), dtype=np.float32)
    spike_dispersion = np.full(n_features - n_genes, 0.05)
    for a, assay in enumerate(cells.assays):
        full_length = assay in FULL_LENGTH_ASSAYS
        if full_length:
            assay_offset[a, :n_genes] = np.log(_READS_PER_MOLECULE) + length_offset - 1.8
            assay_offset[a, n_genes:] = np.log(_READS_PER_MOLECULE)
        dispersion[a, :n_genes] = org.dispersion[rows] * (4.0 if full_length else 1.0)
        dispersion[a, n_genes:] = spike_dispersion
    exp_mean = np.exp(log_mean[:, None, :] + assay_offset[None, :, :]).reshape(-1, n_features)
    return ExpressionModel(
        log_mean=log_mean,
        assay_offset=assay_offset,
        dispersion=dispersion,
        centers=centers,
        n_genes=n_genes,
        exp_mean=exp_mean.astype(np.float32),
    )


def _nb_quantile(
    mean: npt.NDArray[np.float64], phi: npt.NDArray[np.float64], u: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    """Smallest k >= 1 with NB-CDF(k) >= u, for entries known to be non-zero.

    The CDF is summed term by term while many entries are open; the few still open after
    ``_LOOP_LIMIT`` terms (large counts) are finished with scipy's quantile function.
    """
    r = 1.0 / phi
    # rows: pk (P(k)), cdf, r, q = mean / (r + mean), u, mean; compacted together
    state = np.stack(
        [np.exp(r * np.log(r / (r + mean))), np.zeros_like(r), r, mean / (r + mean), u, mean]
    )
    state[1] = state[0]  # cdf = P(0)
    pk, cdf, rr, q, uu, mm = state
    idx = np.arange(len(mean))
    out = np.zeros(len(mean), dtype=np.float32)
    k = 0
    open_ = np.ones(len(mean), dtype=bool)
    n_open = len(mean)
    while n_open and (k < _LOOP_LIMIT or n_open > _LOOP_TAIL):
        k += 1
        pk *= (k - 1 + rr) / k * q
        cdf += pk
        # done when the CDF reaches u, or past the mean with no mass left (float rounding)
        done = open_ & ((cdf >= uu) | ((pk < 1e-12 * cdf) & (k > mm)))
        out[idx[done]] = k
        open_ &= ~done
        n_open = int(np.count_nonzero(open_))
        if n_open < len(open_) // 2:  # compact only now and then: copying costs more than math
            idx, state, open_ = idx[open_], state[:, open_], np.ones(n_open, dtype=bool)
            pk, cdf, rr, q, uu, mm = state
    idx, state = idx[open_], state[:, open_]
    if idx.size:
        _, _, rr, _, uu, mm = state
        tail = nbinom.ppf(uu, rr, rr / (rr + mm))
        out[idx] = np.maximum(np.nan_to_num(tail, nan=k + 1, posinf=k + 1), k + 1)
    return out


def _block(
    model: ExpressionModel, cells: CellTable, block: int, *, seed: int, dataset_key: int
) -> sp.csr_matrix:
    start = block * BLOCK_CELLS
    stop = min(start + BLOCK_CELLS, len(cells.size_factor))
    ct = cells.cell_type_code[start:stop]
    assay = cells.assay_code[start:stop]
    size = cells.size_factor[start:stop, None]
    n_rows, n_features = stop - start, model.log_mean.shape[1]
    rows_parts, cols_parts, vals_parts = [], [], []
    for tile, c0 in enumerate(range(0, n_features, TILE_GENES)):
        c1 = min(c0 + TILE_GENES, n_features)
        width = c1 - c0
        mean = model.exp_mean[ct * model.n_assays + assay, c0:c1]
        g1 = min(max(model.n_genes - c0, 0), width)  # genes (not spike-ins) in this tile
        mean[:, :g1] *= size
        phi = model.dispersion[assay, c0:c1]
        u = generator(seed, dataset_key, Stream.COUNTS, block, tile).random(
            mean.shape, dtype=np.float32
        )
        # P(0) = (1 + phi * mean) ** (-1 / phi); the entry is non-zero when u > P(0)
        p0 = np.exp(np.log1p(phi * mean) / -phi)
        flat = np.flatnonzero(u > p0)
        rows, cols = np.divmod(flat, width)
        values = _nb_quantile(
            mean.ravel()[flat].astype(np.float64),
            phi.ravel()[flat].astype(np.float64),
            u.ravel()[flat].astype(np.float64),
        )
        rows_parts.append(rows)
        cols_parts.append(cols + c0)
        vals_parts.append(values)
    rows = np.concatenate(rows_parts)
    cols = np.concatenate(cols_parts)
    vals = np.concatenate(vals_parts)
    # every cell has at least one count (the schema requires it): the cell's top gene gets 1
    counts_per_row = np.bincount(rows, minlength=n_rows)
    empty = np.flatnonzero(counts_per_row == 0)
    if empty.size:
        top = np.argmax(model.log_mean[ct[empty], : model.n_genes], axis=1)
        rows, cols = np.concatenate([rows, empty]), np.concatenate([cols, top])
        vals = np.concatenate([vals, np.ones(empty.size, dtype=np.float32)])
        counts_per_row[empty] = 1
    if len(rows_parts) > 1 or empty.size:
        order = np.lexsort((cols, rows))
        cols, vals = cols[order], vals[order]
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts_per_row, out=indptr[1:])
    return sp.csr_matrix((vals, cols.astype(np.int32), indptr), shape=(n_rows, n_features))


def _embedding_block(
    model: ExpressionModel, cells: CellTable, block: int, *, seed: int, dataset_key: int
) -> npt.NDArray[np.float32]:
    start = block * BLOCK_CELLS
    stop = min(start + BLOCK_CELLS, len(cells.size_factor))
    noise = generator(seed, dataset_key, Stream.EMBEDDING, block).normal(
        0.0, 1.0, (stop - start, 2)
    )
    return (model.centers[cells.cell_type_code[start:stop]] + noise).astype(np.float32)


class CountsSource:
    """Counts (and embedding) rows of a generated dataset, for any row range.

    Rows are cut from fixed blocks; the last block is kept so consecutive chunks that share it do
    not draw it twice.
    """

    def __init__(
        self, model: ExpressionModel, cells: CellTable, *, seed: int, dataset_key: int
    ) -> None:
        self.model = model
        self.cells = cells
        self.seed = seed
        self.dataset_key = dataset_key
        self.n_rows = len(cells.size_factor)
        self.n_features = model.log_mean.shape[1]
        self._cached: tuple[int, sp.csr_matrix, npt.NDArray[np.float32]] | None = None

    def _get(self, block: int) -> tuple[sp.csr_matrix, npt.NDArray[np.float32]]:
        if self._cached is None or self._cached[0] != block:
            kw = {"seed": self.seed, "dataset_key": self.dataset_key}
            counts = _block(self.model, self.cells, block, **kw)
            emb = _embedding_block(self.model, self.cells, block, **kw)
            self._cached = (block, counts, emb)
        return self._cached[1], self._cached[2]

    def rows(self, start: int, stop: int) -> tuple[sp.csr_matrix, npt.NDArray[np.float32]]:
        """Return counts (CSR float32, sorted indices) and the 2-D embedding of rows
        ``[start, stop)``."""
        parts, embs = [], []
        for block in range(start // BLOCK_CELLS, (stop - 1) // BLOCK_CELLS + 1):
            b0 = block * BLOCK_CELLS
            counts, emb = self._get(block)
            lo, hi = max(start - b0, 0), min(stop - b0, counts.shape[0])
            parts.append(counts[lo:hi])
            embs.append(emb[lo:hi])
        matrix = parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr")
        return sp.csr_matrix(matrix), np.concatenate(embs)


def normalize(counts: sp.csr_matrix) -> sp.csr_matrix:
    """Return log1p(counts per 10,000) with the same sparsity, as float32.

    Parameters
    ----------
    counts
        Raw counts, CSR.

    Returns
    -------
    scipy.sparse.csr_matrix
        Normalized values, same indices and indptr.
    """
    totals = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
    per_entry = np.repeat(totals, np.diff(counts.indptr))
    data = np.log1p(counts.data.astype(np.float64) / per_entry * 1e4).astype(np.float32)
    return sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)
