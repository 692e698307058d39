"""``cellcensus_genes``: what a build adds for gene questions, beside the Census-schema objects.

Per organism with cells, a collection ``cellcensus_genes/<organism>`` holds:

- ``X/raw`` (and ``X/normalized`` when the build's ``gene_major_layers`` name it): gene-major
  copies of ``census_data/<organism>/ms/RNA/X`` (same shape, coordinates and values; see
  ``_genemajor``), unless the build ran with ``gene_major=False`` (``--no-gene-major``);
- ``expression_summary`` and ``expression_summary_cell_groups``: the expression summary (see
  ``_summary``).

The collection is a member of the census root, *not* of the experiment: tools that iterate an
experiment's ``X`` layers or measurements (the official client, ``tiledbsoma.io``, report and
compare tools) never meet it, and it holds no SOMA Experiment, so nothing mistakes it for census
data. Its objects are written by the band tasks (copies, partial sums) and by the driver (the
summary reduction); :class:`BandWork` is what a band task runs besides its X and obs writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cellcensus.builder import _schema as S
from cellcensus.builder._genemajor import GeneMajorSpill, platform_config
from cellcensus.builder._summary import BandSummary, write_summary

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import numpy.typing as npt
    import tiledbsoma as soma

    from cellcensus.builder._plan import OrganismPlan

logger = logging.getLogger(__name__)

#: The top-level collection (a member of the census root).
GENES = "cellcensus_genes"
#: Format of what ``cellcensus_genes`` holds (collection metadata ``cellcensus_genes_version``).
GENES_FORMAT_VERSION = 1
#: Metadata of a gene-major copy naming the X layer it copies (relative to the census root).
COPY_OF_KEY = "cellcensus_gene_major_copy_of"
#: Least values (and summary rows) a band or the driver gathers at once, whatever ``chunk_nnz``:
#: a few MB, so that tiny chunk settings (tests) do not turn into thousands of tiny reads.
MIN_BUDGET = 1 << 18


def summary_budget(chunk_nnz: int) -> int:
    """Summary rows the driver holds at once: a sixteenth of a chunk. A row is ~90 bytes, and
    writing a batch (Arrow table, TileDB's sorted copy) takes several times that: at a quarter
    of a chunk the reduction peaked at 1.9 GiB (3 M cells, 64 datasets, default chunk)."""
    return max(chunk_nnz // 16, MIN_BUDGET)


def piece_values(chunk_nnz: int) -> int:
    """Values of a chunk sorted by gene (spill) or summed (summary) at once: a quarter of a chunk.

    A chunk's values already take ~40 bytes each in the band; sorting them by gene or by
    (gene, group) needs ~30-40 bytes more each, so the chunk is handled in quarters.
    """
    return max(chunk_nnz // 4, MIN_BUDGET)


def write_budget(chunk_nnz: int) -> int:
    """Values a band gathers at once when it writes its gene-major fragment (~70 bytes each while
    gathered and sorted, against ~40 for a chunk's: half a chunk)."""
    return max(chunk_nnz // 2, MIN_BUDGET)


def genes_uri(soma_uri: str, organism: str) -> str:
    """The organism's ``cellcensus_genes`` collection."""
    return f"{soma_uri.rstrip('/')}/{GENES}/{organism}"


def create_genes(
    root: soma.Collection[Any],
    plans: Sequence[OrganismPlan],
    *,
    layers: Sequence[str],
    compression: str,
) -> dict[str, dict[str, Any]]:
    """Create ``cellcensus_genes`` with a collection (and gene-major copies of the X ``layers``,
    none when empty) per organism with cells; returns per organism its collection URI and the
    copies' URIs by layer."""
    out: dict[str, dict[str, Any]] = {}
    genes = root.add_new_collection(GENES)
    genes.metadata["cellcensus_genes_version"] = GENES_FORMAT_VERSION
    for plan in plans:
        if not plan.n_obs:
            continue
        name = plan.organism.name
        org = genes.add_new_collection(name)
        copies: dict[str, str] = {}
        if layers:
            x = org.add_new_collection("X")
            for layer in (x for x in S.X_LAYERS if x in layers):
                arr = x.add_new_sparse_ndarray(
                    layer,
                    type=pa.float32(),
                    shape=(plan.n_obs, plan.n_var),
                    platform_config=platform_config(layer, compression),
                )
                arr.metadata[COPY_OF_KEY] = f"{S.CENSUS_DATA}/{name}/ms/{S.MEASUREMENT}/X/{layer}"
                copies[layer] = str(arr.uri)
                arr.close()
            x.close()
        out[name] = {"uri": str(org.uri), "gene_major": copies}
        org.close()
    genes.close()
    return out


@dataclass(frozen=True, kw_only=True)
class BandExtras:
    """What a band task writes into ``cellcensus_genes`` besides X and obs."""

    gene_major: tuple[tuple[str, str], ...]  # (X layer, URI) of each copy, in S.X_LAYERS order
    spill_dir: str  # the band's gene-major spill (removed when the band is done)
    summary_dir: str  # the band's summary partial sums (read by the driver)


def band_dirs(work: Path, organism: str, index: int) -> tuple[Path, Path]:
    """A band's spill and summary directories under the build's ``_work``."""
    base = work / "genes" / organism / f"{index:06d}"
    return base / "spill", base / "summary"


def band_extras(work: Path, organism: str, index: int, copies: dict[str, str]) -> BandExtras:
    """The extras of band ``index`` of an organism (``copies``: layer -> URI, may be empty)."""
    spill, summary = band_dirs(work, organism, index)
    return BandExtras(
        gene_major=tuple((layer, copies[layer]) for layer in S.X_LAYERS if layer in copies),
        spill_dir=str(spill),
        summary_dir=str(summary),
    )


class BandWork:
    """The gene-major spill and the summary partial sums of one band task.

    Parameters
    ----------
    extras
        Where to write.
    timestamp
        The band's timestamp: its fragments of the copies are written there (the band task
        deleted those of an earlier attempt first).
    shape
        (cells, genes) of the experiment.
    joinid_start
        The band's first cell.
    budget
        Values (and summary rows) held at once: the build's ``chunk_nnz``.
    """

    def __init__(
        self,
        extras: BandExtras,
        *,
        timestamp: int,
        shape: tuple[int, int],
        joinid_start: int,
        budget: int,
    ) -> None:
        self.extras = extras
        self.timestamp = timestamp
        self.spill = (
            GeneMajorSpill(
                Path(extras.spill_dir), shape, joinid_start, write_budget(budget), extras.gene_major
            )
            if extras.gene_major
            else None
        )
        self.piece = piece_values(budget)
        self.summary = BandSummary(
            Path(extras.summary_dir), int(shape[1]), summary_budget(budget), piece=self.piece
        )

    def add(
        self,
        cells: tuple[
            npt.NDArray[np.int64], npt.NDArray[np.int64], tuple[npt.NDArray[np.float32], ...]
        ],
        obs: pa.RecordBatch,
        first_joinid: int,
    ) -> None:
        """A chunk's cells (X's global order) and obs rows."""
        rows, cols, (raw, normalized) = cells
        if self.spill is not None:  # in pieces: the sort's temporaries stay a fraction of a chunk
            for a in range(0, len(rows), self.piece):
                b = a + self.piece
                values = {"raw": raw[a:b], "normalized": normalized[a:b]}
                self.spill.add(rows[a:b], cols[a:b], values)
        self.summary.add(rows, cols, normalized, obs, first_joinid)

    def finish(self, dictionaries: dict[str, list[str]]) -> None:
        """Write the band's gene-major fragments and its last summary run."""
        if self.spill is not None:
            self.spill.write(self.timestamp)
            self.spill.remove()
        self.summary.finish(dictionaries)

    def abort(self) -> None:
        """Remove the spill of a failed attempt."""
        if self.spill is not None:
            self.spill.remove()


def reduce_summary(
    plan: OrganismPlan,
    genes: dict[str, Any],
    summary_dirs: Sequence[Path],
    *,
    budget: int,
    compression: str,
    context: Any,  # noqa: ANN401 - a SOMATileDBContext
) -> tuple[int, int]:
    """The driver's step: the organism's summary DataFrames from its bands' partial sums."""
    n_groups, rows = write_summary(
        genes["uri"],
        summary_dirs,
        n_genes=plan.n_var,
        budget=budget,
        compression=compression,
        context=context,
    )
    logger.info(
        "%s: expression summary of %d cell groups, %d rows", plan.organism.name, n_groups, rows
    )
    return n_groups, rows
