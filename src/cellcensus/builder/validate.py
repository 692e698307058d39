"""Validation of a built census against its sources (``cellcensus validate DIR``).

Re-reads the output and checks: the schema of every table, cells per dataset and organism, X raw
values of sampled cells against the staged H5ADs, normalized values and per-cell stats recomputed
for those cells, var statistics, the presence matrix, and that the census_info tables add up.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import tiledbsoma as soma

from cellcensus.builder import _schema as S
from cellcensus.builder._source import H5ADSource
from cellcensus.builder._xmath import normalize, obs_stats
from cellcensus.builder._xtask import soma_context
from cellcensus.errors import IntegrityError, NotFoundError

if TYPE_CHECKING:
    from scipy import sparse

__all__ = ["ValidationReport", "validate_build"]

logger = logging.getLogger(__name__)


@dataclass
class ValidationReport:
    """What was checked and what failed."""

    checks: int = 0
    problems: list[str] = field(default_factory=list)
    cells_sampled: int = 0

    def expect(self, ok: bool, message: str) -> None:
        """Count a check; record ``message`` when it failed."""
        self.checks += 1
        if not ok:
            self.problems.append(message)


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


def _included_rows(src: H5ADSource) -> np.ndarray[Any, Any]:
    obs = src.read_obs(["tissue_type", "assay_ontology_term_id"])
    mask = obs["tissue_type"].astype(str).isin(S.ACCEPTED_TISSUE_TYPES) & obs[
        "assay_ontology_term_id"
    ].astype(str).isin(sorted(S.accepted_assays()))
    return np.flatnonzero(mask.to_numpy())


@dataclass
class _Experiment:
    """What the per-dataset checks of one experiment need."""

    rep: ValidationReport
    exp: soma.Experiment
    organism: str
    organism_term: str
    var: pd.DataFrame
    h5ads: Path
    datasets: pd.DataFrame
    obs: pd.DataFrame
    rng: np.random.Generator
    sample_cells: int
    presence: dict[int, set[int]]


@dataclass
class _Sample:
    """One sampled cell: source row, census joinid, stored values, column mapping."""

    row_x: sparse.csr_matrix
    dataset_id: str
    src_row: int
    joinid: int
    got: dict[str, dict[int, float]]
    local_cols: np.ndarray[Any, Any]
    census_cols: np.ndarray[Any, Any]
    lengths: np.ndarray[Any, Any]
    full_gene: bool


def _check_dataset_cells(ctx: _Experiment) -> None:
    rep, exp, organism, organism_term = ctx.rep, ctx.exp, ctx.organism, ctx.organism_term
    var, h5ads, datasets, obs = ctx.var, ctx.h5ads, ctx.datasets, ctx.obs
    rng, sample_cells, presence = ctx.rng, ctx.sample_cells, ctx.presence
    feature_joinid = pd.Series(var["soma_joinid"].to_numpy(), index=var["feature_id"].to_numpy())
    full_gene = S.full_gene_assays()
    for dataset_id, cells in obs.groupby("dataset_id", observed=True, sort=False):
        row = datasets[datasets["dataset_id"] == dataset_id]
        rep.expect(
            len(row) == 1, f"{organism}: dataset {dataset_id} has no census_info/datasets row"
        )
        if len(row) != 1:
            continue
        ds_joinid = int(row["soma_joinid"].iloc[0])
        with H5ADSource(h5ads / f"{dataset_id}.h5ad", str(dataset_id)) as src:
            rows = _included_rows(src)
            rep.expect(
                len(rows) == len(cells) == int(row["dataset_total_cell_count"].iloc[0]),
                f"{organism}: dataset {dataset_id} has {len(cells)} cells in obs, "
                f"{int(row['dataset_total_cell_count'].iloc[0])} in census_info, "
                f"{len(rows)} in the source",
            )
            src_var = src.read_var(["feature_biotype", "feature_reference", "feature_length"])
            keep = (src_var["feature_biotype"].astype(str) == "gene") & (
                src_var["feature_reference"].astype(str) == organism_term
            )
            kept_ids = src_var.index[keep.to_numpy()]
            if not set(kept_ids).issubset(feature_joinid.index):
                rep.problems.append(f"{organism}: features of {dataset_id} missing from var")
                continue
            expected_presence = set(feature_joinid[kept_ids].to_numpy().tolist())
            rep.expect(
                presence.get(ds_joinid, set()) == expected_presence,
                f"{organism}: presence matrix row of dataset {dataset_id} does not match "
                "its features",
            )
            if len(rows) != len(cells):
                continue
            joinids = np.sort(cells["soma_joinid"].to_numpy())
            n_take = min(sample_cells, len(joinids))
            pick = np.sort(rng.choice(len(joinids), size=n_take, replace=False))
            local_cols = src_var.index.get_indexer(kept_ids)
            census_cols = feature_joinid[kept_ids].to_numpy()
            lengths = src_var["feature_length"].to_numpy(dtype=np.int64)[local_cols]
            assays = src.read_obs(["assay_ontology_term_id"])["assay_ontology_term_id"].astype(str)
            stored = {
                layer: _read_rows(
                    cast("soma.SparseNDArray", exp.ms[S.MEASUREMENT].X[layer]), joinids[pick]
                )
                for layer in S.X_LAYERS
            }
            sample = src.read_x_row_set(rows[pick])
            for i, k in enumerate(pick):
                joinid = int(joinids[k])
                cell = _Sample(
                    row_x=sample[i : i + 1],
                    dataset_id=src.dataset_id,
                    src_row=int(rows[k]),
                    joinid=joinid,
                    got={layer: stored[layer].get(joinid, {}) for layer in S.X_LAYERS},
                    local_cols=local_cols,
                    census_cols=census_cols,
                    lengths=lengths,
                    full_gene=assays.iloc[int(rows[k])] in full_gene,
                )
                _check_cell(rep, cell, cells, organism)
                rep.cells_sampled += 1


def _read_rows(
    arr: soma.SparseNDArray, joinids: np.ndarray[Any, Any]
) -> dict[int, dict[int, float]]:
    """Stored values of some rows: {row: {column: value}} (one read for all rows)."""
    t = arr.read(coords=(np.sort(joinids),)).tables().concat()
    out: dict[int, dict[int, float]] = {}
    for r, c, v in zip(
        t["soma_dim_0"].to_pylist(),
        t["soma_dim_1"].to_pylist(),
        t["soma_data"].to_pylist(),
        strict=True,
    ):
        out.setdefault(int(r), {})[int(c)] = float(v)
    return out


def _check_cell(rep: ValidationReport, cell: _Sample, cells: pd.DataFrame, organism: str) -> None:
    """Compare one cell's X (raw, normalized) and obs stats with values recomputed from source."""
    row_x, dataset_id, src_row, joinid, got = (
        cell.row_x,
        cell.dataset_id,
        cell.src_row,
        cell.joinid,
        cell.got,
    )
    local_cols, census_cols, lengths, full_gene = (
        cell.local_cols,
        cell.census_cols,
        cell.lengths,
        cell.full_gene,
    )
    x = row_x[:, local_cols].tocsr()
    x.sum_duplicates()
    x.eliminate_zeros()
    expected = dict(
        zip(census_cols[x.indices].tolist(), x.data.astype(np.float32).tolist(), strict=True)
    )
    where = f"{organism} cell {joinid} ({dataset_id} row {src_row})"
    rep.expect(got["raw"] == expected, f"{where}: X/raw differs from the source counts")
    order = np.argsort(census_cols[x.indices], kind="stable")
    cols_sorted = x.indices[order]
    data = x.data.astype(np.float32)[order]
    norm = normalize(
        np.zeros(len(data), dtype=np.int64),
        cols_sorted.astype(np.int64),
        data,
        1,
        full_gene_rows=np.array([full_gene]),
        feature_length=lengths,
    )
    want_cols = census_cols[cols_sorted]
    got_norm = got["normalized"]
    same_cells = set(got_norm) == set(want_cols.tolist())
    got_values = np.array([got_norm.get(int(c), np.nan) for c in want_cols], dtype=np.float64)
    rep.expect(
        same_cells and bool(np.allclose(got_values, norm, rtol=1e-4)),
        f"{where}: X/normalized does not follow its definition",
    )
    stats = obs_stats(x)
    row = cells[cells["soma_joinid"] == joinid].iloc[0]
    for name in ("raw_sum", "nnz", "raw_mean_nnz", "raw_variance_nnz"):
        value = getattr(stats, name)[0]
        rep.expect(
            bool(np.isclose(row[name], value, rtol=1e-9, atol=1e-12)),
            f"{where}: obs.{name} is {row[name]}, recomputed {value}",
        )
    rep.expect(
        int(row["n_measured_vars"]) == len(local_cols),
        f"{where}: n_measured_vars {row['n_measured_vars']} != {len(local_cols)}",
    )


