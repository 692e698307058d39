"""``summarize``: where genes are expressed, from the expression summary of a cellcensus build.

Every cellcensus build holds, per organism, ``cellcensus_genes/<organism>/expression_summary``:
for each gene and *cell group* (one combination of dataset, tissue_general, cell_type, assay,
disease and sex among the primary cells), the cells expressing the gene and sums of the
normalized values (see ``docs/schema.md``). :func:`summarize` adds the groups up along the
columns asked for and divides: a few small reads, never X.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cellcensus.errors import BadInputError, CensusNotFoundError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from concurrent.futures import ThreadPoolExecutor

    import tiledbsoma as soma

__all__ = ["SUMMARY_BY", "summarize"]

GENES = "cellcensus_genes"
SUMMARY = "expression_summary"
GROUPS = "expression_summary_cell_groups"
#: Columns a summary can be broken down by, and the term id column that goes with each.
SUMMARY_BY: dict[str, str | None] = {
    "tissue_general": "tissue_general_ontology_term_id",
    "cell_type": "cell_type_ontology_term_id",
    "assay": "assay_ontology_term_id",
    "disease": "disease_ontology_term_id",
    "sex": "sex_ontology_term_id",
    "dataset_id": None,
}
_STATS = ("sum", "sumsq", "sum_log1p", "sumsq_log1p")
#: The genes' summary rows are read in up to this many parts at once.
_PARTS = 8


@dataclass(frozen=True)
class _Static:
    """The parts of an organism's summary that do not depend on the genes (cached per URI)."""

    groups: pd.DataFrame  # one row per cell group (soma_joinid order)
    group_dataset: np.ndarray[Any, np.dtype[np.int64]]  # census_info dataset joinid of each group
    var: pd.DataFrame  # soma_joinid, feature_id, feature_name
    by_id: dict[str, int] = field(default_factory=dict)  # feature_id -> var row
    by_name: dict[str, list[int]] = field(default_factory=dict)  # feature_name -> var rows
    keys: dict[tuple[str, ...], tuple[np.ndarray[Any, np.dtype[np.int64]], pd.DataFrame]] = field(
        default_factory=dict
    )

    def key_codes(
        self, keys: list[str]
    ) -> tuple[np.ndarray[Any, np.dtype[np.int64]], pd.DataFrame]:
        """Each group's code among the distinct values of ``keys`` (sorted), and those values."""
        cached = self.keys.get(tuple(keys))
        if cached is None:
            codes: np.ndarray[Any, np.dtype[np.int64]]
            if keys:
                grouped = self.groups.groupby(keys, sort=True, observed=True)
                codes = np.asarray(grouped.ngroup().to_numpy(), dtype=np.int64)
                values = grouped.size().reset_index()[keys]
            else:
                codes = np.zeros(len(self.groups), dtype=np.int64)
                values = pd.DataFrame(index=range(1))
            cached = self.keys[tuple(keys)] = (codes, values.reset_index(drop=True))
        return cached[0], cached[1]


_CACHE: OrderedDict[str, _Static] = OrderedDict()
_CACHE_LOCK = Lock()
_CACHE_SIZE = 8


def _static(census: soma.Collection[Any], exp_name: str, org: Any) -> _Static:  # noqa: ANN401 - a SOMA collection
    """Cell groups, their datasets' joinids and var names; read once per release (releases are
    immutable) and kept for the next call."""
    key = str(org[GROUPS].uri)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    groups = org[GROUPS].read().concat().to_pandas()
    datasets = (
        census["census_info"]["datasets"]
        .read(column_names=["soma_joinid", "dataset_id"])
        .concat()
        .to_pandas()
    )
    joinid_of = dict(zip(datasets["dataset_id"], datasets["soma_joinid"], strict=True))
    group_dataset = groups["dataset_id"].map(joinid_of).to_numpy(dtype=np.int64)
    var = (
        census["census_data"][exp_name]
        .ms["RNA"]
        .var.read(column_names=["soma_joinid", "feature_id", "feature_name"])
        .concat()
        .to_pandas()
    )
    names: dict[str, list[int]] = {}
    for row, name in enumerate(var["feature_name"].astype(str).tolist()):
        names.setdefault(name, []).append(row)
    static = _Static(
        groups=groups,
        group_dataset=group_dataset,
        var=var,
        by_id={str(f): i for i, f in enumerate(var["feature_id"].tolist())},
        by_name=names,
    )
    with _CACHE_LOCK:
        _CACHE[key] = static
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return static


