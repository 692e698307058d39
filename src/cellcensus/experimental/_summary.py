"""``summarize``: where genes are expressed, from the expression summary of a cellcensus build.

Every cellcensus build holds, per organism, ``cellcensus_genes/<organism>/expression_summary``:
for each gene and *cell group* (one combination of dataset, tissue_general, cell_type, assay,
disease and sex among the primary cells), the cells expressing the gene and sums of the
normalized values (see ``docs/schema.md``). :func:`summarize` adds the groups up along the
columns asked for and divides: a few small reads, never X.
"""

from __future__ import annotations

import atexit
from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cellcensus.errors import BadInputError, CensusNotFoundError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa
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
_COLUMNS = ["var_joinid", "group_joinid", "n_expressing", *_STATS]
#: TileDB settings of the summary reads (over the census's own): TileDB joins the byte ranges of
#: the tiles a read needs when they are less than ``vfs.min_batch_gap`` apart (500 KB by default),
#: so 10 genes scattered over a summary of a few MB read all of it; here only a gene's own
#: consecutive tiles are joined. A summary read returns a few MB at most: the census's read
#: buffers (1 GiB a column, the official client's) need not be allocated for it.
_READ_CONFIG: dict[str, str | float | None] = {
    "vfs.min_batch_gap": 16 * 1024,
    "vfs.min_batch_size": 0,
    "soma.init_buffer_bytes": 16 * 1024**2,
}


@dataclass(frozen=True)
class _Static:
    """The parts of an organism's summary that do not depend on the genes (cached per URI)."""

    summary_uri: str  # the expression_summary DataFrame
    groups: pd.DataFrame  # one row per cell group (soma_joinid order)
    group_dataset: np.ndarray[Any, np.dtype[np.int64]]  # census_info dataset joinid of each group
    group_cells: np.ndarray[Any, np.dtype[np.float64]]  # n_cells of each group
    var_joinid: np.ndarray[Any, np.dtype[np.int64]]  # var soma_joinid of each var row
    feature_id: np.ndarray[Any, np.dtype[np.object_]]  # of each var row (str)
    feature_name: np.ndarray[Any, np.dtype[np.object_]]  # of each var row (str)
    by_id: dict[str, int] = field(default_factory=dict)  # feature_id -> var row
    by_name: dict[str, list[int]] = field(default_factory=dict)  # feature_name -> var rows
    keys: dict[tuple[str, ...], _Keys] = field(default_factory=dict)

    def key_codes(self, keys: list[str]) -> _Keys:
        """Each group's code among the distinct values of ``keys`` (sorted), and those values."""
        cached = self.keys.get(tuple(keys))
        if cached is None:
            codes: np.ndarray[Any, np.dtype[np.int64]]
            if keys:
                grouped = self.groups.groupby(keys, sort=True, observed=True)
                codes = np.asarray(grouped.ngroup().to_numpy(), dtype=np.int64)
                values = grouped.size().reset_index()[keys]
                labels = {k: values[k].to_numpy() for k in keys}
                n = len(values)
            else:
                codes = np.zeros(len(self.groups), dtype=np.int64)
                labels, n = {}, 1
            cached = self.keys[tuple(keys)] = _Keys(codes=codes, labels=labels, n=n)
        return cached


@dataclass(frozen=True)
class _Keys:
    """The combinations of some ``by`` columns present among the groups."""

    codes: np.ndarray[Any, np.dtype[np.int64]]  # each group's combination
    labels: dict[str, np.ndarray[Any, Any]]  # each combination's value of each column
    n: int  # combinations


_CACHE: OrderedDict[str, _Static] = OrderedDict()
_CACHE_LOCK = Lock()
_CACHE_SIZE = 8


