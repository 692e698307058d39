"""Validation of a built census against its sources (``cellcensus validate DIR``).

Re-reads the output and checks: the schema of every table, cells per dataset and organism, the
joinids, X raw values of sampled cells against the staged H5ADs, normalized values and per-cell
stats recomputed for those cells, their obs values, var statistics, the presence matrix, and that
the census_info tables add up. Spatial experiments (census_spatial_sequencing) get the same checks
(X ``raw`` only, primary cells only, ``in_tissue``/``array_row``/``array_col`` of the sampled
cells) and their scenes more (``_validate_spatial``): one per dataset, spots and locations,
the image's shape, sampled pixel rows and scale factor, and ``obs_spatial_presence``.

Memory stays bounded whatever the census size: obs is streamed in batches of a few columns
(aggregated per dataset), the presence matrix is read one dataset row at a time, and sources are
read in blocks of rows; only the sampled cells are held whole. A damaged build (unreadable
fragment, missing object, corrupt source copy) is reported as problems, not as a crash.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import tiledbsoma as soma

from cellcensus._formats.build import BuildInfo
from cellcensus._obscopy import obs_chunks
from cellcensus.builder import _schema as S
from cellcensus.builder._allocator import tune_allocator
from cellcensus.builder._band import INT64_PLACEHOLDER, soma_context
from cellcensus.builder._scan import include_mask
from cellcensus.builder._source import OBS_CHUNK_ROWS, H5ADSource
from cellcensus.builder._validate_genes import check_genes, fragments, gene_major_layers
from cellcensus.builder._xmath import normalize, obs_stats
from cellcensus.errors import BadInputError, IntegrityError, NotFoundError

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["SAMPLE_RUN", "ValidationReport", "sample_ranks", "validate_build"]

logger = logging.getLogger(__name__)

_MAX_LISTED = 50
#: obs columns of sampled cells compared with the source
_COMPARED_OBS = (
    "cell_type_ontology_term_id",
    "assay_ontology_term_id",
    "tissue_ontology_term_id",
    "donor_id",
    "is_primary_data",
    "observation_joinid",
)
_STATS = ("raw_sum", "nnz", "raw_mean_nnz", "raw_variance_nnz", "n_measured_vars")
#: Sampled cells come in runs of this many consecutive included cells of a source. A run's rows
#: share the source's compressed HDF5 chunks, so checking a sample decompresses about one chunk
#: per run; the same number of single cells touches one chunk each — for most datasets, every
#: chunk of X (measured on a 176 k-cell build: validation 7.1-7.8 s with single cells, 4.4-5.5 s
#: with runs; see benchmarks/RESULTS.md).
SAMPLE_RUN = 16


@dataclass
class ValidationReport:
    """What was checked and what failed."""

    checks: int = 0
    problems: list[str] = field(default_factory=list)
    cells_sampled: int = 0

    def expect(self, ok: bool, message: str) -> bool:
        """Count a check; record ``message`` when it failed. Returns ``ok``."""
        self.checks += 1
        if not ok:
            self.problems.append(message)
        return ok


def _damage(rep: ValidationReport, what: str, e: BaseException) -> None:
    text = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
    rep.problems.append(f"cannot read {what}: {text}")


#: Errors reading a damaged build or source raise (TileDB, Arrow, HDF5, our own source checks).
_READ_ERRORS: tuple[type[BaseException], ...] = (
    soma.SOMAError,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    RuntimeError,
    pa.ArrowException,
    BadInputError,
)


def _types_match(actual: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_dictionary(expected):
        return pa.types.is_dictionary(actual) and _types_match(
            actual.value_type, expected.value_type
        )
    strings = (pa.string(), pa.large_string())
    if expected in strings:
        return actual in strings
    return bool(actual == expected)


def _check_schema(
    rep: ValidationReport, name: str, schema: pa.Schema, fields: tuple[S.Field, ...]
) -> None:
    expected = S.arrow_schema(fields)
    rep.expect(
        schema.names == expected.names,
        f"{name}: columns {schema.names} differ from the census schema {expected.names}",
    )
    for f in expected:
        if f.name in schema.names:
            actual = schema.field(f.name).type
            rep.expect(
                _types_match(actual, f.type), f"{name}.{f.name}: type {actual}, expected {f.type}"
            )


@dataclass
class _ObsTotals:
    """What streaming an experiment's obs learned, per dataset and in all."""

    n: int = 0
    min_joinid: int = -1
    max_joinid: int = -1
    nnz: int = 0
    primary: int = 0
    primary_nnz: int = 0
    cells: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    first: dict[str, int] = field(default_factory=dict)  # smallest joinid of each dataset


