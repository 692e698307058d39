"""Validation of ``cellcensus_genes`` (gene-major copies of X, expression summary), streamed.

Called by :func:`cellcensus.builder.validate_build` for each experiment with cells, after its own
checks of obs, var and X. Every check reads metadata, a bounded sample, or streams a table batch by
batch: memory does not grow with the census.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cellcensus._obscopy import OBS_COPY, compare_obs_copy
from cellcensus._storage.uri import is_local, local_path
from cellcensus.builder import _schema as S
from cellcensus.builder._genemajor import CELL_TILE
from cellcensus.builder._genes import GENES
from cellcensus.builder._summary import GROUPS, SUMMARY, SUMMARY_SCHEMA
from cellcensus.errors import IntegrityError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import numpy.typing as npt
    import tiledbsoma as soma


def fragments(uri: str) -> list[Any]:
    """The array's fragments (tiledb-py ``FragmentInfo``), by the start of their first dimension."""
    import tiledb

    return sorted(tiledb.array_fragments(uri), key=lambda f: f.nonempty_domain[0][0])


def _spans(uri: str) -> list[tuple[int, int]]:
    """The ranges of the first dimension that the array's fragments cover, overlapping ones merged.

    The copies (one fragment per band, disjoint in cells) and the summary (one fragment per
    written gene range) are read one span at a time: a read over all fragments at once holds a
    tile of every fragment (at 10 M cells, 44 bands: TileDB could not do it in the builder's
    64 MiB, and with a larger budget the validation's memory grew with the number of bands).
    """
    spans: list[tuple[int, int]] = []
    for f in fragments(uri):
        lo, hi = (int(v) for v in f.nonempty_domain[0])
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
    return spans


def _reopen(obj: Any) -> Any:  # noqa: ANN401 - a tiledbsoma object
    """The same SOMA object, opened for reading with the builder's bounded reads."""
    import tiledbsoma as soma

    from cellcensus.builder._band import soma_context

    return soma.open(obj.uri, context=soma_context())


#: Summary rows read at a time by the summary's check (at most; ~8 MiB of its four columns).
SUMMARY_READ_ROWS = 1 << 18
#: Cells and genes of the random sample compared between X and each gene-major copy.
SAMPLE_CELLS = 64
SAMPLE_GENES = 16


def _triples(
    arr: soma.SparseNDArray, cells: npt.NDArray[np.int64], genes: npt.NDArray[np.int64]
) -> pa.Table:
    """The stored (cell, gene, value) of a selection, sorted by cell then gene."""
    tables = [
        arr.read(coords=(part, genes)).tables().concat()
        for lo, hi in _spans(arr.uri)
        if len(part := cells[(cells >= lo) & (cells <= hi)])
    ]
    if not tables:
        empty = pa.array([], pa.int64())
        return pa.table({"r": empty, "c": empty, "v": pa.array([], pa.float32())})
    t = pa.concat_tables(tables)
    frame = pa.table({"r": t["soma_dim_0"], "c": t["soma_dim_1"], "v": t["soma_data"]})
    return frame.sort_by([("r", "ascending"), ("c", "ascending")])


