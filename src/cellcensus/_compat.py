"""The one place where cellcensus relies on library behaviour that is not a public, typed API.

TileDB reports storage failures (an S3 request refused with HTTP 403, a server that cannot be
reached) only as the text of a generic error, and the class of that error depends on what is
loaded: libtiledb's C++ exceptions become ``tiledbsoma.SOMAError``, or ``tiledb.TileDBError``
once ``tiledb`` (tiledb-py, the ``[build]`` extra) is imported — both bind the same C++ type and
the last one loaded wins. Everything that depends on either fact is here, written for the
versions in :data:`WRITTEN_FOR`; ``tests/client/test_client_compat.py`` checks it against real
failures of the installed versions and fails when a version outside that set is installed, so
that the text matching is looked at again before a lock upgrade lands.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from scipy import sparse

__all__ = [
    "WRITTEN_FOR",
    "csr_from_soma",
    "soma_axis_frame",
    "storage_failure",
    "str_index",
    "tiledb_error_types",
    "untested_versions",
]

#: Distribution → release series whose error texts this module was written against.
WRITTEN_FOR: dict[str, tuple[str, ...]] = {
    "tiledbsoma": ("2.3",),
    "tiledb": ("0.36",),
}


def untested_versions() -> dict[str, str]:
    """Installed distributions of :data:`WRITTEN_FOR` whose release series is not listed."""
    out = {}
    for dist, series in WRITTEN_FOR.items():
        try:
            v = version(dist)
        except PackageNotFoundError:  # tiledb is optional (the [build] extra)
            continue
        if not any(v == s or v.startswith(s + ".") for s in series):
            out[dist] = v
    return out


def tiledb_error_types() -> tuple[type[Exception], ...]:
    """The exception classes a failing TileDB call may raise in this process."""
    import tiledbsoma

    types: list[type[Exception]] = [tiledbsoma.SOMAError]
    tiledb = sys.modules.get("tiledb")  # only when already loaded: never import it here
    error = getattr(tiledb, "TileDBError", None)
    if isinstance(error, type) and issubclass(error, Exception):
        types.append(error)
    return tuple(types)


def storage_failure(error: BaseException) -> Literal["denied", "unreachable"] | None:
    """What a TileDB error says about the storage: refused (HTTP 403), unreachable, or neither.

    Matches the texts libtiledb's S3 layer writes (``[HTTP Response Code: 403]``,
    ``curlCode: 7, Could not connect to server``).
    """
    text = str(error)
    if "Response Code: 403" in text:
        return "denied"
    lower = text.lower()
    if "curlcode" in lower or "could not connect" in lower or "connection refused" in lower:
        return "unreachable"
    return None


def csr_from_soma(table: pa.Table, shape: tuple[int, int], context: Any) -> sparse.csr_matrix:  # noqa: ANN401 - a SOMATileDBContext
    """A CSR matrix from (row position, column position, value) triples, built exactly as
    ``tiledbsoma``'s ``ExperimentAxisQuery.to_anndata`` builds X (its private ``fastercsx``:
    sorted indices, its index types), so that matrices read from another array compare equal.
    """
    from tiledbsoma._fastercsx import CompressedMatrix

    matrix: sparse.csr_matrix = CompressedMatrix.from_soma(
        table, shape, "csr", True, context
    ).to_scipy()
    return matrix


def soma_axis_frame(df: Any, frame: pd.DataFrame, fallback_index: str) -> pd.DataFrame:  # noqa: ANN401 - a SOMA DataFrame
    """Set the index of an axis frame as ``tiledbsoma``'s ``to_anndata`` does (its private
    ``_df_set_index``, from the DataFrame's original-index metadata or the fallback column)."""
    import json

    from tiledbsoma._constants import SOMA_DATAFRAME_ORIGINAL_INDEX_NAME_JSON as KEY
    from tiledbsoma._util import _df_set_index

    original = json.loads(df.metadata.get(KEY, "null"))
    if not (original is None or isinstance(original, str)):
        msg = f"{df.uri}: invalid {KEY} metadata: {original}"
        raise ValueError(msg)
    _df_set_index(frame, original, fallback_index)
    return frame


def str_index(index: pd.Index) -> pd.Index:
    """``index.astype(str)``, as ``anndata`` converts a non-string index; for ``0 .. n-1`` the
    strings are formatted by Arrow, and recorded as unique in pandas' private cache of
    ``Index.is_unique`` (distinct integers give distinct strings), which ``anndata``'s name
    check would otherwise compute by hashing every name."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if isinstance(index, pd.RangeIndex) and index.step == 1 and index.name is None:
        text = pa.array(np.arange(index.start, index.stop, dtype=np.int64)).cast(pa.string())
        names = pd.Index(text.to_numpy(zero_copy_only=False), dtype=object)
        cache = getattr(names, "_cache", None)
        if isinstance(cache, dict):
            cache["is_unique"] = True
        return names
    formatted: pd.Index = index.astype(str)
    return formatted
