"""First pass over one dataset: checks, inclusion counts, vocabularies, summary counts, blocks.

A dataset is scanned by several tasks (in parallel on Dask when configured), so that no task grows
with the size of a dataset: a *head* task checks ``uns`` and ``var`` and writes the dataset's
census features; *part* tasks read obs rows ``SCAN_PART_ROWS`` at a time (in blocks of
``OBS_CHUNK_ROWS``) and write what they learn (``part-<start>.json``); a *finish* task merges
the parts into ``scan.json`` and refuses duplicate cell names. Nothing goes into a dataset-length
array except, in the finish task, a 64-bit hash of each cell's obs index (8 bytes per cell of the
dataset, written sorted by each part), which finds duplicate cell names without a second pass.
Per block of rows the scan records how many cells the census includes and how many values they
store, which is all the planner needs to cut the census into bands of work. X is only read here
when values must be checked up front (``--on-error skip``).

Spatial datasets (every cell of a spatial assay, ``S.SPATIAL_ASSAYS``) are scanned the same way
and also checked for what their scene needs (``uns["spatial"]``, the image's dtype and shape, the
locations of the included spots, integer ``in_tissue``/``array_row``/``array_col``), so that bad
spatial input is refused before anything is written. A dataset mixing spatial and other assays is
refused.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from cellcensus import _spatial
from cellcensus.builder import _schema as S
from cellcensus.builder._allocator import release_free_memory
from cellcensus.builder._source import OBS_CHUNK_ROWS, ColumnInfo, H5ADSource
from cellcensus.builder._state import atomic_write_bytes
from cellcensus.builder._terms import (
    DICT_COLUMNS,
    TERM_COLUMNS,
    check_terms,
    gene_reference_version,
    tissue_general_columns,
    unknown_genes,
)
from cellcensus.builder._xmath import is_nonnegative_integral
from cellcensus.errors import BadInputError

logger = logging.getLogger(__name__)

SCAN_FORMAT_VERSION = 3
#: Source rows one scan part task reads (eight obs blocks).
SCAN_PART_ROWS = 8 * OBS_CHUNK_ROWS
_WARNINGS_SHOWN = 5


@dataclass(frozen=True, kw_only=True)
class Block:
    """A run of source rows: how many of its cells the census takes, and their stored values."""

    start: int
    stop: int
    n_included: int
    n_values: int  # stored values of the included cells (CSR: exact; else the average)


@dataclass(frozen=True, kw_only=True)
class ScanSummary:
    """What the driver keeps of one dataset's scan (small; the rest is in the work directory)."""

    dataset_id: str
    key: str  # names the dataset's files in the work directory (id + source checksum)
    path: str
    organism_term: str
    n_obs: int
    n_included: int = 0
    n_primary: int = 0
    n_values: int = 0
    n_features: int = 0
    excluded_reason: str | None = None
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0  # wall time of the scan task
    spatial_assay: str | None = None  # the one assay of a spatial dataset

    @property
    def spatial(self) -> bool:
        """Whether the dataset's cells go to census_spatial_sequencing (not census_data)."""
        return self.spatial_assay is not None

    @property
    def contributes(self) -> bool:
        """Whether the dataset adds cells to a census experiment."""
        return self.n_included > 0 and self.excluded_reason is None


@dataclass(kw_only=True)
class ScanDetail:
    """The per-dataset facts the planner and band tasks read back from the work directory."""

    column_info: dict[str, ColumnInfo] = field(default_factory=dict)
    values: dict[str, list[str]] = field(default_factory=dict)  # included values per column
    summary: list[tuple[str, str, str, bool, int]] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    has_full_gene_cells: bool = False
    assays: list[str] = field(default_factory=list)  # of every cell, included or not
    spatial_columns: list[str] = field(default_factory=list)  # in_tissue, ... that it has


def scan_dir(work_dir: str | Path, key: str) -> Path:
    """The directory of one dataset's scan files."""
    return Path(work_dir) / "scan" / key


def features_path(work_dir: str | Path, key: str) -> Path:
    """Kept features of a dataset: feature_id, name, length, type and local position."""
    return scan_dir(work_dir, key) / "features.parquet"