def _static(census: soma.Collection[Any], exp_name: str, org: Any) -> _Static:  # noqa: ANN401 - a SOMA collection
    """Cell groups, their datasets' joinids and var names; read once per release (releases are
    immutable) and kept for the next call."""
    key = str(org.uri)
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
    feature_id = np.asarray(var["feature_id"].astype(str).tolist(), dtype=object)
    feature_name = np.asarray(var["feature_name"].astype(str).tolist(), dtype=object)
    names: dict[str, list[int]] = {}
    for row, name in enumerate(feature_name.tolist()):
        names.setdefault(name, []).append(row)
    static = _Static(
        summary_uri=str(org[SUMMARY].uri),
        groups=groups,
        group_dataset=group_dataset,
        group_cells=groups["n_cells"].to_numpy(dtype=np.float64),
        var_joinid=var["soma_joinid"].to_numpy(dtype=np.int64),
        feature_id=feature_id,
        feature_name=feature_name,
        by_id={f: i for i, f in enumerate(feature_id.tolist())},
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


def _genes(static: _Static, genes: str | Sequence[str]) -> np.ndarray[Any, np.dtype[np.intp]]:
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
    return np.fromiter(dict.fromkeys(rows), dtype=np.intp)


_HANDLES: OrderedDict[tuple[str, soma.SOMATileDBContext], soma.DataFrame] = OrderedDict()


def _summary_array(static: _Static, context: soma.SOMATileDBContext) -> soma.DataFrame:
    """The summary DataFrame, opened with ``_READ_CONFIG`` over ``context`` and kept open for
    the next calls (per release, organism and context: a handle serves many reads at once)."""
    import tiledbsoma as soma

    key = (static.summary_uri, context)
    with _CACHE_LOCK:
        handle = _HANDLES.get(key)
        if handle is not None:
            _HANDLES.move_to_end(key)
            return handle
    opened = soma.DataFrame.open(
        static.summary_uri, context=context.replace(tiledb_config=_READ_CONFIG)
    )
    with _CACHE_LOCK:
        handle = _HANDLES.setdefault(key, opened)
        while len(_HANDLES) > _CACHE_SIZE:
            # not closed here: another thread may still be reading through it; the handle is
            # closed when it is garbage-collected
            _HANDLES.popitem(last=False)
    if handle is not opened:  # another thread opened the same one meanwhile
        opened.close()
    return handle


@atexit.register
def _close_handles() -> None:
    """Close the cached summary handles when the interpreter exits."""
    with _CACHE_LOCK:
        while _HANDLES:
            _, handle = _HANDLES.popitem()
            handle.close()


def _summary_rows(
    summary: soma.DataFrame, var_ids: np.ndarray[Any, np.dtype[np.int64]]
) -> pa.Table:
    """The summary rows of the genes ``var_ids`` (the columns ``summarize`` uses), in one read.

    Rows are stored in (gene, group) order in small data tiles, so the read decodes the genes'
    tiles only and fetches each gene's bytes as one range per column (``_READ_CONFIG``).
    """
    table: pa.Table = summary.read(coords=(np.sort(var_ids),), column_names=_COLUMNS).concat()
    return table


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
    var_ids = static.var_joinid[chosen]
    pm = census["census_data"][exp_name].ms["RNA"]["feature_dataset_presence_matrix"]
    presence_f = reader_pool().submit(lambda: pm.read((slice(None), var_ids)).tables().concat())
    rows = _summary_rows(_summary_array(static, census.context), var_ids)
    presence = presence_f.result()
    keys = [c for col in cols for c in (col, SUMMARY_BY[col]) if c is not None]
    combos = static.key_codes(keys)
    n_genes, n_keys = len(var_ids), combos.n
    size = n_genes * n_keys
    # each var joinid's position among the genes asked for (joinids are distinct)
    sorter = np.argsort(var_ids)

    def position(joinids: pa.Array | pa.ChunkedArray) -> np.ndarray[Any, np.dtype[np.intp]]:
        found: np.ndarray[Any, np.dtype[np.intp]] = sorter[
            np.searchsorted(var_ids, np.asarray(joinids, dtype=np.int64), sorter=sorter)
        ]
        return found

    # cells: a group counts for a gene when the group's dataset measures the gene
    n_datasets = int(max(static.group_dataset.max(initial=0), 0)) + 1
    pres_dataset = presence["soma_dim_0"].to_numpy().astype(np.int64)
    keep = pres_dataset < n_datasets
    measures = np.zeros((n_genes, n_datasets), dtype=bool)
    measures[position(presence["soma_dim_1"])[keep], pres_dataset[keep]] = True
    n_cells = np.zeros(size, dtype=np.float64)
    for i in range(n_genes):  # gene by gene: memory of one gene's groups, however many genes
        measured = measures[i, static.group_dataset]
        n_cells[i * n_keys : (i + 1) * n_keys] = np.bincount(
            combos.codes[measured], weights=static.group_cells[measured], minlength=n_keys
        )
    # values: each summary row goes to its (gene, key)
    group = np.asarray(rows["group_joinid"], dtype=np.int64)
    target = position(rows["var_joinid"]) * n_keys + combos.codes[group]
    sums = {
        name: np.bincount(target, weights=np.asarray(rows[name]), minlength=size)
        for name in ("n_expressing", *_STATS)
    }
    present = np.flatnonzero(n_cells > 0)
    gene_of, key_of = np.divmod(present, n_keys)
    gene_rows = chosen[gene_of]
    n = n_cells[present]
    k = sums["n_expressing"][present]
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame(
            {
                "feature_id": static.feature_id[gene_rows],
                "feature_name": static.feature_name[gene_rows],
                **{key: combos.labels[key][key_of] for key in keys},
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