def _stream_obs(obs: soma.DataFrame) -> _ObsTotals:
    t = _ObsTotals()
    columns = ["soma_joinid", "dataset_id", "nnz", "is_primary_data"]
    for batch in obs_chunks(obs, columns):
        if batch.num_rows == 0:
            continue
        joinid = batch["soma_joinid"]
        lo, hi = pc.min_max(joinid).values()
        t.min_joinid = lo.as_py() if t.n == 0 else min(t.min_joinid, lo.as_py())
        t.max_joinid = max(t.max_joinid, hi.as_py())
        t.n += batch.num_rows
        t.nnz += int(pc.sum(batch["nnz"]).as_py() or 0)
        t.primary += int(pc.sum(pc.cast(batch["is_primary_data"], pa.int64())).as_py() or 0)
        t.primary_nnz += int(pc.sum(pc.filter(batch["nnz"], batch["is_primary_data"])).as_py() or 0)
        grouped = (
            pa.table({"d": pc.cast(batch["dataset_id"], pa.large_string()), "j": joinid})
            .group_by("d")
            .aggregate([("j", "count"), ("j", "min")])
        )
        for d, n, first in zip(
            grouped["d"].to_pylist(),
            grouped["j_count"].to_pylist(),
            grouped["j_min"].to_pylist(),
            strict=True,
        ):
            t.cells[d] += n
            t.first[d] = min(t.first.get(d, first), first)
    return t


@dataclass
class _Experiment:
    """What the per-dataset checks of one experiment need."""

    rep: ValidationReport
    exp: soma.Experiment
    organism: S.Organism
    var: pd.DataFrame
    h5ads: Path
    rng: np.random.Generator
    sample_cells: int
    totals: _ObsTotals
    spatial: bool = False
    spatial_columns: tuple[str, ...] = ()  # spatial obs columns some dataset has

    @property
    def name(self) -> str:
        """The experiment, as problems name it."""
        prefix = f"{S.CENSUS_SPATIAL}/" if self.spatial else ""
        return f"{prefix}{self.organism.name}"

    @property
    def layers(self) -> tuple[str, ...]:
        """Its X layers."""
        return S.x_layers(spatial=self.spatial)


@dataclass
class _Sampled:
    """The sampled cells of one dataset in its source: rows, ranks among included, obs values."""

    rows: npt.NDArray[np.int64]
    ranks: npt.NDArray[np.int64]
    obs: pd.DataFrame
    n_included: int