def _scan_json(work_dir: str | Path, key: str) -> Path:
    return scan_dir(work_dir, key) / "scan.json"


def load_summary(work_dir: str | Path, key: str) -> ScanSummary | None:
    """The summary of a finished scan, or None when the dataset was not scanned (completely)."""
    path = _scan_json(work_dir, key)
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    if doc.get("format_version") != SCAN_FORMAT_VERSION:
        return None
    s = doc["summary"]
    return ScanSummary(**{**s, "warnings": tuple(s.get("warnings", ()))})


def load_detail(work_dir: str | Path, key: str) -> ScanDetail:
    """The planner's facts of a finished scan."""
    doc = json.loads(_scan_json(work_dir, key).read_text())
    d = doc["detail"]
    return ScanDetail(
        column_info={
            c: ColumnInfo(i["categorical"], tuple(i["categories"]) if i["categories"] else None)
            for c, i in d["column_info"].items()
        },
        values={c: list(v) for c, v in d["values"].items()},
        summary=[(c, t, lab, bool(p), int(n)) for c, t, lab, p, n in d["summary"]],
        blocks=[Block(**b) for b in d["blocks"]],
        has_full_gene_cells=bool(d["has_full_gene_cells"]),
        assays=list(d["assays"]),
        spatial_columns=list(d["spatial_columns"]),
    )


def _save(work_dir: str | Path, summary: ScanSummary, detail: ScanDetail) -> None:
    doc = {
        "format_version": SCAN_FORMAT_VERSION,
        "summary": asdict(summary),
        "detail": {
            "column_info": {
                c: {"categorical": i.categorical, "categories": list(i.categories or ())}
                for c, i in detail.column_info.items()
            },
            "values": detail.values,
            "summary": [list(r) for r in detail.summary],
            "blocks": [asdict(b) for b in detail.blocks],
            "has_full_gene_cells": detail.has_full_gene_cells,
            "assays": detail.assays,
            "spatial_columns": detail.spatial_columns,
        },
    }
    # written last: its presence marks the scan finished
    atomic_write_bytes(_scan_json(work_dir, summary.key), json.dumps(doc).encode())


def _check_uns(src: H5ADSource) -> str:
    version = src.uns_str("schema_version")
    if version not in S.ACCEPTED_CXG_SCHEMA_VERSIONS:
        msg = (
            f"dataset schema version {version!r} is not accepted (accepted: "
            f"{', '.join(S.ACCEPTED_CXG_SCHEMA_VERSIONS)})"
        )
        raise BadInputError(msg, dataset_id=src.dataset_id, field="uns.schema_version")
    organism = src.uns_str("organism_ontology_term_id")
    if not organism:
        msg = "missing uns['organism_ontology_term_id'] (required by dataset schema 7)"
        raise BadInputError(msg, dataset_id=src.dataset_id, field="uns.organism_ontology_term_id")
    return organism