def _check_organism(
    rep: ValidationReport,
    census: soma.Collection[Any],
    organism: S.Organism,
    *,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    root: Path,
    rng: np.random.Generator,
    sample_cells: int,
) -> tuple[int, int]:
    """Check one experiment; returns its (total, unique) cell counts."""
    datasets, counts = tables
    name = organism.name
    rep.expect(name in census[S.CENSUS_DATA], f"census_data has no {name} experiment")
    exp = census[S.CENSUS_DATA][name]
    _check_schema(rep, f"{name}/obs", exp.obs.schema, S.OBS_FIELDS)
    rna = exp.ms[S.MEASUREMENT]
    _check_schema(rep, f"{name}/var", rna.var.schema, S.VAR_FIELDS)
    obs = exp.obs.read().concat().to_pandas()
    if obs.empty:
        return 0, 0
    rep.expect(
        np.array_equal(obs["soma_joinid"].to_numpy(), np.arange(len(obs))),
        f"{name}: obs soma_joinid is not 0..n-1",
    )
    var = rna.var.read().concat().to_pandas()
    x_nnz = rna.X["raw"].nnz
    rep.expect(
        int(obs["nnz"].sum()) == int(var["nnz"].sum()) == x_nnz,
        f"{name}: nnz of obs ({obs['nnz'].sum()}), var ({var['nnz'].sum()}) and X/raw "
        f"({x_nnz}) disagree",
    )
    rep.expect(rna.X["normalized"].nnz == x_nnz, f"{name}: X/normalized nnz != X/raw nnz")
    pm = rna[S.PRESENCE_MATRIX].read().tables().concat()
    presence: dict[int, set[int]] = {}
    for r, c in zip(pm["soma_dim_0"].to_pylist(), pm["soma_dim_1"].to_pylist(), strict=True):
        presence.setdefault(int(r), set()).add(int(c))
    per_ds = obs.groupby("dataset_id", observed=True).size()
    measured = np.zeros(len(var), dtype=np.int64)
    for ds_joinid, cols in presence.items():
        ds = datasets[datasets["soma_joinid"] == ds_joinid]["dataset_id"]
        if len(ds) and ds.iloc[0] in per_ds.index:
            measured[list(cols)] += int(per_ds[ds.iloc[0]])
    rep.expect(
        np.array_equal(measured, var["n_measured_obs"].to_numpy()),
        f"{name}: var.n_measured_obs does not match the presence matrix",
    )
    mine = counts[counts["organism"] == name]
    all_row = mine[mine["category"] == "all"]
    rep.expect(
        len(all_row) == 1 and int(all_row["total_cell_count"].iloc[0]) == len(obs),
        f"{name}: summary_cell_counts 'all' does not equal the obs row count",
    )
    for category, cat_rows in mine.groupby("category", observed=True):
        rep.expect(
            int(cat_rows["total_cell_count"].sum()) == len(obs),
            f"{name}: summary_cell_counts category {category} does not add up to {len(obs)}",
        )
    _check_dataset_cells(
        _Experiment(
            rep=rep,
            exp=exp,
            organism=name,
            organism_term=organism.ontology_term_id,
            var=var,
            h5ads=root / "h5ads",
            datasets=datasets,
            obs=obs,
            rng=rng,
            sample_cells=sample_cells,
            presence=presence,
        )
    )
    return len(obs), int(obs["is_primary_data"].sum())


