"""Up-front size of a query: cells, genes, non-zeros and bytes, before reading any of X.

The census stores per-cell (``obs.nnz``) and per-gene (``var.nnz``) non-zero counts, so the
number of X values a query returns is known exactly without touching X when no gene filter is
given, and estimated in proportion to the genes' ``nnz`` otherwise.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import tiledbsoma as soma

from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from somacore.options import SparseDFCoord

__all__ = [
    "AxisSelection",
    "QueryEstimate",
    "estimate_query",
    "format_bytes",
    "parse_bytes",
    "select_axis",
]

logger = logging.getLogger(__name__)

_UNITS = {
    "": 1,
    "B": 1,
    "K": 1000,
    "KB": 1000,
    "M": 1000**2,
    "MB": 1000**2,
    "G": 1000**3,
    "GB": 1000**3,
    "T": 1000**4,
    "TB": 1000**4,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "TIB": 1024**4,
}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*$")
#: In-memory bytes per row and column, by Arrow type, as pandas holds them.
_STRING_BYTES = 80
_CATEGORY_BYTES = 2
#: get_anndata's peak bytes per X value: the Arrow COO table (8 + 8 + 4), re-indexed
#: coordinates and the CSR it builds (measured on tiledbsoma 2.3: 52 B per value for 22 M
#: values, 1.1 GiB above the baseline).
PEAK_BYTES_PER_NNZ = 56


def parse_bytes(size: str | int) -> int:
    """Parse a size such as ``"2GiB"``, ``"512MB"``, ``"1.5G"`` or ``1_000_000`` into bytes.

    Raises
    ------
    BadInputError
        For a malformed or non-positive size.

    Examples
    --------
    >>> parse_bytes("2GiB"), parse_bytes("512MB"), parse_bytes(4096)
    (2147483648, 512000000, 4096)
    """
    if isinstance(size, bool):
        msg = f"memory size must be a number of bytes or a string like '2GiB', got {size!r}"
        raise BadInputError(msg)
    if isinstance(size, int | np.integer):
        value = int(size)
    else:
        m = _SIZE.match(str(size))
        unit = m.group(2).upper() if m else ""
        if m is None or unit not in _UNITS:
            msg = f"cannot read {size!r} as a size; write e.g. '2GiB', '512MiB', '1.5GB' or bytes"
            raise BadInputError(msg)
        value = int(float(m.group(1)) * _UNITS[unit])
    if value <= 0:
        msg = f"a memory size must be positive, got {size!r}"
        raise BadInputError(msg)
    return value


def format_bytes(n: float) -> str:
    """Human-readable binary size (``"1.5 GiB"``)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


@dataclass(frozen=True)
class AxisSelection:
    """The rows of one axis a query selects."""

    #: Number of selected rows.
    count: int
    #: Rows of the whole axis.
    total: int
    #: Sum of ``nnz`` (stored X values) over the selected rows; ``None`` without an ``nnz``
    #: column.
    nnz_sum: int | None
    #: Sum of ``nnz`` over the whole axis, when asked for and available.
    total_nnz: int | None = None
    #: Selected ``soma_joinid`` values, ascending (when kept).
    joinids: npt.NDArray[np.int64] | None = None
    #: ``nnz`` per selected row, aligned with :attr:`joinids` (when kept and available).
    nnz: npt.NDArray[np.int64] | None = None

    @property
    def everything(self) -> bool:
        """Whether every row of the axis is selected."""
        return self.count == self.total

    @property
    def ids(self) -> npt.NDArray[np.int64]:
        """:attr:`joinids`, which must have been kept."""
        if self.joinids is None:
            msg = "internal error: the selection was made without keeping its joinids"
            raise AssertionError(msg)
        return self.joinids


def _coords(coords: SparseDFCoord | None) -> tuple[SparseDFCoord, ...]:
    return (slice(None),) if coords is None else (coords,)