def _features(
    src: H5ADSource, organism: S.Organism, unknown: Literal["error", "drop"]
) -> tuple[pd.DataFrame, list[str]]:
    """The dataset's census features (with local positions) and warnings about dropped ones."""
    missing = [c for c in S.REQUIRED_VAR_COLUMNS if c not in src.var_columns()]
    if missing:
        where = "raw.var" if src.has_raw else "var"
        msg = (
            f"required {where} column is missing (published H5ADs carry "
            f"{', '.join(S.REQUIRED_VAR_COLUMNS)})"
        )
        raise BadInputError(msg, dataset_id=src.dataset_id, field=missing[0])
    var = src.read_var(list(S.REQUIRED_VAR_COLUMNS))
    if not var.index.is_unique:
        dup = var.index[var.index.duplicated()][0]
        msg = f"feature id {dup!r} appears twice"
        raise BadInputError(msg, dataset_id=src.dataset_id, field="var.index")
    keep = (var["feature_biotype"].astype(str) == "gene") & (
        var["feature_reference"].astype(str) == organism.ontology_term_id
    )
    keep_arr = keep.to_numpy()
    warnings: list[str] = []
    bad = unknown_genes(organism, var.index[keep_arr])
    if bad:
        shown = ", ".join(bad[:_WARNINGS_SHOWN]) + (" ..." if len(bad) > _WARNINGS_SHOWN else "")
        reference = gene_reference_version(organism.name)
        if unknown == "error":
            msg = (
                f"{len(bad)} feature id(s) are not genes of {organism.label}'s reference "
                f"({reference}): {shown}; fix the dataset, or build with --unknown-genes drop "
                "to leave such features out"
            )
            raise BadInputError(msg, dataset_id=src.dataset_id, field="var.index")
        keep_arr &= ~var.index.isin(bad)
        warnings.append(
            f"{len(bad)} feature id(s) not in {organism.label}'s gene reference ({reference}) "
            f"were left out: {shown}"
        )
    kept = var[keep_arr]
    lengths = pd.to_numeric(kept["feature_length"], errors="coerce")
    if lengths.isna().any() or (lengths < 0).any():
        msg = "feature_length must be a non-negative integer"
        raise BadInputError(msg, dataset_id=src.dataset_id, field="feature_length")
    features = pd.DataFrame(
        {
            "feature_id": kept.index.astype(str),
            "feature_name": kept["feature_name"].astype(str).to_numpy(),
            "feature_length": lengths.astype(np.int64).to_numpy(),
            "feature_type": kept["feature_type"].astype(str).to_numpy(),
            "position": np.flatnonzero(keep_arr).astype(np.int64),
        }
    )
    return features, warnings


def _count_summary(acc: Counter[tuple[str, str, str, bool]], obs: pd.DataFrame) -> None:
    primary = obs["is_primary_data"].to_numpy(dtype=bool)
    for category, term_col, label_col in S.SUMMARY_CATEGORIES:
        # grouping the (usually categorical) columns themselves: no per-cell string conversion
        terms = obs[term_col] if term_col else pd.Series("na", index=obs.index)
        frame = pd.DataFrame({"t": terms, "l": obs[label_col], "p": primary})
        counts = frame.groupby(["t", "l", "p"], observed=True, sort=False, dropna=False).size()
        for key, n in counts.items():
            t, lab, p = cast("tuple[str, str, bool]", key)
            if n:
                acc[(category, str(t), str(lab), bool(p))] += int(n)


