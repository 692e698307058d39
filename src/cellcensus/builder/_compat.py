"""The private library APIs of the builder's write path, in one place, guarded by version checks.

Neither TileDB-Py nor TileDB-SOMA has a public way to write one array fragment from many batches
in global order (a "multi-submit global-order write"): TileDB-SOMA's ``write`` takes a whole Arrow
table, TileDB-Py's ``__setitem__`` a whole set of buffers. A band of X holds more values than fit in
a task's memory, so each band task streams its chunks into one fragment per array through:

- TileDB-Py's pybind ``Query`` (``set_data_buffer`` + ``_submit`` + ``finalize``) for the X layers
  (about twice as fast as the alternative below for numeric cells, measured 2026-12-01);
- TileDB-SOMA's ``ManagedQuery`` (``set_layout`` + ``submit_batch`` +
  ``submit_and_finalize_batch``, exactly as ``tiledbsoma``'s own global-order table writes use
  it) for obs, whose dictionary columns it maps onto the array's enumerations.

TileDB's own per-cell checks of X writes (duplicates, bounds, global order) cost about 70 % of
such a write; they are switched off and the builder checks the same properties itself, in one
compiled pass, before every submit (``_xkernel.in_strict_global_order``). obs writes keep them.

Finally, a write killed mid-way leaves an uncommitted fragment directory behind (TileDB ignores it,
but a release would carry it); :func:`remove_uncommitted_fragments` deletes those in a local
staging array, knowing TileDB's format-2 directory layout.

These were written for the library versions in :data:`SUPPORTED`; :func:`check_versions` refuses
others with a clear error rather than risking a silent change of behaviour.
"""

from __future__ import annotations

import logging
import shutil
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellcensus.errors import CellCensusError

if TYPE_CHECKING:
    import numpy.typing as npt
    import pyarrow as pa

logger = logging.getLogger(__name__)

#: Library versions (``major.minor``) whose private APIs this module was written and tested for.
SUPPORTED: dict[str, tuple[str, ...]] = {"tiledb": ("0.36",), "tiledbsoma": ("2.3",)}

#: TileDB's per-cell checks of a write, replaced by the builder's own compiled check.
UNCHECKED_WRITES = {
    "sm.check_coord_dups": "false",
    "sm.check_coord_oob": "false",
    "sm.check_global_order": "false",
}
_DIMS = ("soma_dim_0", "soma_dim_1")


class UnsupportedLibraryError(CellCensusError, RuntimeError):
    """An installed library version is not one the builder's write path supports."""


def _installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def check_versions(installed: dict[str, str] | None = None) -> None:
    """Refuse library versions whose private write APIs have not been checked.

    Parameters
    ----------
    installed
        Package versions to check; default the installed ones.

    Raises
    ------
    UnsupportedLibraryError
        Naming each unsupported package, its version and the supported ones.
    """
    versions = installed or {name: _installed(name) for name in SUPPORTED}
    bad = []
    for name, prefixes in SUPPORTED.items():
        found = versions.get(name, "not installed")
        if not any(found == p or found.startswith(p + ".") for p in prefixes):
            bad.append(f"{name} {found} (supported: {', '.join(p + '.x' for p in prefixes)})")
    if bad:
        msg = (
            "the census builder's global-order writes use private APIs checked only for other "
            f"library versions: {'; '.join(bad)}. Install the supported versions "
            "(pip install 'cellcensus[build]' resolves them)"
        )
        raise UnsupportedLibraryError(msg)


@cache
def _unchecked_ctx() -> Any:  # noqa: ANN401 - a tiledb.Ctx
    """One TileDB-Py context per process for the unchecked writes (contexts are costly)."""
    import tiledb

    return tiledb.Ctx(UNCHECKED_WRITES)


