"""Compute a build's numbers from its SOMA collection, in memory bounded by the read buffer.

Both experiment collections are read: ``census_data`` and, when the build has spatial datasets,
``census_spatial_sequencing``; each organism of each gets its own numbers.

Per-category counts of ``census_data`` come from ``census_info/summary_cell_counts`` (a few
thousand rows even for the full Census). Those rows count an organism's spatial cells too, so the
spatial experiments are read first, their categories counted from their (small) obs, and taken
off. ``obs`` is read once, in batches of the columns actually needed (``dataset_id``,
``is_primary_data``, ``nnz``, ``raw_sum``; a category column only when the census has no usable
``summary_cell_counts`` row for it, and for the spatial experiments), and reduced batch by batch
into counters and fixed-bin histograms: memory does not grow with the number of cells.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cellcensus.report._model import (
    BINS_PER_DECADE,
    CENSUS_DATA,
    CENSUS_SPATIAL,
    BuildSummary,
    CategoryCount,
    DatasetInfo,
    Histogram,
    OrganismSummary,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa
    import tiledbsoma as soma

__all__ = [
    "CHART_CATEGORIES",
    "HISTOGRAM_COLUMNS",
    "SUMMARY_CATEGORIES",
    "Sizes",
    "summarize_census",
]

logger = logging.getLogger(__name__)

#: Categories drawn as bar charts, per organism.
CHART_CATEGORIES = ("tissue_general", "assay", "disease", "cell_type")
#: Categories of ``census_info/summary_cell_counts`` (besides ``all``); a spatial experiment's
#: are counted from its obs, to be told apart from the ``census_data`` ones.
SUMMARY_CATEGORIES = (
    "assay",
    "cell_type",
    "disease",
    "self_reported_ethnicity",
    "sex",
    "suspension_type",
    "tissue",
    "tissue_general",
)
#: Per-cell obs columns drawn as histograms.
HISTOGRAM_COLUMNS = ("nnz", "raw_sum")
#: Read buffer per obs batch: bounds the memory of a report, whatever the census size.
READ_BUFFER_BYTES = 16 * 1024 * 1024
#: Histogram range: values 1 .. 10**9 (larger values fall into the last bin).
_DECADES = 9
_NBINS = _DECADES * BINS_PER_DECADE


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """Stored bytes of a build: ``soma/``, ``h5ads/`` and each H5AD by dataset id."""

    soma_bytes: int | None = None
    h5ads_bytes: int | None = None
    h5ad_files: Mapping[str, int] = field(default_factory=dict)


def read_buffer_config() -> dict[str, str | float]:
    """TileDB-SOMA read settings of report reads (bounded batches)."""
    return {"soma.init_buffer_bytes": str(READ_BUFFER_BYTES)}


# ---------------------------------------------------------------------------- accumulators
class _HistogramAcc:
    """A fixed log-bin histogram plus exact count, min, max and sum, fed batch by batch."""

    def __init__(self) -> None:
        import numpy as np

        self.counts = np.zeros(_NBINS, dtype=np.int64)
        self.below_one = 0
        self.n = 0
        self.total = 0.0
        self.lo = math.inf
        self.hi = -math.inf

    def add(self, values: npt.NDArray[Any]) -> None:
        import numpy as np

        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return
        self.n += int(v.size)
        self.total += float(v.sum())
        self.lo = min(self.lo, float(v.min()))
        self.hi = max(self.hi, float(v.max()))
        below = v < 1.0
        self.below_one += int(below.sum())
        pos = v[~below]
        if pos.size:
            # the epsilon keeps exact powers of ten (log10(1000) = 2.999...) in their own bin
            idx = np.floor(np.log10(pos) * BINS_PER_DECADE + 1e-9).astype(np.int64)
            np.clip(idx, 0, _NBINS - 1, out=idx)
            self.counts += np.bincount(idx, minlength=_NBINS)

    def result(self) -> Histogram:
        import numpy as np

        nz = np.flatnonzero(self.counts)
        first, last = (int(nz[0]), int(nz[-1])) if nz.size else (0, -1)
        return Histogram(
            count=self.n,
            below_one=self.below_one,
            first_bin=first,
            counts=tuple(int(c) for c in self.counts[first : last + 1]),
            min=None if self.n == 0 else self.lo,
            max=None if self.n == 0 else self.hi,
            mean=None if self.n == 0 else self.total / self.n,
        )


def _value_counts(
    col: pa.Array | pa.ChunkedArray, mask: npt.NDArray[np.bool_] | None = None
) -> Counter[str]:
    """Occurrences of each value of a (dictionary or plain) string column, optionally masked."""
    import numpy as np
    import pyarrow as pa

    out: Counter[str] = Counter()
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    offset = 0
    for chunk in chunks:
        m = None if mask is None else mask[offset : offset + len(chunk)]
        offset += len(chunk)
        if pa.types.is_dictionary(chunk.type):
            idx = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            if m is not None:
                idx = idx[m]
            idx = idx[idx >= 0]
            counts = np.bincount(idx, minlength=len(chunk.dictionary))
            values = chunk.dictionary.to_pylist()
            for i in np.flatnonzero(counts):
                out[str(values[i])] += int(counts[i])
        else:
            arr = chunk if m is None else chunk.filter(pa.array(m))
            for value, n in Counter(arr.to_pylist()).items():
                if value is not None:
                    out[str(value)] += n
    return out


@dataclass
class _ObsStats:
    """Reductions of one organism's obs."""

    cells: int = 0
    unique: int | None = None
    datasets: Counter[str] = field(default_factory=Counter)
    nnz_sum: int | None = None
    histograms: dict[str, _HistogramAcc] = field(default_factory=dict)
    categories: dict[str, tuple[Counter[str], Counter[str]]] = field(default_factory=dict)