def validate_build(
    build_dir: str | Path, *, sample_cells: int = 256, seed: int = 0
) -> ValidationReport:
    """Check a build directory (``soma/``, ``h5ads/``, ``build.json``) against its sources.

    Parameters
    ----------
    build_dir
        A directory written by ``cellcensus build``.
    sample_cells
        Cells per dataset whose X rows and statistics are compared with the source.
    seed
        Seed of the cell sample (deterministic).

    Returns
    -------
    ValidationReport
        Number of checks made and cells sampled.

    Raises
    ------
    IntegrityError
        Listing every check that failed.
    """
    root = Path(build_dir)
    soma_uri = root / "soma"
    if not soma_uri.exists() or not (root / "build.json").exists():
        msg = f"{root} is not a cellcensus build (needs soma/ and build.json)"
        raise NotFoundError(msg)
    json.loads((root / "build.json").read_text())
    rep = ValidationReport()
    rng = np.random.default_rng(seed)
    census: soma.Collection[Any]
    with soma.Collection.open(str(soma_uri), context=soma_context()) as census:
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
            info["summary"]
            .read()
            .concat()
            .select(["label", "value"])
            .to_pandas()
            .to_numpy()
            .tolist()
        )
        counts = info["summary_cell_counts"].read().concat().to_pandas()
        total = unique = 0
        for organism in S.ORGANISMS:
            n_total, n_unique = _check_organism(
                rep,
                census,
                organism,
                tables=(datasets, counts),
                root=root,
                rng=rng,
                sample_cells=sample_cells,
            )
            total += n_total
            unique += n_unique
        rep.expect(
            summary.get("total_cell_count") == str(total), "summary total_cell_count is wrong"
        )
        rep.expect(
            summary.get("unique_cell_count") == str(unique), "summary unique_cell_count is wrong"
        )
    if rep.problems:
        listing = "\n  ".join(rep.problems[:50])
        msg = f"validation of {root} failed ({len(rep.problems)} problems):\n  {listing}"
        raise IntegrityError(msg)
    logger.info("validation passed: %d checks, %d cells compared", rep.checks, rep.cells_sampled)
    return rep