def select_axis(
    df: soma.DataFrame,
    *,
    value_filter: str | None,
    coords: SparseDFCoord | None,
    keep_ids: bool = True,
    with_total_nnz: bool = False,
) -> AxisSelection:
    """Select the rows a filter and coordinates pick: count and ``nnz`` sum, and optionally the
    joinids (with their ``nnz``).

    Only ``soma_joinid`` and ``nnz`` are read, batch by batch. Memory: nothing per row without
    ``keep_ids``; 16 bytes per selected row with it.
    """
    has_nnz = "nnz" in df.schema.names
    cols = ["soma_joinid", "nnz"] if has_nnz else ["soma_joinid"]
    ids: list[npt.NDArray[np.int64]] = []
    nnz: list[npt.NDArray[np.int64]] = []
    count = 0
    nnz_sum = 0
    for tbl in df.read(coords=_coords(coords), value_filter=value_filter, column_names=cols):
        count += tbl.num_rows
        if has_nnz:
            nnz_sum += int(pc.sum(tbl["nnz"]).as_py() or 0)
        if keep_ids:
            ids.append(tbl["soma_joinid"].to_numpy().astype(np.int64, copy=False))
            if has_nnz:
                nnz.append(tbl["nnz"].to_numpy().astype(np.int64, copy=False))
    joinids: npt.NDArray[np.int64] | None = None
    nnz_arr: npt.NDArray[np.int64] | None = None
    if keep_ids:
        joinids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        nnz_arr = (np.concatenate(nnz) if nnz else np.zeros(0, np.int64)) if has_nnz else None
        if joinids.size > 1 and np.any(joinids[1:] < joinids[:-1]):
            order = np.argsort(joinids, kind="stable")
            joinids = joinids[order]
            nnz_arr = nnz_arr[order] if nnz_arr is not None else None
    total = int(df.count)
    total_nnz: int | None = None
    if has_nnz and with_total_nnz:
        if count == total:
            total_nnz = nnz_sum
        else:
            total_nnz = sum(
                int(pc.sum(t["nnz"]).as_py() or 0) for t in df.read(column_names=["nnz"])
            )
    return AxisSelection(
        count=count,
        total=total,
        nnz_sum=nnz_sum if has_nnz else None,
        total_nnz=total_nnz,
        joinids=joinids,
        nnz=nnz_arr,
    )