def _primary_mask(batch: pa.Table) -> npt.NDArray[np.bool_]:
    import numpy as np

    col = batch.column("is_primary_data").combine_chunks().fill_null(False)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=bool)


def _reduce_batch(
    stats: _ObsStats, batch: pa.Table, columns: list[str], categories: list[tuple[str, str | None]]
) -> None:
    """Fold one batch of obs into ``stats``."""
    import numpy as np

    stats.cells += batch.num_rows
    primary = _primary_mask(batch) if "is_primary_data" in columns else None
    if primary is not None:
        stats.unique = (stats.unique or 0) + int(primary.sum())
    if "dataset_id" in columns:
        stats.datasets.update(_value_counts(batch.column("dataset_id")))
    if "nnz" in columns:
        nnz = batch.column("nnz").combine_chunks().to_numpy(zero_copy_only=False)
        stats.nnz_sum = (stats.nnz_sum or 0) + int(np.asarray(nnz, dtype=np.int64).sum())
    for name, acc in stats.histograms.items():
        acc.add(batch.column(name).combine_chunks().to_numpy(zero_copy_only=False))
    for cat, term in categories:
        keys = _category_keys(batch, cat, term)
        total, unique = stats.categories[cat]
        total.update(_value_counts(keys))
        if primary is not None:
            unique.update(_value_counts(keys, primary))


def _stream_obs(
    obs: soma.DataFrame, *, columns: list[str], categories: list[tuple[str, str | None]]
) -> _ObsStats:
    """One pass over ``obs`` reading only ``columns`` (plus the category columns)."""
    stats = _ObsStats(
        unique=0 if "is_primary_data" in columns else None,
        nnz_sum=0 if "nnz" in columns else None,
        histograms={name: _HistogramAcc() for name in HISTOGRAM_COLUMNS if name in columns},
        categories={cat: (Counter(), Counter()) for cat, _term in categories},
    )
    wanted = list(dict.fromkeys(columns + [c for pair in categories for c in pair if c]))
    if not wanted:  # nothing to reduce: the cell count is in the array's metadata
        stats.cells = int(obs.count)
        return stats
    for batch in obs.read(column_names=wanted):
        _reduce_batch(stats, batch, columns, categories)
    return stats


_SEP = "\x1f"