def _summary_collection(census: soma.Collection[Any], exp_name: str, organism: str) -> Any:  # noqa: ANN401 - a SOMA collection
    if GENES not in census or exp_name not in census[GENES]:
        known = sorted(census[GENES]) if GENES in census else []
        msg = (
            f"{census.uri} has no expression summary for {organism}"
            + (f" (organisms: {', '.join(known)})" if known else "")
            + ": it is written by cellcensus builds (cellcensus_genes/<organism>), not by the "
            "official builder; open a cellcensus release"
        )
        raise CensusNotFoundError(msg)
    org = census[GENES][exp_name]
    if SUMMARY not in org or GROUPS not in org:
        msg = f"{org.uri} holds no expression summary; the build is incomplete"
        raise CensusNotFoundError(msg)
    return org


def _genes(static: _Static, genes: str | Sequence[str]) -> pd.DataFrame:
    """The var rows of the genes asked for (by feature id, else by name), in that order."""
    wanted = [genes] if isinstance(genes, str) else list(genes)
    if not wanted:
        msg = "summarize needs at least one gene (feature_id or feature_name)"
        raise BadInputError(msg, field="genes")
    rows: list[int] = []
    missing = []
    for g in wanted:
        if not isinstance(g, str):
            msg = f"genes must be feature ids or names (strings), got {g!r}"
            raise BadInputError(msg, field="genes")
        if g in static.by_id:
            rows.append(static.by_id[g])
        elif g in static.by_name:
            rows.extend(static.by_name[g])
        else:
            missing.append(g)
    if missing:
        msg = (
            f"unknown gene(s) {', '.join(repr(m) for m in missing[:10])}"
            f"{' ...' if len(missing) > 10 else ''}: not a feature_id or feature_name of var; "
            "check the spelling and the organism"
        )
        raise BadInputError(msg, field="genes")
    out = static.var.iloc[list(dict.fromkeys(rows))]
    return out.reset_index(drop=True)


def _summary_rows(
    summary: Any,  # noqa: ANN401 - a SOMA DataFrame
    var_ids: np.ndarray[Any, np.dtype[np.int64]],
    pool: ThreadPoolExecutor,
) -> pa.Table:
    """The summary rows of the genes ``var_ids`` (the columns ``summarize`` uses).

    The genes are read in up to ``_PARTS`` parts at once: one read of a few scattered
    genes decodes a data tile for each anyway, and TileDB answers separate small reads in
    parallel faster than one read of several ranges (measured in ``benchmarks/bench_genes.py``).
    """
    columns = ["var_joinid", "group_joinid", "n_expressing", *_STATS]
    genes = np.unique(var_ids)
    parts = [p for p in np.array_split(genes, min(len(genes), _PARTS)) if len(p)]

    def read(part: np.ndarray[Any, np.dtype[np.int64]]) -> pa.Table:
        table: pa.Table = summary.read(coords=(part,), column_names=columns).concat()
        return table

    if len(parts) == 1:
        return read(parts[0])
    return pa.concat_tables(list(pool.map(read, parts)))


def _check_by(by: str | Sequence[str]) -> list[str]:
    cols = [by] if isinstance(by, str) else list(by)
    bad = [c for c in cols if c not in SUMMARY_BY]
    if bad or len(set(cols)) != len(cols):
        msg = (
            f"cannot summarize by {', '.join(map(repr, bad)) or 'a repeated column'}: "
            f"by= takes distinct columns among {', '.join(SUMMARY_BY)}"
        )
        raise BadInputError(msg, field="by")
    return cols