def gene_major_layers(settings: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The X layers a build wrote gene-major copies of, from its ``build.json`` settings.

    ``()`` for a build with ``gene_major=False``; ``None`` when the settings predate the option.
    Builds from before ``gene_major_layers`` existed copied both layers.
    """
    setting = settings.get("gene_major")
    if setting is None:
        return None
    if not setting:
        return ()
    layers = settings.get("gene_major_layers", S.X_LAYERS)
    return tuple(str(layer) for layer in layers)


def check_genes(
    expect: Callable[[bool, str], object],
    census: soma.Collection[Any],
    name: str,
    *,
    n_obs: int,
    var_nnz: npt.NDArray[np.int64],
    x_nnz: int,
    primary: tuple[int, int],
    gene_major: tuple[str, ...] | None,
    stored_cells: Callable[[str], int],
    rng: np.random.Generator,
) -> None:
    """Check one organism's ``cellcensus_genes`` collection.

    Parameters
    ----------
    expect
        ``ValidationReport.expect``.
    census
        The open census root.
    name
        The experiment name (``homo_sapiens``).
    n_obs, var_nnz, x_nnz
        Cells of obs, ``var.nnz`` (by ``soma_joinid``), stored values of X/raw.
    primary
        Primary cells and the values they store (from obs ``is_primary_data`` and ``nnz``).
    gene_major
        The X layers the build wrote gene-major copies of (:func:`gene_major_layers` of the
        ``build.json`` settings; empty: none); ``None``: a build from before the setting
        existed (the copies present are checked, none is required).
    stored_cells
        Stored values of an array, from its fragments (and a check that they do not overlap).
    rng
        Source of the random sample.
    """
    if GENES not in census or name not in census[GENES]:
        expect(gene_major is None, f"{GENES}/{name} is missing (expression summary)")
        return
    org = census[GENES][name]
    where = f"{GENES}/{name}"
    has_copies = "X" in org
    if gene_major is not None:
        expect(
            has_copies == bool(gene_major),
            f"{where}: gene-major copies {'missing' if gene_major else 'present'} although the "
            f"build ran with gene-major layers {list(gene_major)}",
        )
    if has_copies:
        present = tuple(layer for layer in S.X_LAYERS if layer in org["X"])
        layers = gene_major if gene_major else present
        expect(
            set(org["X"].keys()) <= set(layers),
            f"{where}/X: copies of {sorted(set(org['X'].keys()) - set(layers))} although the "
            f"build ran with gene-major layers {list(layers)}",
        )
        _check_copies(
            expect,
            census,
            org["X"],
            layers=layers,
            name=name,
            n_obs=n_obs,
            var_nnz=var_nnz,
            x_nnz=x_nnz,
            stored_cells=stored_cells,
            rng=rng,
            where=where,
        )
        _check_obs_copy(expect, census, org, name=name, where=where)
    _check_summary(expect, org, len(var_nnz), primary, where)


def _check_obs_copy(
    expect: Callable[[bool, str], object],
    census: soma.Collection[Any],
    org: soma.Collection[Any],
    *,
    name: str,
    where: str,
) -> None:
    """The organism's obs copy (written with the gene-major copies) holds exactly its obs."""
    if not is_local(org.uri):  # a build is validated where it was written
        return
    path = local_path(org.uri) / OBS_COPY
    if not path.is_file():
        expect(False, f"{where}/{OBS_COPY} is missing (written with the gene-major copies)")
        return
    try:
        compare_obs_copy(census[S.CENSUS_DATA][name].obs, path)
    except (IntegrityError, OSError, pa.ArrowException) as e:
        expect(False, f"{where}/{OBS_COPY}: {e}")


def _check_copies(
    expect: Callable[[bool, str], object],
    census: soma.Collection[Any],
    copies: soma.Collection[Any],
    *,
    layers: tuple[str, ...],
    name: str,
    n_obs: int,
    var_nnz: npt.NDArray[np.int64],
    x_nnz: int,
    stored_cells: Callable[[str], int],
    rng: np.random.Generator,
    where: str,
) -> None:
    import tiledb

    x = census[S.CENSUS_DATA][name].ms[S.MEASUREMENT].X
    n_var = len(var_nnz)
    cells = np.sort(rng.choice(n_obs, size=min(SAMPLE_CELLS, n_obs), replace=False))
    expressed = np.flatnonzero(var_nnz)
    genes = np.sort(
        rng.choice(expressed, size=min(SAMPLE_GENES, len(expressed)), replace=False)
    ).astype(np.int64)
    for layer in layers:
        expect(layer in copies, f"{where}/X has no copy of layer {layer}")
        if layer not in copies:
            continue
        with _reopen(copies[layer]) as copy:
            expect(
                tuple(int(s) for s in copy.shape) == (n_obs, n_var),
                f"{where}/X/{layer}: shape {copy.shape}, expected {(n_obs, n_var)}",
            )
            schema = tiledb.ArraySchema.load(copy.uri)
            expect(
                schema.cell_order == "col-major"
                and schema.tile_order == "col-major"
                and int(schema.domain.dim(1).tile) == 1
                and int(schema.domain.dim(0).tile) == CELL_TILE,
                f"{where}/X/{layer}: not gene-major (cell and tile order {schema.cell_order}, "
                f"{schema.tile_order}; gene tile {schema.domain.dim(1).tile})",
            )
            n = stored_cells(copy.uri)
            expect(n == x_nnz, f"{where}/X/{layer}: {n} stored values, X/{layer} has {x_nnz}")
            if len(cells) and len(genes):
                got = _triples(copy, cells, genes)
                want = _triples(x[layer], cells, genes)
                expect(got.equals(want), f"{where}/X/{layer}: sampled values differ from X/{layer}")
            # whole genes: a gene's values in the copy add up to var.nnz
            if len(genes):
                g = genes[: min(4, len(genes))]
                counts = np.zeros(len(g), dtype=np.int64)
                for lo, hi in _spans(copy.uri):
                    for table in copy.read(coords=(slice(lo, hi), g)).tables():
                        col = table["soma_dim_1"].to_numpy()
                        counts += np.array([(col == j).sum() for j in g], dtype=np.int64)
                expect(
                    bool(np.array_equal(counts, var_nnz[g])),
                    f"{where}/X/{layer}: values of genes {g.tolist()} ({counts.tolist()}) differ "
                    f"from var.nnz ({var_nnz[g].tolist()})",
                )


def _check_summary(
    expect: Callable[[bool, str], object],
    org: soma.Collection[Any],
    n_var: int,
    primary: tuple[int, int],
    where: str,
) -> None:
    for member in (SUMMARY, GROUPS):
        expect(member in org, f"{where} has no {member}")
        if member not in org:
            return
    with _reopen(org[SUMMARY]) as summary, _reopen(org[GROUPS]) as groups:
        expect(
            set(SUMMARY_SCHEMA.names) <= set(summary.schema.names),
            f"{where}/{SUMMARY}: columns {summary.schema.names} lack some of "
            f"{SUMMARY_SCHEMA.names}",
        )
        n_groups = 0
        n_cells = 0
        for batch in groups.read(column_names=["soma_joinid", "n_cells"]):
            n_groups += batch.num_rows
            n_cells += int(pc.sum(batch["n_cells"]).as_py() or 0)
        n_primary, primary_nnz = primary
        expect(
            n_cells == n_primary,
            f"{where}/{GROUPS}: groups hold {n_cells} cells, obs has {n_primary} primary cells",
        )
        n_expressing = 0
        bad = 0
        columns = ["var_joinid", "group_joinid", "n_expressing", "sum"]
        # a gene has at most one row per group: reads of `step` genes hold a bounded number of
        # rows, however many groups (datasets, cell types) the census has
        step = max(1, SUMMARY_READ_ROWS // max(n_groups, 1))
        batches = (
            batch
            for lo, hi in _spans(summary.uri)
            for start in range(lo, hi + 1, step)
            for batch in summary.read(
                coords=(slice(start, min(start + step, hi + 1) - 1),), column_names=columns
            )
        )
        for batch in batches:
            n_expressing += int(pc.sum(batch["n_expressing"]).as_py() or 0)
            var_ids = batch["var_joinid"].to_numpy()
            group_ids = batch["group_joinid"].to_numpy()
            ok = (
                (var_ids >= 0)
                & (var_ids < n_var)
                & (group_ids >= 0)
                & (group_ids < n_groups)
                & (batch["n_expressing"].to_numpy() > 0)
                & (batch["sum"].to_numpy() >= 0)
            )
            bad += int((~ok).sum())
        expect(
            bad == 0, f"{where}/{SUMMARY}: {bad} rows out of range (gene, group, counts or sums)"
        )
        expect(
            n_expressing == primary_nnz,
            f"{where}/{SUMMARY}: n_expressing adds up to {n_expressing}, the primary cells store "
            f"{primary_nnz} values",
        )