def _category_keys(batch: pa.Table, cat: str, term: str | None) -> pa.Array:
    """``label<US>term`` strings of one batch (label only when there is no term column)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    label = batch.column(cat).combine_chunks()
    if pa.types.is_dictionary(label.type):
        label = label.dictionary_decode()
    if term is None:
        t: pa.Array = pa.array(["na"] * len(label), type=pa.string())
    else:
        t = batch.column(term).combine_chunks()
        if pa.types.is_dictionary(t.type):
            t = t.dictionary_decode()
    joined = pc.binary_join_element_wise(
        label.cast(pa.large_string()),
        t.cast(pa.large_string()),
        pa.scalar(_SEP, type=pa.large_string()),
    )
    return pc.dictionary_encode(joined)


def _counts_to_rows(total: Counter[str], unique: Counter[str]) -> tuple[CategoryCount, ...]:
    rows = []
    for key, n in total.items():
        label, _, term = key.partition(_SEP)
        rows.append(
            CategoryCount(
                label=label, ontology_term_id=term or "na", total_cells=n, unique_cells=unique[key]
            )
        )
    return _sort_counts(rows)


def _sort_counts(rows: list[CategoryCount]) -> tuple[CategoryCount, ...]:
    return tuple(sorted(rows, key=lambda c: (-c.total_cells, c.label, c.ontology_term_id)))


# ---------------------------------------------------------------------------- census_info
def _read_df(coll: soma.Collection[Any], name: str, columns: list[str]) -> pa.Table | None:
    """Columns of ``coll[name]`` that exist (``None`` when the table is missing)."""
    if name not in coll:
        return None
    df = coll[name]
    have = [c for c in columns if c in df.schema.names]
    table: pa.Table = df.read(column_names=have).concat()
    return table


def _col(table: pa.Table, name: str) -> list[Any]:
    if name not in table.column_names:
        return [None] * table.num_rows
    col = table.column(name)
    return [None if v is None else v for v in col.to_pylist()]


@dataclass
class _Info:
    summary: dict[str, str] = field(default_factory=dict)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # organism name -> label
    names_by_term: dict[str, str] = field(default_factory=dict)  # NCBITaxon id -> name
    names_by_label: dict[str, str] = field(default_factory=dict)
    counts: dict[str, dict[str, list[CategoryCount]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _read_info(census: soma.Collection[Any]) -> _Info:
    info = _Info()
    if "census_info" not in census:
        info.notes.append("the census has no census_info collection")
        return info
    ci = census["census_info"]
    summary = _read_df(ci, "summary", ["label", "value"])
    if summary is not None:
        info.summary = {
            str(k): str(v)
            for k, v in zip(_col(summary, "label"), _col(summary, "value"), strict=True)
        }
    cols = [
        "soma_joinid",
        "dataset_id",
        "dataset_version_id",
        "dataset_title",
        "collection_name",
        "dataset_total_cell_count",
    ]
    datasets = _read_df(ci, "datasets", cols)
    if datasets is None:
        info.notes.append("census_info/datasets is missing: datasets are taken from obs")
    else:
        info.datasets = datasets.to_pylist()
    organisms = _read_df(
        ci, "organisms", ["organism", "organism_label", "organism_ontology_term_id"]
    )
    if organisms is not None:
        for name, label, term in zip(
            _col(organisms, "organism"),
            _col(organisms, "organism_label"),
            _col(organisms, "organism_ontology_term_id"),
            strict=True,
        ):
            if name:
                info.labels[str(name)] = str(label or name)
                if label:
                    info.names_by_label[str(label)] = str(name)
                if term:
                    info.names_by_term[str(term)] = str(name)
    scc = _read_df(
        ci,
        "summary_cell_counts",
        [
            "organism",
            "category",
            "label",
            "ontology_term_id",
            "total_cell_count",
            "unique_cell_count",
        ],
    )
    if scc is None:
        info.notes.append(
            "census_info/summary_cell_counts is missing: category counts are computed from obs"
        )
        return info
    for org, cat, label, term, total, unique in zip(
        _col(scc, "organism"),
        _col(scc, "category"),
        _col(scc, "label"),
        _col(scc, "ontology_term_id"),
        _col(scc, "total_cell_count"),
        _col(scc, "unique_cell_count"),
        strict=True,
    ):
        name = _organism_name(str(org), info)
        info.counts.setdefault(name, {}).setdefault(str(cat), []).append(
            CategoryCount(
                label=str(label),
                ontology_term_id=str(term if term is not None else "na"),
                total_cells=int(total or 0),
                unique_cells=int(unique or 0),
            )
        )
    return info


def _organism_name(value: str, info: _Info) -> str:
    """Machine name (``homo_sapiens``) of an organism given by name or label."""
    if value in info.labels:
        return value
    if value in info.names_by_label:
        return info.names_by_label[value]
    return value.strip().lower().replace(" ", "_")


# ---------------------------------------------------------------------------- one organism
def _obs_columns(
    name: str,
    names: set[str],
    *,
    histograms: bool,
    primary: bool,
    count_from_obs: Iterable[str],
    required: Iterable[str],
    notes: list[str],
) -> tuple[list[str], list[tuple[str, str | None]]]:
    """obs columns to stream, and (category, term column) pairs to count from obs.

    ``count_from_obs`` are the categories to count (those the experiment's
    ``summary_cell_counts`` rows cannot give); a missing column of one of ``required`` is noted.
    """
    columns: list[str] = []
    if "dataset_id" in names:
        columns.append("dataset_id")
    if "is_primary_data" in names and primary:
        columns.append("is_primary_data")
    if histograms:
        for col in HISTOGRAM_COLUMNS:
            if col in names:
                columns.append(col)
            else:
                notes.append(f"{name}: obs has no {col!r} column; no {col} histogram")
    fallback: list[tuple[str, str | None]] = []
    required = set(required)
    for cat in count_from_obs:
        if cat in names:
            term = f"{cat}_ontology_term_id"
            fallback.append((cat, term if term in names else None))
        elif cat in required:
            notes.append(f"{name}: no {cat!r} counts (not in summary_cell_counts nor obs)")
    return columns, fallback


def _subtract(
    rows: list[CategoryCount], minus: Mapping[tuple[str, str], tuple[int, int]]
) -> list[CategoryCount] | None:
    """``rows`` less ``minus``, matched by (label, term id); rows left with no cells are dropped.

    A ``minus`` entry whose label ``rows`` lacks goes to the one row of its term id, if there is
    exactly one: builders group ``summary_cell_counts`` by term id, so a category without ids
    (``suspension_type``, all ``na``) is one row labelled by the experiment counted first.
    ``None`` when an entry has no row or more cells than its row (the two do not describe the
    same cells).
    """
    index = {(c.label, c.ontology_term_id): i for i, c in enumerate(rows)}
    by_term: dict[str, list[int]] = {}
    for i, c in enumerate(rows):
        by_term.setdefault(c.ontology_term_id, []).append(i)
    left = [(c.total_cells, c.unique_cells) for c in rows]
    for (label, term), (total, unique) in minus.items():
        if not total and not unique:
            continue
        same = by_term.get(term, [])
        found = index.get((label, term))
        if found is None and len(same) != 1:
            return None
        i = same[0] if found is None else found
        t, u = left[i][0] - total, left[i][1] - unique
        if t < 0 or u < 0:
            return None
        left[i] = (t, u)
    return [
        CategoryCount(
            label=c.label, ontology_term_id=c.ontology_term_id, total_cells=t, unique_cells=u
        )
        for c, (t, u) in zip(rows, left, strict=True)
        if t
    ]


def _data_counts(
    name: str,
    scc: Mapping[str, list[CategoryCount]],
    spatial: OrganismSummary | None,
    n_obs: int,
    notes: list[str],
) -> dict[str, list[CategoryCount]]:
    """The ``summary_cell_counts`` rows of one ``census_data`` experiment.

    ``census_info/summary_cell_counts`` counts an organism's spatial cells (of
    ``census_spatial_sequencing``) in the same rows as its single-cell ones, as the official
    builder does. When the organism has spatial cells and the ``all`` row holds both, the spatial
    counts (from the spatial obs) are taken off; when it holds ``census_data`` only (builders
    that count it apart), the rows are used as they are. Otherwise nothing is trusted and the
    categories are counted from obs (noted).
    """
    if not scc:
        return {}
    sp_cells = spatial.total_cells if spatial is not None else 0
    if sp_cells == 0:
        return dict(scc)
    all_total = sum(c.total_cells for c in scc["all"]) if "all" in scc else None
    if all_total == n_obs:
        return dict(scc)  # census_data only
    if all_total == n_obs + sp_cells and spatial is not None:
        out: dict[str, list[CategoryCount]] = {}
        sp_unique = spatial.unique_cells or 0
        for cat, rows in scc.items():
            if cat == "all":
                minus = {(c.label, c.ontology_term_id): (sp_cells, sp_unique) for c in rows[:1]}
            elif cat in spatial.categories:
                minus = {
                    (c.label, c.ontology_term_id): (c.total_cells, c.unique_cells)
                    for c in spatial.categories[cat]
                }
            else:
                notes.append(
                    f"{name}: census_info/summary_cell_counts {cat!r} includes spatial cells and "
                    "the spatial obs has no such column; counted from obs where possible"
                )
                continue
            got = _subtract(rows, minus)
            if got is None:
                break
            out[cat] = got
        else:
            return out
    notes.append(
        f"{name}: census_info/summary_cell_counts holds {all_total} cells, census_data has "
        f"{n_obs} and census_spatial_sequencing {sp_cells}; categories are counted from obs"
    )
    return {}


def _summarize_experiment(
    name: str,
    exp: soma.Experiment,
    info: _Info,
    *,
    counts: Mapping[str, list[CategoryCount]],
    count_from_obs: Iterable[str],
    histograms: bool,
    notes: list[str],
    where: str,
) -> tuple[OrganismSummary, Counter[str]]:
    """Numbers of one experiment: ``counts`` (its own ``summary_cell_counts`` rows) plus one
    streamed pass over obs for the rest."""
    import tiledbsoma as soma

    obs = exp.obs
    names = set(obs.schema.names)
    columns, fallback = _obs_columns(
        where,
        names,
        histograms=histograms,
        primary=histograms or "all" not in counts,
        count_from_obs=[c for c in count_from_obs if c not in counts],
        required=CHART_CATEGORIES,
        notes=notes,
    )
    logger.info("reading obs of %s (%s)", where, ", ".join(columns + [c for c, _ in fallback]))
    stats = _stream_obs(obs, columns=columns, categories=fallback)

    categories: dict[str, tuple[CategoryCount, ...]] = {
        cat: _sort_counts(list(rows)) for cat, rows in counts.items() if cat != "all"
    }
    for cat, (total, unique) in stats.categories.items():
        categories[cat] = _counts_to_rows(total, unique)

    unique_cells = stats.unique
    if unique_cells is None and "all" in counts:
        unique_cells = sum(c.unique_cells for c in counts["all"])
    if "all" in counts:
        scc_total = sum(c.total_cells for c in counts["all"])
        if scc_total != stats.cells:
            notes.append(
                f"{where}: census_info/summary_cell_counts says {scc_total} cells, obs has "
                f"{stats.cells}"
            )
    genes: int | None = None
    nnz = stats.nnz_sum
    if "RNA" in exp.ms:
        rna = exp.ms["RNA"]
        genes = int(rna.var.count)
        if nnz is None and "X" in rna and "raw" in rna.X:
            raw = rna.X["raw"]
            if isinstance(raw, soma.SparseNDArray):
                nnz = int(raw.nnz)
    else:
        notes.append(f"{where}: no RNA measurement")
    summary = OrganismSummary(
        name=name,
        label=info.labels.get(name) or name.replace("_", " ").capitalize(),
        total_cells=stats.cells,
        unique_cells=unique_cells,
        genes=genes,
        nnz=nnz,
        datasets=len(stats.datasets) if "dataset_id" in columns else None,
        categories=categories,
        histograms={k: acc.result() for k, acc in stats.histograms.items()},
    )
    return summary, stats.datasets


def _experiments(
    census: soma.Collection[Any], collection: str
) -> list[tuple[str, soma.Experiment]]:
    import tiledbsoma as soma

    if collection not in census:
        return []
    coll = census[collection]
    out = []
    for name in sorted(coll.keys()):
        exp = coll[name]
        if isinstance(exp, soma.Experiment):
            out.append((name, exp))
    return out


# ---------------------------------------------------------------------------- datasets
def _datasets(
    info: _Info,
    by_experiment: dict[tuple[str, str], Counter[str]],
    build_info: Mapping[str, Any] | None,
    sizes: Sizes | None,
) -> tuple[DatasetInfo, ...]:
    inputs = {
        str(i.get("dataset_id")): i
        for i in (build_info or {}).get("inputs", [])
        if isinstance(i, Mapping) and i.get("dataset_id")
    }
    organism_of: dict[str, str] = {}
    collection_of: dict[str, str] = {}
    cells_of: Counter[str] = Counter()
    for (coll, org), counts in sorted(by_experiment.items()):
        for did, n in counts.items():
            organism_of.setdefault(did, org)
            collection_of.setdefault(did, coll)
            cells_of[did] += n
    rows: dict[str, DatasetInfo] = {}
    for d in info.datasets:
        did = str(d.get("dataset_id"))
        rows[did] = DatasetInfo(
            dataset_id=did,
            dataset_version_id=d.get("dataset_version_id") or None,
            title=d.get("dataset_title") or None,
            collection_name=d.get("collection_name") or None,
            cells=d.get("dataset_total_cell_count"),
        )
    for did in cells_of:
        rows.setdefault(did, DatasetInfo(dataset_id=did))
    if not rows:
        for did, i in inputs.items():
            if i.get("status") == "included":
                rows[did] = DatasetInfo(dataset_id=did)
    out = []
    for did, row in sorted(rows.items()):
        inp = inputs.get(did, {})
        organism = organism_of.get(did)
        if organism is None and inp.get("organism_ontology_term_id"):
            organism = info.names_by_term.get(str(inp["organism_ontology_term_id"]))
        cells = row.cells
        if cells is None:
            cells = cells_of.get(did) if did in cells_of else inp.get("n_obs_census")
        h5ad = (sizes.h5ad_files.get(did) if sizes else None) or inp.get("size")
        collection: str | None = collection_of.get(did) or _str(inp.get("collection"))
        out.append(
            DatasetInfo(
                dataset_id=did,
                dataset_version_id=row.dataset_version_id,
                title=row.title,
                collection_name=row.collection_name,
                organism=organism,
                cells=None if cells is None else int(cells),
                sha256=inp.get("sha256") or None,
                h5ad_bytes=None if h5ad is None else int(h5ad),
                collection=collection,
            )
        )
    return tuple(out)


def _inputs(build_info: Mapping[str, Any] | None) -> dict[str, int]:
    inputs = [i for i in (build_info or {}).get("inputs", []) if isinstance(i, Mapping)]
    if not inputs:
        return {}
    status = Counter(str(i.get("status") or "unknown") for i in inputs)
    return {"total": len(inputs), **status}


# ---------------------------------------------------------------------------- entry point
def summarize_census(
    soma_uri: str,
    *,
    tag: str,
    context: soma.SOMATileDBContext,
    build_info: Mapping[str, Any] | None = None,
    sizes: Sizes | None = None,
    histograms: bool = True,
) -> BuildSummary:
    """Compute the numbers of one build, per collection (``census_data`` and, when present,
    ``census_spatial_sequencing``) and organism; totals over both.

    Parameters
    ----------
    soma_uri
        The build's SOMA collection (local path or URI).
    tag
        The build tag.
    context
        TileDB-SOMA context (storage settings; its read buffer bounds memory).
    build_info
        Parsed ``build.json`` (dataset sha256, inputs, versions), if any.
    sizes
        Stored bytes, if known.
    histograms
        Read per-cell ``nnz`` / ``raw_sum`` for histograms (a full pass over obs); without, only
        what the diff needs is read.

    Returns
    -------
    BuildSummary
        Schema versions, totals, per-organism counts of each collection, categories,
        histograms and datasets. Where the census disagrees with itself (``census_info``
        against the experiments), ``notes`` say so.
    """
    import tiledbsoma as soma

    bi: Mapping[str, Any] = build_info or {}
    notes: list[str] = []
    organisms: list[OrganismSummary] = []
    spatial: list[OrganismSummary] = []
    by_experiment: dict[tuple[str, str], Counter[str]] = {}
    with soma.open(soma_uri, context=context) as census:
        if not isinstance(census, soma.Collection):
            from cellcensus.errors import BadInputError

            msg = f"{soma_uri} is a {type(census).__name__}, not a census collection"
            raise BadInputError(msg)
        info = _read_info(census)
        notes.extend(info.notes)
        created_on = census.metadata.get("created_on")
        # spatial first: census_info/summary_cell_counts mixes its cells into the organism rows
        for name, exp in _experiments(census, CENSUS_SPATIAL):
            org, ds = _summarize_experiment(
                name,
                exp,
                info,
                counts={},
                count_from_obs=SUMMARY_CATEGORIES,
                histograms=histograms,
                notes=notes,
                where=f"{CENSUS_SPATIAL}/{name}",
            )
            if org.total_cells:
                spatial.append(org)
                by_experiment[(CENSUS_SPATIAL, name)] = ds
        spatial_by_name = {o.name: o for o in spatial}
        if CENSUS_DATA not in census:
            notes.append("the census has no census_data collection")
        for name, exp in _experiments(census, CENSUS_DATA):
            counts = _data_counts(
                name,
                info.counts.get(name, {}),
                spatial_by_name.get(name),
                int(exp.obs.count),
                notes,
            )
            org, ds = _summarize_experiment(
                name,
                exp,
                info,
                counts=counts,
                count_from_obs=CHART_CATEGORIES,
                histograms=histograms,
                notes=notes,
                where=name,
            )
            if org.total_cells:
                organisms.append(org)
                by_experiment[(CENSUS_DATA, name)] = ds
    organisms.sort(key=lambda o: (-o.total_cells, o.name))
    spatial.sort(key=lambda o: (-o.total_cells, o.name))
    every = organisms + spatial
    unique = [o.unique_cells for o in every]
    nnz = [o.nnz for o in every]
    total = sum(o.total_cells for o in every)
    _check_totals(info, total, unique, notes)
    return BuildSummary(
        tag=tag,
        build_date=_str(bi.get("created_on")) or _str(created_on),
        census_schema_version=info.summary.get("census_schema_version")
        or _str(bi.get("census_schema_version")),
        dataset_schema_version=info.summary.get("dataset_schema_version")
        or _str(bi.get("dataset_schema_version")),
        cellcensus_version=_str(bi.get("cellcensus_version")),
        total_cells=total,
        unique_cells=None if any(u is None for u in unique) else sum(u or 0 for u in unique),
        nnz=None if any(n is None for n in nnz) else sum(n or 0 for n in nnz),
        soma_bytes=sizes.soma_bytes if sizes else None,
        h5ads_bytes=sizes.h5ads_bytes if sizes else None,
        inputs=_inputs(bi),
        organisms=tuple(organisms),
        spatial_organisms=tuple(spatial),
        datasets=_datasets(info, by_experiment, bi, sizes),
        notes=tuple(notes),
    )


def _check_totals(info: _Info, total: int, unique: list[int | None], notes: list[str]) -> None:
    """Note where ``census_info/summary`` disagrees with the experiments' cells."""
    for label, got in (
        ("total_cell_count", total),
        (
            "unique_cell_count",
            None if any(u is None for u in unique) else sum(u or 0 for u in unique),
        ),
    ):
        said = info.summary.get(label)
        if said is not None and got is not None and said.strip() != str(got):
            notes.append(
                f"census_info/summary says {label} {said}, its experiments (census_data and "
                f"{CENSUS_SPATIAL}) hold {got}"
            )


def _str(v: object) -> str | None:
    return None if v is None or v == "" else str(v)