def summarize(
    census: soma.Collection[Any],
    organism: str,
    genes: str | Sequence[str],
    by: str | Sequence[str] = ("tissue_general", "cell_type"),
) -> pd.DataFrame:
    """Expression of genes per tissue, cell type, assay, disease, sex or dataset.

    Lifecycle: experimental (since 0.1) — the columns returned and the ``by`` names
    may change between minor releases; it reads format 1 of ``cellcensus_genes`` and refuses a
    release without it (official releases have none).

    Reads the build's expression summary (never X): sums over the **primary** cells
    (``is_primary_data``) of each group. Only cells of datasets that measure a gene count for
    that gene (``n_cells``); the mean over them includes the cells with no stored value (zeros).

    Parameters
    ----------
    census
        A cellcensus release, from :func:`cellcensus.open_soma`.
    organism
        ``"Homo sapiens"``, ``"mus_musculus"``, ...
    genes
        Feature ids (``ENSG...``) or names (``CD4``); a name shared by several features gives
        each of them.
    by
        Columns to break the summary down by, among ``tissue_general``, ``cell_type``,
        ``assay``, ``disease``, ``sex`` and ``dataset_id`` (``[]``: one row per gene).

    Returns
    -------
    pandas.DataFrame
        One row per gene and combination of the ``by`` values with at least one cell:
        ``feature_id``, ``feature_name``, the ``by`` columns (with their ``*_ontology_term_id``),
        ``n_cells``, ``n_expressing``, ``fraction_expressing``, ``mean`` (of the normalized
        values), ``mean_log1p`` (of ``log1p(10,000 x normalized)``), ``mean_log1p_expressing``
        (over the expressing cells only, as the CELLxGENE Gene Expression app shows) and the
        sums they come from (``sum``, ``sumsq``, ``sum_log1p``, ``sumsq_log1p``). Genes in the
        order given; within a gene, by the ``by`` columns.

    Raises
    ------
    CensusNotFoundError
        Unknown organism, or a census without an expression summary (e.g. an official release).
    BadInputError
        Unknown genes or ``by`` columns.
    """
    from cellcensus.client._genemajor import reader_pool
    from cellcensus.client._query import experiment, experiment_name

    cols = _check_by(by)
    experiment(census, organism)  # a clear error for an unknown organism
    exp_name = experiment_name(organism)
    org = _summary_collection(census, exp_name, organism)
    static = _static(census, exp_name, org)
    chosen = _genes(static, genes)
    var_ids = chosen["soma_joinid"].to_numpy(dtype=np.int64)
    pm = census["census_data"][exp_name].ms["RNA"]["feature_dataset_presence_matrix"]
    pool = reader_pool()
    presence_f = pool.submit(lambda: pm.read((slice(None), var_ids)).tables().concat())
    rows = _summary_rows(org[SUMMARY], var_ids, pool)
    presence = presence_f.result()
    keys = [c for col in cols for c in (col, SUMMARY_BY[col]) if c is not None]
    codes, values = static.key_codes(keys)
    n_genes, n_keys = len(var_ids), len(values)
    position = {int(j): i for i, j in enumerate(var_ids)}
    # cells: a group counts for a gene when the group's dataset measures the gene
    n_datasets = int(max(static.group_dataset.max(initial=0), 0)) + 1
    pres_dataset = presence["soma_dim_0"].to_numpy().astype(np.int64)
    pres_gene = np.array([position[int(j)] for j in presence["soma_dim_1"].to_numpy()], np.int64)
    keep = pres_dataset < n_datasets
    measures = np.zeros((n_genes, n_datasets), dtype=bool)
    measures[pres_gene[keep], pres_dataset[keep]] = True
    group_cells = static.groups["n_cells"].to_numpy(dtype=np.float64)
    n_cells = np.zeros(n_genes * n_keys, dtype=np.float64)
    for i in range(n_genes):
        measured = measures[i, static.group_dataset]
        n_cells[i * n_keys : (i + 1) * n_keys] = np.bincount(
            codes[measured], weights=group_cells[measured], minlength=n_keys
        )
    # values: each summary row goes to its (gene, key)
    row_gene = np.array([position[int(j)] for j in rows["var_joinid"].to_numpy()], np.int64)
    target = row_gene * n_keys + codes[rows["group_joinid"].to_numpy().astype(np.int64)]
    size = n_genes * n_keys
    sums = {
        name: np.bincount(target, weights=rows[name].to_numpy(), minlength=size)
        for name in ("n_expressing", *_STATS)
    }
    present = np.flatnonzero(n_cells > 0)
    gene_of, key_of = np.divmod(present, n_keys)
    n = n_cells[present]
    k = sums["n_expressing"][present]
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame(
            {
                "feature_id": chosen["feature_id"].to_numpy()[gene_of],
                "feature_name": chosen["feature_name"].to_numpy()[gene_of],
                **{key: values[key].to_numpy()[key_of] for key in keys},
                "n_cells": n.astype(np.int64),
                "n_expressing": k.astype(np.int64),
                "fraction_expressing": k / n,
                "mean": sums["sum"][present] / n,
                "mean_log1p": sums["sum_log1p"][present] / n,
                "mean_log1p_expressing": np.where(
                    k > 0, sums["sum_log1p"][present] / np.maximum(k, 1), 0.0
                ),
                **{stat: sums[stat][present] for stat in _STATS},
            }
        )
