"""Bounded-memory export of a query to ``.h5ad``, ``.zarr`` or ``.parquet``.

The query's rows are selected from ``obs`` / ``var`` first (joinids and per-cell ``nnz`` only),
which gives an exact up-front estimate. Then ``obs`` and ``var`` are copied in row chunks, and X
is read in row-major order, chunk of cells after chunk of cells, and appended batch by batch:
no step holds more than one read batch. The memory budget sizes TileDB's read buffers and
memory budget, the row chunks, and the cell chunks of the X reads.

Memory that does not shrink with the budget: 8 bytes per selected cell and gene (their
joinids), plus the fixed cost of the interpreter, TileDB and the open census.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa
import tiledbsoma as soma
from scipy import sparse

from cellcensus._formats.export import ExportInfo
from cellcensus._fs import mapped_fs_errors
from cellcensus._progress import NoProgress
from cellcensus.client._args import check_axis_column_names, check_coords, last_joinid
from cellcensus.client._budget import MemoryPlan, memory_plan
from cellcensus.client._estimate import (
    AxisSelection,
    QueryEstimate,
    estimate_from,
    format_bytes,
    parse_bytes,
    select_axis,
)
from cellcensus.client._filters import check_value_filter
from cellcensus.client._query import experiment
from cellcensus.client._writers import (
    CsrChunk,
    ExportWriter,
    export_format,
    make_writer,
    parquet_paths,
)
from cellcensus.errors import BadInputError, CensusNotFoundError, IntegrityError, StorageError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import numpy.typing as npt
    from somacore.options import SparseDFCoord

    from cellcensus._progress import Progress

__all__ = ["DEFAULT_MEMORY_BUDGET", "ExportPlan", "ExportResult", "export", "plan_export"]

logger = logging.getLogger(__name__)

DEFAULT_MEMORY_BUDGET = "2GiB"


@dataclass(frozen=True, kw_only=True)
class ExportResult:
    """What an export wrote.

    Lifecycle: experimental.
    """

    path: Path
    format: str
    #: Every file or directory written (parquet writes side files).
    outputs: tuple[Path, ...]
    estimate: QueryEstimate
    n_obs: int
    n_vars: int
    #: X values written (equals ``estimate.nnz`` when the estimate was exact).
    nnz: int
    seconds: float
    memory_budget: int

    @property
    def values_per_second(self) -> float:
        """X values written per second."""
        return self.nnz / self.seconds if self.seconds > 0 else float("inf")


def _columns(column_names: soma.AxisColumnNames | None, axis: str) -> list[str] | None:
    if column_names is None:
        return None
    cols = cast("Sequence[str] | None", column_names.get(axis))
    return list(cols) if cols else None


def _coords_for(ids: npt.NDArray[np.int64]) -> slice | npt.NDArray[np.int64]:
    """A contiguous run as a slice (one range for TileDB), else the points."""
    if ids.size and int(ids[-1]) - int(ids[0]) + 1 == ids.size:
        return slice(int(ids[0]), int(ids[-1]))
    return ids


def _chunks(ids: npt.NDArray[np.int64], size: int) -> Iterator[tuple[int, npt.NDArray[np.int64]]]:
    for start in range(0, ids.size, size):
        yield start, ids[start : start + size]


class _Gather:
    """Growable (row, col, value) arrays for one chunk, pre-sized to its ``nnz`` bound."""

    def __init__(self, capacity: int) -> None:
        cap = max(capacity, 1)
        self.rows = np.empty(cap, np.int32)
        self.cols = np.empty(cap, np.int32)
        self.data = np.empty(cap, np.float32)
        self.n = 0

    def add(
        self,
        rows: npt.NDArray[np.int32],
        cols: npt.NDArray[np.int32],
        data: npt.NDArray[np.float32],
    ) -> None:
        end = self.n + rows.size
        if end > self.rows.size:
            cap = max(end, int(self.rows.size * 1.5))
            self.rows = np.resize(self.rows, cap)
            self.cols = np.resize(self.cols, cap)
            self.data = np.resize(self.data, cap)
        self.rows[self.n : end] = rows
        self.cols[self.n : end] = cols
        self.data[self.n : end] = data
        self.n = end

    def arrays(
        self,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        return self.rows[: self.n], self.cols[: self.n], self.data[: self.n]


def _empty_rows(obs_ids: npt.NDArray[np.int64], var_ids: npt.NDArray[np.int64]) -> CsrChunk:
    return CsrChunk(
        obs_joinids=obs_ids,
        var_joinids=var_ids,
        indptr=np.zeros(obs_ids.size + 1, np.int64),
        indices=np.zeros(0, np.int32),
        data=np.zeros(0, np.float32),
    )


def export_schema(df: soma.DataFrame, columns: list[str] | None) -> pa.Schema:
    """The columns an export writes for one axis (all, or ``columns`` in that order).

    Raises
    ------
    BadInputError
        For a column the DataFrame does not have.
    """
    names = columns or list(df.schema.names)
    missing = [c for c in names if c not in df.schema.names]
    if missing:
        msg = (
            f"unknown column(s) {', '.join(missing)} in {df.uri}; "
            f"the columns are: {', '.join(df.schema.names)}"
        )
        raise BadInputError(msg, field="column_names")
    return pa.schema([df.schema.field(n) for n in names])


class ExportPlan:
    """A planned export: the selection and its estimate, ready to :meth:`run`.

    Lifecycle: experimental.

    Made by :func:`plan_export`; holds the experiment open with a memory-bounded context.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        *,
        exp: soma.Experiment,
        organism: str,
        measurement_name: str,
        X_name: str,
        obs: AxisSelection,
        var: AxisSelection,
        obs_columns: list[str] | None,
        var_columns: list[str] | None,
        estimate: QueryEstimate,
        memory: MemoryPlan,
        query: dict[str, Any],
    ) -> None:
        self.exp = exp
        self.organism = organism
        self.measurement_name = measurement_name
        self.X_name = X_name
        self.obs = obs
        self.var = var
        self.obs_columns = obs_columns
        self.var_columns = var_columns
        #: The up-front estimate (cells, genes, stored values, bytes).
        self.estimate = estimate
        self.memory = memory
        self.query = query

    def __enter__(self) -> ExportPlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the experiment opened for the export."""
        self.exp.close()

    # ------------------------------------------------------------------ axes
    def _write_axis(
        self,
        writer: ExportWriter,
        axis: str,
        *,
        df: soma.DataFrame,
        sel: AxisSelection,
        columns: list[str] | None,
        progress: Progress,
    ) -> None:
        schema = export_schema(df, columns)
        dict_cols = [f.name for f in schema if pa.types.is_dictionary(f.type)]
        enums = df.get_enumeration_values(dict_cols) if dict_cols else {}
        categories = {c: [str(v) for v in enums[c].to_pylist()] for c in dict_cols}
        writer.begin_axis(axis, sel.count, schema, categories)
        progress.start(axis, sel.count, "rows")
        for _, ids in _chunks(sel.ids, self.memory.rows_per_chunk):
            coords = _coords_for(ids)
            got = 0
            for tbl in df.read(coords=(coords,), column_names=schema.names):
                writer.write_rows(axis, tbl.select(schema.names))
                got += tbl.num_rows
                progress.advance(axis, tbl.num_rows)
            if got != ids.size:
                msg = (
                    f"{df.uri}: read {got} rows for {ids.size} selected joinids; was the array "
                    "changed during the export?"
                )
                raise IntegrityError(msg)
        progress.finish(axis)

    # ------------------------------------------------------------------ X
    def _cell_chunks(self) -> Iterator[tuple[int, int, int]]:
        """Consecutive runs ``[start, stop)`` of selected cells (positions) whose values fit
        :attr:`MemoryPlan.values_per_chunk`, with the run's value bound (by ``obs.nnz``, an
        upper bound when genes are filtered)."""
        n = self.obs.count
        limit = self.memory.values_per_chunk
        if self.obs.nnz is None:
            per_cell = max(self.estimate.nnz // max(n, 1), 1)
            step = max(min(limit // (4 * per_cell), self.memory.cells_per_read), 1)
            for start in range(0, n, step):
                stop = min(start + step, n)
                yield start, stop, 4 * per_cell * (stop - start)
            return
        bounds = np.cumsum(self.obs.nnz)
        start = 0
        while start < n:
            base = int(bounds[start - 1]) if start else 0
            stop = int(np.searchsorted(bounds, base + limit, side="right"))
            stop = min(max(stop, start + 1), start + self.memory.cells_per_read)
            yield start, stop, int(bounds[stop - 1]) - base
            start = stop

    def _x_chunks(self) -> Iterator[CsrChunk]:
        """X, chunk of cells after chunk of cells, as sorted CSR.

        Each chunk is read unordered (TileDB's fast path), its values gathered into arrays sized
        by the chunk's ``nnz`` bound (12 bytes per value), then converted to CSR (8 more).
        """
        X = self.exp.ms[self.measurement_name].X[self.X_name]
        if not isinstance(X, soma.SparseNDArray):
            msg = f"X layer {self.X_name!r} is not a SparseNDArray; export reads sparse X only"
            raise BadInputError(msg)
        obs_ids = self.obs.ids
        var_ids = self.var.ids
        n_var = var_ids.size
        dense_var = self.var.everything and bool(
            n_var == 0 or (var_ids[0] == 0 and var_ids[-1] == n_var - 1)
        )
        var_coords: slice | npt.NDArray[np.int64] = (
            slice(None) if dense_var else _coords_for(var_ids)
        )
        for start, stop, bound in self._cell_chunks():
            ids = obs_ids[start:stop]
            buf = _Gather(bound)
            for tbl in X.read(coords=(_coords_for(ids), var_coords)).tables():
                d0 = tbl["soma_dim_0"].to_numpy()
                d1 = tbl["soma_dim_1"].to_numpy()
                rows = np.searchsorted(ids, d0).astype(np.int32)
                cols = (d1 if dense_var else np.searchsorted(var_ids, d1)).astype(np.int32)
                buf.add(rows, cols, tbl["soma_data"].to_numpy())
                del tbl, d0, d1, rows, cols
            rows, cols, data = buf.arrays()
            csr = sparse.csr_matrix((data, (rows, cols)), shape=(ids.size, n_var), dtype=np.float32)
            del rows, cols, data, buf
            csr.sort_indices()
            yield CsrChunk(
                obs_joinids=ids,
                var_joinids=var_ids,
                indptr=csr.indptr.astype(np.int64, copy=False),
                indices=csr.indices.astype(np.int32, copy=False),
                data=csr.data,
            )

    def _check_h5ad_space(self, path: Path) -> None:
        """Refuse an ``.h5ad`` export that cannot fit on its disk, before writing anything.

        HDF5 cannot recover from a full disk (h5py then crashes the process instead of raising),
        so the space is checked first: the AnnData size plus one pre-allocated chunk per dataset
        (at most 1 MiB each), with a margin.
        """
        n_obs_cols = len(self.obs_columns) if self.obs_columns else len(self.exp.obs.schema)
        ms = self.exp.ms[self.measurement_name]
        n_var_cols = len(self.var_columns) if self.var_columns else len(ms.var.schema)
        n_datasets = 2 * (n_obs_cols + n_var_cols) + 5
        need = int(self.estimate.anndata_bytes * 1.5) + n_datasets * 1024 * 1024 + 16 * 1024**2
        free = shutil.disk_usage(path.parent).free
        if free < need:
            msg = (
                f"exporting to {path}: about {format_bytes(need)} of disk space is needed and "
                f"{format_bytes(free)} is free on that file system; free space, choose another "
                "location, or export to .zarr or .parquet (compressed, written in small pieces)"
            )
            raise StorageError(msg)

    # ------------------------------------------------------------------ run
    def run(
        self,
        to: str | Path,
        *,
        format: str | None = None,
        progress: Progress | None = None,
        overwrite: bool = False,
    ) -> ExportResult:
        """Write the export.

        Parameters
        ----------
        to
            Output path: ``*.h5ad``, ``*.zarr`` or ``*.parquet``.
        format
            ``"h5ad"``, ``"zarr"`` or ``"parquet"``, when the suffix does not say it.
        progress
            Receives stages ``obs``, ``var`` (rows) and ``X`` (stored values).
        overwrite
            Replace existing outputs (otherwise an existing output is an error).

        Returns
        -------
        ExportResult
            Paths, counts and timing.

        Raises
        ------
        BadInputError
            Unknown format, or the output exists and ``overwrite`` is False.
        """
        if "://" in str(to):
            msg = f"export writes local files; give a local path instead of {str(to)!r}"
            raise BadInputError(msg, field="to")
        path = Path(to).expanduser()
        fmt = export_format(path, format)
        outputs = (
            tuple(parquet_paths(path)[k] for k in ("X", "obs", "var", "meta"))
            if fmt == "parquet"
            else (path,)
        )
        existing = [p for p in outputs if p.exists()]
        if existing and not overwrite:
            msg = f"{existing[0]} exists; pass overwrite=True (--overwrite) to replace it"
            raise BadInputError(msg, field="to")
        if not path.parent.is_dir():
            msg = f"the directory {path.parent} does not exist"
            raise BadInputError(msg, field="to")
        p: Progress = progress or NoProgress()
        t0 = time.monotonic()
        est = self.estimate
        logger.info("exporting %s to %s: %s", self.organism, path, est.describe())
        hint = "the partial output was removed; fix this and re-run the export"
        with mapped_fs_errors(f"exporting to {path}", path, hint=hint):
            return self._run(path, fmt, outputs, p, t0)

    def _run(
        self, path: Path, fmt: str, outputs: tuple[Path, ...], p: Progress, t0: float
    ) -> ExportResult:
        """Write the export (:meth:`run` after its checks)."""
        est = self.estimate
        with tempfile.TemporaryFile(dir=path.parent):
            pass  # a read-only or forbidden directory fails here, before any work
        if fmt == "h5ad":
            self._check_h5ad_space(path)
        writer = make_writer(path, fmt)
        nnz = 0
        try:
            ms = self.exp.ms[self.measurement_name]
            self._write_axis(
                writer, "obs", df=self.exp.obs, sel=self.obs, columns=self.obs_columns, progress=p
            )
            self._write_axis(
                writer, "var", df=ms.var, sel=self.var, columns=self.var_columns, progress=p
            )
            writer.begin_x(self.obs.count, self.var.count, est.nnz)
            p.start("X", est.nnz, "values")
            if self.var.count:
                for chunk in self._x_chunks():
                    writer.write_x(chunk)
                    nnz += len(chunk.data)
                    p.advance("X", len(chunk.data))
            elif self.obs.count:
                writer.write_x(_empty_rows(self.obs.ids, self.var.ids))
            p.finish("X")
            seconds = time.monotonic() - t0
            meta = ExportInfo(
                organism=self.organism,
                measurement_name=self.measurement_name,
                X_name=self.X_name,
                query=self.query,
                n_obs=self.obs.count,
                n_vars=self.var.count,
                nnz=nnz,
                estimate=dataclasses.asdict(est),
            )
            writer.commit(meta)
        except BaseException:
            try:
                writer.abort()
            except OSError as e:  # the first failure is the one to report
                logger.warning("could not remove the partial export of %s: %s", path, e)
            raise
        logger.info(
            "exported %d cells x %d genes, %d values in %.1f s",
            self.obs.count,
            self.var.count,
            nnz,
            seconds,
        )
        return ExportResult(
            path=path,
            format=fmt,
            outputs=outputs,
            estimate=est,
            n_obs=self.obs.count,
            n_vars=self.var.count,
            nnz=nnz,
            seconds=seconds,
            memory_budget=self.memory.budget,
        )


def plan_export(
    census: soma.Collection[Any],
    organism: str,
    *,
    obs_value_filter: str | None = None,
    var_value_filter: str | None = None,
    obs_coords: SparseDFCoord | None = None,
    var_coords: SparseDFCoord | None = None,
    column_names: soma.AxisColumnNames | None = None,
    X_name: str = "raw",
    measurement_name: str = "RNA",
    modality: str = "census_data",
    memory_budget: str | int = DEFAULT_MEMORY_BUDGET,
) -> ExportPlan:
    """Select a query's rows and estimate its size, without reading X (see :func:`export`).

    Lifecycle: experimental.

    Returns
    -------
    ExportPlan
        With ``.estimate``; call ``.run(to=...)`` to write it.
    """
    budget = parse_bytes(memory_budget)
    exp0 = experiment(census, organism, modality)
    if measurement_name not in exp0.ms:
        msg = f"{organism}: no measurement {measurement_name!r}"
        raise CensusNotFoundError(msg)
    ms0 = exp0.ms[measurement_name]
    check_value_filter(exp0.obs, obs_value_filter, where=f"obs_value_filter ({exp0.uri})")
    check_value_filter(ms0.var, var_value_filter, where=f"var_value_filter ({exp0.uri})")
    check_axis_column_names(column_names)
    check_coords(obs_coords, where="obs_coords", last=last_joinid(exp0.obs))
    check_coords(var_coords, where="var_coords", last=last_joinid(ms0.var))
    has_x = "X" in ms0 and X_name in ms0.X
    obs_cols = _columns(column_names, "obs")
    var_cols = _columns(column_names, "var")
    export_schema(exp0.obs, obs_cols)  # unknown columns fail here, before any work
    export_schema(ms0.var, var_cols)
    # select with a private handle whose context bounds TileDB's memory
    provisional = memory_plan(budget, 0, 0)
    ctx = exp0.context.replace(tiledb_config=provisional.tiledb_config())
    with soma.Experiment.open(exp0.uri, context=ctx) as sel:
        sel_var = sel.ms[measurement_name].var
        obs = select_axis(sel.obs, value_filter=obs_value_filter, coords=obs_coords)
        var = select_axis(
            sel_var, value_filter=var_value_filter, coords=var_coords, with_total_nnz=True
        )
        obs_schema, var_schema = sel.obs.schema, sel_var.schema
        # X.nnz may read the whole array: only when obs has no per-cell nnz to sum
        layer = ms0.X[X_name] if has_x and obs.nnz_sum is None else None
        x_total = int(layer.nnz) if isinstance(layer, soma.SparseNDArray) else None
    if not has_x and obs.count and var.count:
        msg = f"{organism}: no X layer {X_name!r} in {ms0.uri}"
        raise CensusNotFoundError(msg)
    memory = memory_plan(budget, obs.count, var.count)
    est = estimate_from(
        organism,
        obs,
        var,
        x_nnz_total=x_total,
        obs_schema=obs_schema,
        var_schema=var_schema,
        obs_columns=obs_cols,
        var_columns=var_cols,
    )
    exp = soma.Experiment.open(
        exp0.uri, context=exp0.context.replace(tiledb_config=memory.tiledb_config())
    )
    var = dataclasses.replace(var, nnz=None)  # only needed for the estimate
    query = {
        "obs_value_filter": obs_value_filter,
        "var_value_filter": var_value_filter,
        "obs_coords": None if obs_coords is None else repr(obs_coords),
        "var_coords": None if var_coords is None else repr(var_coords),
        "column_names": None
        if column_names is None
        else {k: list(cast("Sequence[str]", v) or []) for k, v in column_names.items()},
        "census_uri": census.uri,
    }
    return ExportPlan(
        exp=exp,
        organism=organism,
        measurement_name=measurement_name,
        X_name=X_name,
        obs=obs,
        var=var,
        obs_columns=obs_cols,
        var_columns=var_cols,
        estimate=est,
        memory=memory,
        query=query,
    )


def export(
    census: soma.Collection[Any],
    organism: str,
    *,
    to: str | Path,
    obs_value_filter: str | None = None,
    var_value_filter: str | None = None,
    obs_coords: SparseDFCoord | None = None,
    var_coords: SparseDFCoord | None = None,
    column_names: soma.AxisColumnNames | None = None,
    X_name: str = "raw",
    memory_budget: str | int = DEFAULT_MEMORY_BUDGET,
    progress: Progress | None = None,
    measurement_name: str = "RNA",
    modality: str = "census_data",
    format: str | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Stream a query's result to disk without holding it in memory.

    Lifecycle: experimental.

    The same query as :func:`get_anndata` (same rows, columns and values, in the same order),
    written chunk by chunk:

    - ``*.h5ad`` / ``*.zarr``: AnnData's on-disk encoding; ``anndata.read_h5ad`` /
      ``anndata.read_zarr`` give what ``get_anndata`` returns (X as CSR float32);
    - ``*.parquet``: X as a long table (``obs_soma_joinid``, ``var_soma_joinid``, ``value``),
      plus ``<stem>.obs.parquet``, ``<stem>.var.parquet`` and ``<stem>.export.json``; read it
      back with :func:`read_export`.

    Parameters
    ----------
    census
        The census, from :func:`open_soma`.
    organism
        ``"Homo sapiens"``, ``"mus_musculus"``, ...
    to
        Output path; its suffix picks the format.
    obs_value_filter, var_value_filter, obs_coords, var_coords
        The query (as for :func:`get_anndata`).
    column_names
        ``{"obs": [...], "var": [...]}``: the columns to write (all by default).
    X_name
        X layer (``"raw"`` or ``"normalized"``).
    memory_budget
        Most memory the export may use beyond the fixed cost of the process, e.g. ``"2GiB"``.
    progress
        Receives progress (stages ``obs``, ``var``, ``X``).
    measurement_name, modality
        Measurement and top-level collection.
    format
        ``"h5ad"``, ``"zarr"`` or ``"parquet"`` when the suffix does not say it.
    overwrite
        Replace existing outputs.

    Returns
    -------
    ExportResult
        Paths, the up-front estimate, counts and timing.

    Raises
    ------
    CensusNotFoundError
        Unknown organism, measurement or layer (a ``ValueError``).
    FilterError
        Bad filter.
    BadInputError
        Bad path or format, output exists, or a budget too small for the selection.
    """
    with plan_export(
        census,
        organism,
        obs_value_filter=obs_value_filter,
        var_value_filter=var_value_filter,
        obs_coords=obs_coords,
        var_coords=var_coords,
        column_names=column_names,
        X_name=X_name,
        measurement_name=measurement_name,
        modality=modality,
        memory_budget=memory_budget,
    ) as plan:
        return plan.run(to, format=format, progress=progress, overwrite=overwrite)