def sample_ranks(n: int, take: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """``min(take, n)`` distinct ranks of ``range(n)``, sorted: runs of :data:`SAMPLE_RUN`
    consecutive ranks (the last one shorter when ``take`` is not a multiple) at random,
    non-overlapping places; every rank when ``take >= n``."""
    take = min(take, n)
    if take >= n:
        return np.arange(n, dtype=np.int64)
    run = min(SAMPLE_RUN, take)
    n_runs = -(-take // run)
    # non-overlapping runs, uniformly placed: distinct sorted positions in a range shortened by
    # the runs' lengths, then each run shifted past the runs before it
    lengths = np.full(n_runs, run, dtype=np.int64)
    lengths[-1] = take - run * (n_runs - 1)
    slack = n - take
    positions = np.sort(rng.choice(slack + n_runs, size=n_runs, replace=False)) - np.arange(n_runs)
    starts = positions + np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.concatenate([s + np.arange(k) for s, k in zip(starts, lengths, strict=True)])


def _sample_source(
    src: H5ADSource, n_expected: int, take: int, rng: np.random.Generator
) -> _Sampled:
    """Count the source's included cells and pick ``take`` of them, in bounded memory."""
    ranks = sample_ranks(n_expected, take, rng)
    rows: list[int] = []
    seen = 0
    for start in range(0, src.n_obs, OBS_CHUNK_ROWS):
        stop = min(start + OBS_CHUNK_ROWS, src.n_obs)
        included = np.flatnonzero(
            include_mask(src.read_obs(list(S.INCLUSION_COLUMNS), start, stop))
        )
        lo, hi = np.searchsorted(ranks, [seen, seen + len(included)])
        if hi > lo:
            rows.extend((start + included[ranks[lo:hi] - seen]).tolist())
        seen += len(included)
    sample_rows = np.array(rows, dtype=np.int64)
    spatial = [c for c in S.SPATIAL_OBS_NUMERIC if c in src.obs_columns()]
    obs = src.read_obs_rows([*_COMPARED_OBS, *spatial], sample_rows)
    return _Sampled(sample_rows, ranks, obs, seen)


#: A row of X: its columns (ascending) and their values.
_Row: TypeAlias = "tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]"
_NO_ROW: _Row = (np.zeros(0, np.int64), np.zeros(0, np.float32))


def _read_rows(arr: soma.SparseNDArray, joinids: npt.NDArray[np.int64]) -> dict[int, _Row]:
    """Stored values of some rows, each as its columns (ascending) and values (one read for
    all rows; kept as arrays: Python dicts of every value were a fifth of a validation)."""
    if len(joinids) == 0:
        return {}
    table = arr.read(coords=(np.sort(joinids),)).tables().concat()
    rows = table["soma_dim_0"].to_numpy()
    cols = table["soma_dim_1"].to_numpy()
    values = table["soma_data"].to_numpy()
    order = np.lexsort((cols, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    present, starts = np.unique(rows, return_index=True)
    stops = [*starts[1:].tolist(), len(rows)]
    return {
        int(r): (cols[a:b].astype(np.int64), values[a:b].astype(np.float32))
        for r, a, b in zip(present.tolist(), starts.tolist(), stops, strict=True)
    }


def _check_dataset(ctx: _Experiment, dataset: pd.Series, presence: set[int]) -> None:
    """Cells, presence, and the sampled cells of one dataset against its source."""
    rep, organism = ctx.rep, ctx.organism
    dataset_id = str(dataset["dataset_id"])
    n_census = ctx.totals.cells.get(dataset_id, 0)
    n_info = int(dataset["dataset_total_cell_count"])
    with H5ADSource(ctx.h5ads / f"{dataset_id}.h5ad", dataset_id) as src:
        src_var = src.read_var(["feature_biotype", "feature_reference", "feature_length"])
        keep = (src_var["feature_biotype"].astype(str) == "gene") & (
            src_var["feature_reference"].astype(str) == organism.ontology_term_id
        )
        feature_joinid = pd.Series(
            ctx.var["soma_joinid"].to_numpy(), index=ctx.var["feature_id"].to_numpy()
        )
        kept_ids = src_var.index[keep.to_numpy() & src_var.index.isin(feature_joinid.index)]
        expected_presence = set(feature_joinid[kept_ids].to_numpy().tolist())
        rep.expect(
            presence == expected_presence,
            f"{ctx.name}: presence matrix row of dataset {dataset_id} does not match its features",
        )
        sampled = _sample_source(src, n_census, ctx.sample_cells, ctx.rng)
        rep.expect(
            sampled.n_included == n_census == n_info,
            f"{ctx.name}: dataset {dataset_id} has {n_census} cells in obs, {n_info} in "
            f"census_info, {sampled.n_included} in the source",
        )
        if not (sampled.n_included == n_census == n_info) or n_census == 0:
            return
        joinids = ctx.totals.first[dataset_id] + sampled.ranks
        local_cols = src_var.index.get_indexer(kept_ids)
        census_cols = feature_joinid[kept_ids].to_numpy()
        lengths = src_var["feature_length"].to_numpy(dtype=np.int64)[local_cols]
        x_layers = ctx.exp.ms[S.MEASUREMENT].X
        stored = {
            layer: _read_rows(cast("soma.SparseNDArray", x_layers[layer]), joinids)
            for layer in ctx.layers
        }
        spatial_obs = list(S.SPATIAL_OBS_NUMERIC) if ctx.spatial else []
        columns = ["soma_joinid", "dataset_id", *_COMPARED_OBS, *spatial_obs, *_STATS]
        cells = ctx.exp.obs.read(coords=(np.sort(joinids),), column_names=columns)
        by_joinid = cells.concat().to_pandas().set_index("soma_joinid").to_dict("index")
        source_obs = sampled.obs.to_dict("records")
        source_x = src.read_x_row_set(sampled.rows)[:, local_cols].tocsr()
        source_x.sum_duplicates()
        source_x.eliminate_zeros()
        stats = obs_stats(source_x)
        full_gene = S.full_gene_assays()
        for i, joinid in enumerate(joinids.tolist()):
            where = f"{ctx.name} cell {joinid} ({dataset_id} row {int(sampled.rows[i])})"
            row = by_joinid.get(joinid)
            if row is None:
                rep.problems.append(f"{where}: missing from obs")
                continue
            _check_obs_values(rep, where, row, source_obs[i], dataset_id)
            for name in spatial_obs:
                _check_spatial_obs_value(
                    rep, where, name, got=row[name], src_obs=source_obs[i], ctx=ctx
                )
            for name in _STATS[:4]:
                value = float(getattr(stats, name)[i])
                rep.expect(
                    math.isclose(float(row[name]), value, rel_tol=1e-9, abs_tol=1e-12),
                    f"{where}: obs.{name} is {row[name]}, recomputed {value}",
                )
            rep.expect(
                int(row["n_measured_vars"]) == len(census_cols),
                f"{where}: n_measured_vars {row['n_measured_vars']} != {len(census_cols)}",
            )
            lo, hi = int(source_x.indptr[i]), int(source_x.indptr[i + 1])
            _check_cell(
                rep,
                where,
                indices=source_x.indices[lo:hi],
                counts=source_x.data[lo:hi],
                got={layer: stored[layer].get(joinid, _NO_ROW) for layer in ctx.layers},
                census_cols=census_cols,
                lengths=lengths,
                full_gene=str(source_obs[i]["assay_ontology_term_id"]) in full_gene,
            )
            rep.cells_sampled += 1
        if ctx.spatial:
            from cellcensus.builder._validate_spatial import check_scene

            check_scene(ctx, src, dataset_id, joinids=joinids, rows=sampled.rows)


def _check_spatial_obs_value(
    rep: ValidationReport,
    where: str,
    name: str,
    *,
    got: Any,  # noqa: ANN401 - a cell of the census obs
    src_obs: dict[Any, Any],
    ctx: _Experiment,
) -> None:
    """in_tissue, array_row, array_col: the source's, else null or the official placeholder."""
    if name in src_obs:
        want = src_obs[name]
        want = None if pd.isna(want) else int(want)
    else:
        want = None if name in ctx.spatial_columns else INT64_PLACEHOLDER
    value = None if got is None or pd.isna(got) else int(got)
    rep.expect(value == want, f"{where}: obs.{name} is {value!r}, expected {want!r}")


def _check_obs_values(
    rep: ValidationReport,
    where: str,
    row: dict[str, Any],
    src_obs: dict[Any, Any],
    dataset_id: str,
) -> None:
    rep.expect(str(row["dataset_id"]) == dataset_id, f"{where}: obs.dataset_id is wrong")
    for c in _COMPARED_OBS:
        got, want = row[c], src_obs[c]
        same = bool(got) == bool(want) if c == "is_primary_data" else str(got) == str(want)
        rep.expect(same, f"{where}: obs.{c} is {got!r}, the source has {want!r}")


def _check_cell(
    rep: ValidationReport,
    where: str,
    *,
    indices: npt.NDArray[np.integer],
    counts: npt.NDArray[Any],
    got: dict[str, _Row],
    census_cols: npt.NDArray[np.int64],
    lengths: npt.NDArray[np.int64],
    full_gene: bool,
) -> None:
    """Compare one cell's X (raw, normalized) with values recomputed from its source counts
    (``indices`` and ``counts``: the cell's row of the source X, local feature positions)."""
    values = counts.astype(np.float32)
    order = np.argsort(census_cols[indices], kind="stable")
    cols_sorted = indices[order]
    want_cols = census_cols[cols_sorted]
    got_cols, got_raw = got["raw"]
    rep.expect(
        np.array_equal(got_cols, want_cols) and np.array_equal(got_raw, values[order]),
        f"{where}: X/raw differs from the source counts",
    )
    if "normalized" not in got:  # spatial experiments have raw counts only
        return
    norm = normalize(
        np.zeros(len(order), dtype=np.int64),
        cols_sorted.astype(np.int64),
        values[order],
        1,
        full_gene_rows=np.array([full_gene]),
        feature_length=lengths,
    )
    norm_cols, got_norm = got["normalized"]
    if not np.array_equal(norm_cols, want_cols):
        rep.expect(False, f"{where}: X/normalized does not follow its definition")
        return
    # np.allclose(got_norm, norm, rtol=1e-4) without its per-call overhead (a NaN fails)
    close = np.abs(got_norm.astype(np.float64) - norm) <= 1e-8 + 1e-4 * np.abs(norm)
    rep.expect(bool(close.all()), f"{where}: X/normalized does not follow its definition")


def _stored_cells(rep: ValidationReport, uri: str) -> int:
    """Cells stored in an X layer, from its fragments' metadata (no data read).

    The builder writes X as fragments of disjoint row bands; overlapping ones are reported (their
    cell counts would not add up to the array's).
    """
    listed = fragments(uri)
    for a, b in itertools.pairwise(listed):
        rep.expect(
            a.nonempty_domain[0][1] < b.nonempty_domain[0][0],
            f"{uri}: fragments {a.uri} and {b.uri} overlap",
        )
    return sum(int(f.cell_num) for f in listed)


def _presence_row(pm: soma.SparseNDArray, ds_joinid: int) -> set[int]:
    t = pm.read(coords=([ds_joinid],)).tables().concat()
    return set(t["soma_dim_1"].to_pylist())


def _check_experiment(
    rep: ValidationReport,
    census: soma.Collection[Any],
    organism: S.Organism,
    *,
    spatial: bool,
    datasets: pd.DataFrame,
    root: Path,
    rng: np.random.Generator,
    sample_cells: int,
    gene_major: tuple[str, ...] | None = None,
) -> _ObsTotals:
    """Check one experiment (of census_data, or of census_spatial_sequencing); its obs totals."""
    collection = S.CENSUS_SPATIAL if spatial else S.CENSUS_DATA
    name = f"{S.CENSUS_SPATIAL}/{organism.name}" if spatial else organism.name
    rep.expect(
        organism.name in census[collection], f"{collection} has no {organism.name} experiment"
    )
    exp = census[collection][organism.name]
    _check_schema(rep, f"{name}/obs", exp.obs.schema, S.obs_fields(spatial=spatial))
    rna = exp.ms[S.MEASUREMENT]
    _check_schema(rep, f"{name}/var", rna.var.schema, S.VAR_FIELDS)
    totals = _stream_obs(exp.obs)
    if totals.n == 0:
        if spatial:
            rep.expect(
                not list(exp.spatial.keys()), f"{name}: scenes in an experiment without cells"
            )
        return totals
    rep.expect(
        totals.min_joinid == 0 and totals.max_joinid == totals.n - 1,
        f"{name}: obs soma_joinid is not 0..n-1 (min {totals.min_joinid}, max "
        f"{totals.max_joinid}, {totals.n} rows)",
    )
    layers = S.x_layers(spatial=spatial)
    rep.expect(
        sorted(rna.X.keys()) == sorted(layers),
        f"{name}: X layers {sorted(rna.X.keys())}, expected {sorted(layers)}",
    )
    if spatial:
        rep.expect(
            totals.primary == totals.n,
            f"{name}: {totals.n - totals.primary} cells are not primary data (spatial "
            "experiments hold primary cells only)",
        )
    var = rna.var.read().concat().to_pandas()
    x_nnz = _stored_cells(rep, rna.X["raw"].uri)
    rep.expect(
        totals.nnz == int(var["nnz"].sum()) == x_nnz,
        f"{name}: nnz of obs ({totals.nnz}), var ({var['nnz'].sum()}) and X/raw ({x_nnz}) disagree",
    )
    if "normalized" in layers:
        rep.expect(
            _stored_cells(rep, rna.X["normalized"].uri) == x_nnz,
            f"{name}: X/normalized nnz != X/raw nnz",
        )
    unknown = set(totals.cells) - set(datasets["dataset_id"])
    rep.expect(not unknown, f"{name}: obs names datasets without a census_info row: {unknown}")
    mine = datasets[datasets["dataset_id"].isin(list(totals.cells))]
    ctx = _Experiment(
        rep=rep,
        exp=exp,
        organism=organism,
        var=var,
        h5ads=root / "h5ads",
        rng=rng,
        sample_cells=sample_cells,
        totals=totals,
        spatial=spatial,
    )
    if spatial:
        from cellcensus.builder._validate_spatial import check_presence, spatial_columns

        ctx.spatial_columns = spatial_columns(ctx, [str(d) for d in mine["dataset_id"]])
    pm = rna[S.PRESENCE_MATRIX]
    measured = np.zeros(len(var), dtype=np.int64)
    for _, dataset in mine.iterrows():
        presence = _presence_row(pm, int(dataset["soma_joinid"]))
        if presence:
            measured[list(presence)] += totals.cells[str(dataset["dataset_id"])]
        try:
            _check_dataset(ctx, dataset, presence)
        except _READ_ERRORS as e:
            _damage(rep, f"{name} dataset {dataset['dataset_id']}", e)
    rep.expect(
        np.array_equal(measured, var["n_measured_obs"].to_numpy()),
        f"{name}: var.n_measured_obs does not match the presence matrix",
    )
    if spatial:
        check_presence(ctx)
    else:
        try:
            check_genes(
                rep.expect,
                census,
                organism.name,
                n_obs=totals.n,
                var_nnz=var["nnz"].to_numpy(dtype=np.int64),
                x_nnz=x_nnz,
                primary=(totals.primary, totals.primary_nnz),
                gene_major=gene_major,
                stored_cells=lambda uri: _stored_cells(rep, uri),
                rng=rng,
            )
        except _READ_ERRORS as e:
            _damage(rep, f"cellcensus_genes/{organism.name}", e)
    return totals


def _check_counts(rep: ValidationReport, counts: pd.DataFrame, name: str, n: int) -> None:
    """summary_cell_counts of an organism add up to its cells (census_data and spatial)."""
    mine = counts[counts["organism"] == name]
    if n == 0 and mine.empty:
        return
    all_row = mine[mine["category"] == "all"]
    rep.expect(
        len(all_row) == 1 and int(all_row["total_cell_count"].iloc[0]) == n,
        f"{name}: summary_cell_counts 'all' does not equal the obs row count",
    )
    for category, cat_rows in mine.groupby("category", observed=True):
        rep.expect(
            int(cat_rows["total_cell_count"].sum()) == n,
            f"{name}: summary_cell_counts category {category} does not add up to {n}",
        )


def validate_build(
    build_dir: str | Path, *, sample_cells: int = 256, seed: int = 0
) -> ValidationReport:
    """Check a build directory (``soma/``, ``h5ads/``, ``build.json``) against its sources.

    Parameters
    ----------
    build_dir
        A directory written by ``cellcensus build``.
    sample_cells
        Cells per dataset whose X rows, statistics and obs values are compared with the source.
    seed
        Seed of the cell sample (deterministic).

    Returns
    -------
    ValidationReport
        Number of checks made and cells sampled.

    Raises
    ------
    IntegrityError
        Listing every check that failed, including parts of the build that cannot be read.
    """
    root = Path(build_dir)
    soma_uri = root / "soma"
    if not soma_uri.exists() or not (root / "build.json").exists():
        msg = f"{root} is not a cellcensus build (needs soma/ and build.json)"
        raise NotFoundError(msg)
    tune_allocator()
    rep = ValidationReport()
    gene_major: tuple[str, ...] | None = None
    try:
        bj = root / "build.json"
        info = BuildInfo.from_json(bj.read_bytes(), where=str(bj))
        gene_major = gene_major_layers(info.settings)
    except (OSError, ValueError, AttributeError) as e:
        _damage(rep, "build.json", e)
    rng = np.random.default_rng(seed)
    try:
        _validate_census(rep, root, rng, sample_cells, gene_major)
    except _READ_ERRORS as e:
        _damage(rep, "the census", e)
    if rep.problems:
        listing = "\n  ".join(rep.problems[:_MAX_LISTED])
        more = len(rep.problems) - _MAX_LISTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        msg = f"validation of {root} failed ({len(rep.problems)} problems):\n  {listing}{tail}"
        raise IntegrityError(msg)
    logger.info("validation passed: %d checks, %d cells compared", rep.checks, rep.cells_sampled)
    return rep


def _validate_census(
    rep: ValidationReport,
    root: Path,
    rng: np.random.Generator,
    sample_cells: int,
    gene_major: tuple[str, ...] | None = None,
) -> None:
    census: soma.Collection[Any]
    with soma.Collection.open(str(root / "soma"), context=soma_context()) as census:
        info: soma.Collection[Any] = census[S.CENSUS_INFO]
        datasets = info["datasets"].read().concat().to_pandas()
        _check_schema(rep, "census_info/datasets", info["datasets"].schema, S.DATASETS_FIELDS)
        _check_schema(
            rep,
            "census_info/summary_cell_counts",
            info["summary_cell_counts"].schema,
            S.SUMMARY_CELL_COUNTS_FIELDS,
        )
        summary = dict(
            info["summary"].read().concat().select(["label", "value"]).to_pandas().to_numpy()
        )
        counts = info["summary_cell_counts"].read().concat().to_pandas()
        total = unique = 0
        experiments = [(o, False) for o in S.ORGANISMS] + [(o, True) for o in S.SPATIAL_ORGANISMS]
        per_organism: dict[str, int] = defaultdict(int)
        for organism, spatial in experiments:
            where = f"{S.CENSUS_SPATIAL if spatial else S.CENSUS_DATA}/{organism.name}"
            try:
                totals = _check_experiment(
                    rep,
                    census,
                    organism,
                    spatial=spatial,
                    datasets=datasets,
                    root=root,
                    rng=rng,
                    sample_cells=sample_cells,
                    gene_major=gene_major,
                )
            except _READ_ERRORS as e:
                _damage(rep, where, e)
                continue
            total += totals.n
            unique += totals.primary
            per_organism[organism.name] += totals.n
        for name, n in per_organism.items():
            _check_counts(rep, counts, name, n)
        rep.expect(
            summary.get("total_cell_count") == str(total), "summary total_cell_count is wrong"
        )
        rep.expect(
            summary.get("unique_cell_count") == str(unique), "summary unique_cell_count is wrong"
        )