class ArrayBatchWriter:
    """One global-order write query on a 2-D sparse array of float32, fed by many submits.

    Parameters
    ----------
    uri
        The array (a SOMA SparseNDArray).
    timestamp
        The fragment's timestamp (milliseconds since the epoch).
    """

    def __init__(self, uri: str, timestamp: int) -> None:
        import tiledb
        import tiledb.libtiledb as lt

        self._array = tiledb.open(uri, "w", timestamp=timestamp, ctx=_unchecked_ctx())
        self._query = lt.Query(lt.Context(self._array.ctx), self._array.array, lt.QueryType.WRITE)
        self._query.layout = lt.LayoutType.GLOBAL_ORDER
        self.submitted = 0

    def submit(
        self,
        rows: npt.NDArray[np.int64],
        cols: npt.NDArray[np.int64],
        values: npt.NDArray[np.float32],
    ) -> None:
        """Append cells that follow every cell submitted before, in global order."""
        n = len(rows)
        if n == 0:
            return
        buffers = (
            np.ascontiguousarray(rows, dtype=np.int64),
            np.ascontiguousarray(cols, dtype=np.int64),
            np.ascontiguousarray(values, dtype=np.float32),
        )
        for name, buf in zip((*_DIMS, "soma_data"), buffers, strict=True):
            self._query.set_data_buffer(name, buf, np.uint64(n))
        self._query._submit()
        self.submitted += n

    def close(self, *, commit: bool) -> None:
        """Finalize (commit the fragment) when ``commit`` and anything was written; close."""
        try:
            if commit and self.submitted:
                self._query.finalize()
        finally:
            self._array.close()


class DataFrameBatchWriter:
    """One global-order write query on a SOMA DataFrame, fed by Arrow record batches.

    Batches must follow each other in ``soma_joinid`` order. The last batch is held back until
    :meth:`close`, which submits it with the query's finalization.
    """

    def __init__(self, df: Any) -> None:  # noqa: ANN401 - an open (for write) tiledbsoma.DataFrame
        import tiledbsoma.pytiledbsoma as clib
        from tiledbsoma._managed_query import ManagedQuery

        self._mq = ManagedQuery(df)._handle
        self._mq.set_layout(clib.ResultOrder.globalorder)
        self._pending: pa.RecordBatch | None = None
        self.submitted = 0

    def submit(self, batch: pa.RecordBatch) -> None:
        """Queue a batch (the previous one is submitted now)."""
        if batch.num_rows == 0:
            return
        if self._pending is not None:
            self._mq.submit_batch(self._pending)
        self._pending = batch
        self.submitted += batch.num_rows

    def close(self, *, commit: bool) -> None:
        """Submit the last batch and commit the fragment (when ``commit``)."""
        if commit and self._pending is not None:
            self._mq.submit_and_finalize_batch(self._pending)
        self._pending = None


def remove_uncommitted_fragments(array_uri: str) -> int:
    """Delete fragment directories of a local array that have no commit file; returns how many.

    A write that was killed before committing leaves its fragment directory behind; TileDB never
    reads it, so removing it changes nothing but the bytes a release would carry. Committed
    fragments are those with a commit file or among the fragments TileDB lists (commits that
    were consolidated into a ``.con`` file have no ``.wrt`` file of their own).
    """
    import tiledb

    root = Path(array_uri.removeprefix("file://"))
    fragments, commits = root / "__fragments", root / "__commits"
    if not fragments.is_dir():
        return 0
    committed = {p.name.removesuffix(".wrt") for p in commits.glob("*.wrt")}
    # after commits consolidation (a build killed after consolidating, resumed) the commits are
    # in a ``.con`` file, no longer one ``.wrt`` each: ask TileDB which fragments it reads
    committed |= {f.uri.rstrip("/").rsplit("/", 1)[-1] for f in tiledb.array_fragments(str(root))}
    removed = 0
    for frag in fragments.iterdir():
        if frag.is_dir() and frag.name not in committed:
            shutil.rmtree(frag)
            removed += 1
    if removed:
        logger.info("removed %d uncommitted fragment(s) of %s", removed, array_uri)
    return removed