def _row_bytes(schema: pa.Schema, columns: Sequence[str] | None) -> int:
    names = list(columns) if columns else list(schema.names)
    total = 0
    for name in names:
        if name not in schema.names:
            continue
        t = schema.field(name).type
        if pa.types.is_dictionary(t):
            total += _CATEGORY_BYTES
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
            total += _STRING_BYTES
        elif pa.types.is_boolean(t):
            total += 1
        else:
            total += max(t.bit_width // 8, 1) if hasattr(t, "bit_width") else 8
    return total + _STRING_BYTES  # the string index anndata gives every frame


@dataclass(frozen=True, kw_only=True)
class QueryEstimate:
    """What a query returns, and how much memory it takes, known before reading X.

    Lifecycle: experimental.
    """

    organism: str
    n_obs: int
    n_vars: int
    #: Stored X values in the result (exact when :attr:`nnz_exact`).
    nnz: int
    nnz_exact: bool
    #: pandas ``obs`` / ``var`` frames.
    obs_bytes: int
    var_bytes: int
    #: X as a float32 CSR matrix.
    x_bytes: int
    #: Estimated peak memory of ``get_anndata`` for this query.
    peak_bytes: int

    @property
    def anndata_bytes(self) -> int:
        """Size of the resulting AnnData in memory."""
        return self.obs_bytes + self.var_bytes + self.x_bytes

    def describe(self) -> str:
        """One line for people."""
        approx = "" if self.nnz_exact else "~"
        return (
            f"{self.n_obs:,} cells x {self.n_vars:,} genes, {approx}{self.nnz:,} stored values; "
            f"AnnData {format_bytes(self.anndata_bytes)} in memory "
            f"(X {format_bytes(self.x_bytes)}), get_anndata peak ~{format_bytes(self.peak_bytes)}"
        )


def estimate_from(
    organism: str,
    obs: AxisSelection,
    var: AxisSelection,
    *,
    x_nnz_total: int | None,
    obs_schema: pa.Schema,
    var_schema: pa.Schema,
    obs_columns: Sequence[str] | None,
    var_columns: Sequence[str] | None,
) -> QueryEstimate:
    """Build an estimate from the selected axes (see :func:`estimate_query`)."""
    exact = False
    if obs.nnz_sum is not None and var.everything:
        nnz = obs.nnz_sum
        exact = True
    elif obs.nnz_sum is not None and var.nnz_sum is not None and var.total_nnz:
        nnz = round(obs.nnz_sum * var.nnz_sum / var.total_nnz)
    elif obs.nnz_sum is not None:
        nnz = round(obs.nnz_sum * var.count / max(var.total, 1))
    else:
        total = x_nnz_total or 0
        frac = (obs.count / max(obs.total, 1)) * (var.count / max(var.total, 1))
        nnz = round(total * frac)
    if obs.count == 0 or var.count == 0:
        nnz, exact = 0, True
    index_bytes = 4 if nnz < 2**31 else 8
    x_bytes = nnz * (4 + index_bytes) + (obs.count + 1) * index_bytes
    obs_bytes = obs.count * _row_bytes(obs_schema, obs_columns)
    var_bytes = var.count * _row_bytes(var_schema, var_columns)
    return QueryEstimate(
        organism=organism,
        n_obs=obs.count,
        n_vars=var.count,
        nnz=nnz,
        nnz_exact=exact,
        obs_bytes=obs_bytes,
        var_bytes=var_bytes,
        x_bytes=x_bytes,
        peak_bytes=nnz * PEAK_BYTES_PER_NNZ + 2 * (obs_bytes + var_bytes),
    )


@functools.lru_cache(maxsize=8)
def _tiledb_ctx(config: tuple[tuple[str, str], ...]) -> Any:  # noqa: ANN401 - tiledb.Ctx (untyped)
    """A tiledb-py context per TileDB configuration (creating one costs ~40 ms)."""
    import tiledb

    return tiledb.Ctx(dict(config))


def tiledb_ctx_for(context: soma.SOMATileDBContext) -> Any:  # noqa: ANN401 - tiledb.Ctx
    """The (cached) tiledb-py context with ``context``'s TileDB configuration."""
    config = context.tiledb_config.items()
    return _tiledb_ctx(tuple(sorted((k, str(v)) for k, v in config)))


def layer_peak_bound(exp: soma.Experiment, measurement_name: str, X_name: str) -> int | None:
    """Upper bound of ``get_anndata``'s peak for *any* query of this X layer, or None if unknown.

    From array metadata only (the cells of every fragment of X, obs and var: a few small reads,
    milliseconds on a local release), so a query whose whole experiment fits in memory need not
    be estimated one by one.
    """
    import tiledb

    try:
        ms = exp.ms[measurement_name]
        layer = ms.X[X_name]

        def cells(obj: Any) -> int:  # noqa: ANN401 - a SOMA array
            # the open handle's fragment info (what tiledbsoma's own reads use); else tiledb-py
            count = getattr(getattr(obj, "_handle", None), "fragment_cell_count", None)
            if count is not None:
                return int(count())
            ctx = tiledb_ctx_for(exp.context)
            return int(sum(tiledb.array_fragments(obj.uri, ctx=ctx).cell_num))

        x_cells, n_obs, n_var = cells(layer), cells(exp.obs), cells(ms.var)
        obs_bytes = n_obs * _row_bytes(exp.obs.schema, None)
        var_bytes = n_var * _row_bytes(ms.var.schema, None)
    except (KeyError, AttributeError, soma.SOMAError, tiledb.TileDBError):
        return None
    return x_cells * PEAK_BYTES_PER_NNZ + 2 * (obs_bytes + var_bytes)


def estimate_query(
    exp: soma.Experiment,
    organism: str,
    *,
    measurement_name: str = "RNA",
    X_name: str = "raw",
    obs_value_filter: str | None = None,
    obs_coords: SparseDFCoord | None = None,
    var_value_filter: str | None = None,
    var_coords: SparseDFCoord | None = None,
    obs_column_names: Sequence[str] | None = None,
    var_column_names: Sequence[str] | None = None,
) -> QueryEstimate:
    """Estimate a query's result size from ``obs``/``var`` alone (X is not read).

    Parameters
    ----------
    exp
        The organism's experiment.
    organism
        Its name, for display.
    measurement_name, X_name
        The measurement and X layer the query reads.
    obs_value_filter, obs_coords, var_value_filter, var_coords
        The query, as for ``get_anndata``.
    obs_column_names, var_column_names
        Columns the result will hold (all by default).

    Returns
    -------
    QueryEstimate
        Counts and byte sizes.
    """
    ms = exp.ms[measurement_name]
    obs = select_axis(exp.obs, value_filter=obs_value_filter, coords=obs_coords, keep_ids=False)
    var = select_axis(
        ms.var,
        value_filter=var_value_filter,
        coords=var_coords,
        keep_ids=False,
        with_total_nnz=True,
    )
    x_total: int | None = None
    if obs.nnz_sum is None:  # X.nnz may read the whole array: only without per-cell counts
        try:
            layer = ms.X[X_name]
        except (KeyError, soma.SOMAError):
            layer = None
        x_total = int(layer.nnz) if isinstance(layer, soma.SparseNDArray) else None
    return estimate_from(
        organism,
        obs,
        var,
        x_nnz_total=x_total,
        obs_schema=exp.obs.schema,
        var_schema=ms.var.schema,
        obs_columns=obs_column_names,
        var_columns=var_column_names,
    )