def include_mask(obs: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Which cells the census takes (reads the columns ``S.INCLUSION_COLUMNS``).

    An accepted tissue type and either an accepted RNA-seq assay (census_data) or a spatial assay
    and ``is_primary_data`` True (census_spatial_sequencing). A dataset's cells are all of one
    kind (the scan refuses a mix), so this per-cell rule is the rule of its experiment.
    """
    tissue = obs["tissue_type"].isin(S.ACCEPTED_TISSUE_TYPES).to_numpy(dtype=bool)
    assay = obs["assay_ontology_term_id"]
    mask = tissue & assay.isin(sorted(S.accepted_assays())).to_numpy(dtype=bool)
    spatial = assay.isin(S.SPATIAL_ASSAYS).to_numpy(dtype=bool)
    if spatial.any():
        primary = obs["is_primary_data"].eq(True).fillna(value=False).to_numpy(dtype=bool)
        mask |= tissue & spatial & primary
    return mask


def _check_primary(src: H5ADSource, obs: pd.DataFrame) -> None:
    col = obs["is_primary_data"]
    if col.dtype != bool:
        msg = f"is_primary_data must be boolean, not {col.dtype}"
        raise BadInputError(msg, dataset_id=src.dataset_id, field="is_primary_data")


def _hash_names(names: pd.Series) -> npt.NDArray[np.uint64]:
    return pd.util.hash_array(names.astype(str).to_numpy(dtype=object), categorize=False)


def _check_duplicate_names(src: H5ADSource, hashes: npt.NDArray[np.uint64]) -> None:
    """Refuse a dataset whose obs index repeats a name; ``hashes`` (all cells) is sorted here."""
    hashes.sort()
    colliding = set(hashes[1:][hashes[1:] == hashes[:-1]].tolist())
    if not colliding:
        return
    # equal hashes: compare the names behind them (a 64-bit collision is not a duplicate)
    seen: dict[str, int] = {}
    wanted = np.array(sorted(colliding), dtype=np.uint64)
    for start in range(0, src.n_obs, OBS_CHUNK_ROWS):
        names = src.obs_index(start, min(start + OBS_CHUNK_ROWS, src.n_obs)).astype(str)
        for offset in np.flatnonzero(np.isin(_hash_names(names), wanted)).tolist():
            name, row = str(names.iloc[offset]), start + offset
            if name in seen:
                msg = (
                    f"obs index (cell name) {name!r} appears twice (rows {seen[name]} and "
                    f"{row}); cell names must be unique"
                )
                raise BadInputError(msg, dataset_id=src.dataset_id, field="obs.index")
            seen[name] = row


@dataclass(kw_only=True)
class _Part:
    """What one part task learned about its rows (saved as ``part-<start>.json``)."""

    start: int
    stop: int
    values: dict[str, list[str]]
    summary: list[tuple[str, str, str, bool, int]]
    blocks: list[Block]
    n_included: int
    n_primary: int
    n_values: int
    has_full_gene_cells: bool
    seconds: float
    assays: list[str]  # of every row, included or not


def _part_json(work_dir: str | Path, key: str, start: int, stop: int) -> Path:
    return scan_dir(work_dir, key) / f"part-{start:012d}-{stop:012d}.json"


def _part_hashes(work_dir: str | Path, key: str, start: int, stop: int) -> Path:
    return scan_dir(work_dir, key) / f"part-{start:012d}-{stop:012d}.hashes.npy"


def part_ranges(n_obs: int, part_rows: int = SCAN_PART_ROWS) -> list[tuple[int, int]]:
    """The row ranges of a dataset's scan part tasks."""
    return [(a, min(a + part_rows, n_obs)) for a in range(0, n_obs, part_rows)] or [(0, 0)]


def part_done(work_dir: str | Path, key: str, start: int, stop: int) -> bool:
    """Whether the part task of rows ``[start, stop)`` finished (a resumed build skips it)."""
    return _part_json(work_dir, key, start, stop).exists()


def _load_part(work_dir: str | Path, key: str, start: int, stop: int) -> _Part:
    d = json.loads(_part_json(work_dir, key, start, stop).read_text())
    return _Part(
        start=int(d["start"]),
        stop=int(d["stop"]),
        values={c: list(v) for c, v in d["values"].items()},
        summary=[(c, t, lab, bool(p), int(n)) for c, t, lab, p, n in d["summary"]],
        blocks=[Block(**b) for b in d["blocks"]],
        n_included=int(d["n_included"]),
        n_primary=int(d["n_primary"]),
        n_values=int(d["n_values"]),
        has_full_gene_cells=bool(d["has_full_gene_cells"]),
        seconds=float(d["seconds"]),
        assays=list(d["assays"]),
    )


def _check_block_values(src: H5ADSource, start: int, stop: int, positions: Any) -> None:  # noqa: ANN401
    """Refuse raw counts that are negative or not whole numbers (included cells and features)."""
    obs = src.read_obs(list(S.INCLUSION_COLUMNS), start, stop)
    x = src.read_x_rows(start, stop)[include_mask(obs)][:, positions]
    if not is_nonnegative_integral(x.data):
        msg = "raw counts must be non-negative whole numbers"
        raise BadInputError(msg, dataset_id=src.dataset_id, field=src.x_name)


def _tally(
    src: H5ADSource,
    inc: pd.DataFrame,
    values: dict[str, set[str]],
    summary: Counter[tuple[str, str, str, bool]],
) -> None:
    """Check the included cells of a block; add their vocabularies and summary counts."""
    _check_primary(src, inc)
    if inc["observation_joinid"].isna().any():
        msg = "observation_joinid has missing values"
        raise BadInputError(msg, dataset_id=src.dataset_id, field="observation_joinid")
    for c in DICT_COLUMNS:
        col = inc[c]
        if col.isna().any():
            msg = "column has missing values"
            raise BadInputError(msg, dataset_id=src.dataset_id, field=c)
        values[c].update(str(v) for v in pd.unique(col))
    general_id, general_label = tissue_general_columns(inc["tissue_ontology_term_id"])
    inc = inc.assign(tissue_general_ontology_term_id=general_id, tissue_general=general_label)
    _count_summary(summary, inc)


def scan_part(
    dataset_id: str,
    path: str,
    *,
    key: str,
    work_dir: str,
    start: int,
    stop: int,
    check_values: bool,
) -> float:
    """Scan obs rows ``[start, stop)`` of one staged H5AD; save the result; its wall time.

    Raises
    ------
    BadInputError
        Missing values, a non-boolean ``is_primary_data``, or (when ``check_values``) raw counts
        that are negative or not whole numbers.
    """
    t0 = time.perf_counter()
    values: dict[str, set[str]] = {c: set() for c in DICT_COLUMNS}
    summary: Counter[tuple[str, str, str, bool]] = Counter()
    blocks: list[Block] = []
    full_gene = sorted(S.full_gene_assays())
    n_included = n_primary = n_values = 0
    has_full_gene = False
    hashes = np.empty(stop - start, dtype=np.uint64)
    positions = (
        pd.read_parquet(features_path(work_dir, key), columns=["position"])["position"].to_numpy()
        if check_values
        else None
    )
    assays: set[str] = set()
    with H5ADSource(path, dataset_id) as src:
        locations = _has_locations(src)
        for a in range(start, stop, OBS_CHUNK_ROWS):
            b = min(a + OBS_CHUNK_ROWS, stop)
            hashes[a - start : b - start] = _hash_names(src.obs_index(a, b))
            obs = src.read_obs(list(S.REQUIRED_OBS_COLUMNS), a, b)
            assays.update(str(v) for v in pd.unique(obs["assay_ontology_term_id"].dropna()))
            mask = include_mask(obs)
            inc = obs[mask]
            if (
                locations
                and len(inc)
                and inc["assay_ontology_term_id"].isin(S.SPATIAL_ASSAYS).any()
            ):
                # the included spots' locations must be finite (checked here, in blocks)
                rows = np.flatnonzero(mask).astype(np.int64)
                _spatial.location_rows(src.file, dataset_id=src.dataset_id, start=a, rows=rows)
            ptr = src.indptr(a, b)
            if ptr is not None:
                block_values = int(np.diff(ptr)[mask].sum())
            else:
                block_values = src.row_nnz(a, b) * int(mask.sum()) // max(b - a, 1)
            blocks.append(Block(start=a, stop=b, n_included=len(inc), n_values=block_values))
            if len(inc) == 0:
                continue
            _tally(src, inc, values, summary)
            n_included += len(inc)
            n_primary += int(inc["is_primary_data"].to_numpy(dtype=bool).sum())
            n_values += block_values
            has_full_gene |= bool(inc["assay_ontology_term_id"].isin(full_gene).any())
            if positions is not None:
                _check_block_values(src, a, b, positions)
    hashes.sort()
    out = _part_hashes(work_dir, key, start, stop)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npy")
    np.save(tmp, hashes)
    tmp.replace(out)
    seconds = time.perf_counter() - t0
    doc = {
        "start": start,
        "stop": stop,
        "values": {c: sorted(v) for c, v in values.items()},
        "summary": [[c, t, lab, p, n] for (c, t, lab, p), n in sorted(summary.items())],
        "blocks": [asdict(b) for b in blocks],
        "n_included": n_included,
        "n_primary": n_primary,
        "n_values": n_values,
        "has_full_gene_cells": has_full_gene,
        "seconds": seconds,
        "assays": sorted(assays),
    }
    # written last: its presence marks the part finished
    atomic_write_bytes(_part_json(work_dir, key, start, stop), json.dumps(doc).encode())
    release_free_memory()
    return seconds


def _has_locations(src: H5ADSource) -> bool:
    """Whether ``obsm["spatial"]`` is an (n_obs, 2) numeric array (else the spatial checks say
    what is wrong with it, once the dataset is known to be spatial)."""
    import h5py

    node = src.file.get("obsm/spatial")
    return (
        isinstance(node, h5py.Dataset)
        and node.shape == (src.n_obs, 2)
        and np.dtype(node.dtype).kind in "iuf"
    )


def _check_spatial(src: H5ADSource, detail: ScanDetail) -> None:
    """What a spatial dataset's scene and obs need (see ``cellcensus._spatial``)."""
    _spatial.read_spatial_source(src.file, dataset_id=src.dataset_id, assays=detail.assays)
    present = set(src.obs_columns())
    for column in _spatial.SPATIAL_OBS_COLUMNS:
        if column not in present:
            continue
        if not src.is_integer_column(column):
            msg = "must hold integers (the census stores it as int64)"
            raise BadInputError(msg, dataset_id=src.dataset_id, field=column)
        detail.spatial_columns.append(column)


def scan_head(
    dataset_id: str,
    path: str,
    *,
    key: str,
    work_dir: str,
    unknown_genes_policy: Literal["error", "drop"] = "error",
) -> ScanSummary:
    """Check ``uns``, ``var`` and the obs columns of one staged H5AD; save its census features.

    Returns the dataset's summary so far: excluded (and saved as a finished scan) when its
    organism has no census experiment or it has no census features, else to be completed by
    :func:`scan_part` tasks and :func:`scan_finish`.

    Raises
    ------
    BadInputError
        Not an H5AD, wrong schema version, missing columns, unknown gene ids.
    """
    t0 = time.perf_counter()
    with H5ADSource(path, dataset_id) as src:
        organism_term = _check_uns(src)
        base = ScanSummary(
            dataset_id=dataset_id,
            key=key,
            path=str(path),
            organism_term=organism_term,
            n_obs=src.n_obs,
        )
        missing = [c for c in S.REQUIRED_OBS_COLUMNS if c not in src.obs_columns()]
        if missing:
            msg = (
                "required obs column is missing (the census needs every dataset-schema term "
                "column, its label and observation_joinid)"
            )
            raise BadInputError(msg, dataset_id=dataset_id, field=missing[0])
        organism = S.ORGANISM_BY_TERM.get(organism_term)
        if organism is None:
            summary = _excluded(base, f"organism {organism_term} has no census experiment")
            _save(work_dir, summary, ScanDetail())
            return summary
        features, warnings = _features(src, organism, unknown_genes_policy)
        for w in warnings:
            logger.warning("dataset %s: %s", dataset_id, w)
        base = _replace(base, warnings=tuple(warnings), n_features=len(features))
        if len(features) == 0:
            summary = _excluded(base, f"no gene features of {organism_term}")
            _save(work_dir, summary, ScanDetail())
            return summary
        column_info = {c: src.column_info(c) for c in DICT_COLUMNS}
    out = features_path(work_dir, key)
    out.parent.mkdir(parents=True, exist_ok=True)
    features.to_parquet(out, index=False)
    _save_head(work_dir, key, column_info)
    return _replace(base, seconds=time.perf_counter() - t0)


def _head_json(work_dir: str | Path, key: str) -> Path:
    return scan_dir(work_dir, key) / "head.json"


def _save_head(work_dir: str | Path, key: str, column_info: dict[str, ColumnInfo]) -> None:
    doc = {
        c: {"categorical": i.categorical, "categories": list(i.categories or ())}
        for c, i in column_info.items()
    }
    atomic_write_bytes(_head_json(work_dir, key), json.dumps(doc).encode())


def _load_head(work_dir: str | Path, key: str) -> dict[str, ColumnInfo]:
    doc = json.loads(_head_json(work_dir, key).read_text())
    return {
        c: ColumnInfo(i["categorical"], tuple(i["categories"]) if i["categories"] else None)
        for c, i in doc.items()
    }


def scan_finish(
    base: ScanSummary, *, work_dir: str, part_rows: int = SCAN_PART_ROWS
) -> ScanSummary:
    """Merge a dataset's finished parts into its ``scan.json``; refuse duplicate cell names.

    Holds the 64-bit hashes of every cell name of the dataset (8 bytes per cell).

    Raises
    ------
    BadInputError
        Duplicate cell names, or ontology term ids that are not known.
    """
    t0 = time.perf_counter()
    key, dataset_id = base.key, base.dataset_id
    parts = [_load_part(work_dir, key, a, b) for a, b in part_ranges(base.n_obs, part_rows)]
    values: dict[str, set[str]] = {c: set() for c in DICT_COLUMNS}
    summary: Counter[tuple[str, str, str, bool]] = Counter()
    for p in parts:
        for c, v in p.values.items():
            values[c].update(v)
        for c, t, lab, prim, n in p.summary:
            summary[(c, t, lab, prim)] += n
    detail = ScanDetail(
        column_info=_load_head(work_dir, key),
        values={c: sorted(v) for c, v in values.items()},
        summary=[(c, t, lab, p, n) for (c, t, lab, p), n in sorted(summary.items())],
        blocks=[b for p in parts for b in p.blocks],
        has_full_gene_cells=any(p.has_full_gene_cells for p in parts),
        assays=sorted({a for p in parts for a in p.assays}),
    )
    n_included = sum(p.n_included for p in parts)
    hashes = np.empty(base.n_obs, dtype=np.uint64)
    for p in parts:
        hashes[p.start : p.stop] = np.load(_part_hashes(work_dir, key, p.start, p.stop))
    summary_out = _replace(
        base,
        n_included=n_included,
        n_primary=sum(p.n_primary for p in parts),
        n_values=sum(p.n_values for p in parts),
        seconds=base.seconds + sum(p.seconds for p in parts) + time.perf_counter() - t0,
    )
    with H5ADSource(base.path, dataset_id) as src:
        _check_duplicate_names(src, hashes)
        del hashes
        if _spatial.check_assays(detail.assays, dataset_id=dataset_id):  # a mix is refused
            summary_out = _replace(summary_out, spatial_assay=detail.assays[0])
            organism = S.ORGANISM_BY_TERM[base.organism_term]
            if organism not in S.SPATIAL_ORGANISMS:
                reason = f"spatial datasets of {organism.label} have no census experiment"
                n_included = 0
                summary_out = _excluded(summary_out, reason)
        if n_included and summary_out.spatial:
            _check_spatial(src, detail)
    if summary_out.excluded_reason is not None:
        _save(work_dir, summary_out, ScanDetail())
    elif n_included == 0:
        summary_out = _excluded(
            summary_out, "no cells pass the census filters (assay, tissue_type, is_primary_data)"
        )
        _save(work_dir, summary_out, ScanDetail())
    else:
        for c in TERM_COLUMNS:
            check_terms(dataset_id, c, set(detail.values[c]))
        _save(work_dir, summary_out, detail)
    for p in parts:
        _part_hashes(work_dir, key, p.start, p.stop).unlink(missing_ok=True)
    release_free_memory()
    return summary_out


def scan_dataset(
    dataset_id: str,
    path: str,
    *,
    key: str,
    work_dir: str,
    check_values: bool,
    unknown_genes_policy: Literal["error", "drop"] = "error",
    part_rows: int = SCAN_PART_ROWS,
) -> ScanSummary:
    """Scan one staged H5AD in one process: :func:`scan_head`, every part, :func:`scan_finish`.

    Raises
    ------
    BadInputError
        Not an H5AD, wrong schema version, missing columns, unknown ontology ids or gene ids,
        duplicate cell names, or (when ``check_values``) raw counts that are negative or not
        whole numbers.
    """
    base = scan_head(
        dataset_id, path, key=key, work_dir=work_dir, unknown_genes_policy=unknown_genes_policy
    )
    if base.excluded_reason is not None:
        return base
    for start, stop in part_ranges(base.n_obs, part_rows):
        scan_part(
            dataset_id,
            path,
            key=key,
            work_dir=work_dir,
            start=start,
            stop=stop,
            check_values=check_values,
        )
    return scan_finish(base, work_dir=work_dir, part_rows=part_rows)


def _replace(s: ScanSummary, **changes: Any) -> ScanSummary:  # noqa: ANN401 - field values
    from dataclasses import replace

    return replace(s, **changes)


def _excluded(s: ScanSummary, reason: str) -> ScanSummary:
    return _replace(s, n_included=0, n_primary=0, n_values=0, excluded_reason=reason)
