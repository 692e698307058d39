"""Reading an embedding to attach: a matrix and the key of each of its rows.

Sources
-------
- ``.npy``: a 2-D matrix; row ``i`` is ``soma_joinid`` ``i`` unless ``joinids`` names the keys.
- ``.parquet``: a table with key columns (``soma_joinid``, or ``dataset_id`` +
  ``observation_joinid``) and either one list column of floats (the vectors) or one numeric
  column per component (in column order).
- ``.zarr``: a 2-D zarr array (as ``.npy``), or a zarr group with an ``embedding`` array and key
  arrays ``soma_joinid`` (or ``dataset_id`` + ``observation_joinid``); an AnnData ``.zarr`` store
  with ``obsm_key``.
- ``.h5ad`` / AnnData ``.zarr`` with ``obsm_key``: ``obsm[obsm_key]``, keyed by the ``obs``
  column ``soma_joinid`` if present, else by ``observation_joinid`` with the ``dataset_id`` column
  (or the dataset given, or the file name when it is a dataset id of the release).

Keys are checked here for form (integers, no duplicates); that they exist in the release is
checked in :mod:`cellcensus.embeddings._census`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cellcensus.errors import BadInputError, NotFoundError

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

__all__ = ["EmbeddingInput", "check_matrix", "read_input"]

SOMA_JOINID = "soma_joinid"
DATASET_ID = "dataset_id"
OBSERVATION_JOINID = "observation_joinid"
_KEY_COLUMNS = (SOMA_JOINID, DATASET_ID, OBSERVATION_JOINID)


@dataclass(frozen=True)
class EmbeddingInput:
    """An embedding read from a file: float32 matrix and the key of each row.

    Exactly one of ``soma_joinids`` and (``dataset_ids``, ``observation_joinids``) is set.
    """

    matrix: npt.NDArray[np.float32]
    source: str
    soma_joinids: npt.NDArray[np.int64] | None = None
    dataset_ids: npt.NDArray[Any] | None = None
    observation_joinids: npt.NDArray[Any] | None = None

    @property
    def n_rows(self) -> int:
        """Number of vectors."""
        return int(self.matrix.shape[0])

    @property
    def n_features(self) -> int:
        """Vector length."""
        return int(self.matrix.shape[1])


def check_matrix(m: object, where: str) -> npt.NDArray[np.float32]:
    """A 2-D real matrix as C-ordered float32, refusing NaN / infinite values.

    Raises
    ------
    BadInputError
        Wrong number of dimensions, no rows or columns, a non-numeric dtype, values that do not
        fit float32, or a NaN / infinite value (the first bad row is named).
    """
    arr = np.asarray(m)
    if arr.ndim != 2:
        msg = (
            f"{where}: an embedding must be a 2-D matrix (cells x components), got shape "
            f"{arr.shape}"
        )
        raise BadInputError(msg)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        msg = f"{where}: the embedding is empty (shape {arr.shape})"
        raise BadInputError(msg)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        msg = (
            f"{where}: embedding values must be real numbers (float or integer), got dtype "
            f"{arr.dtype}"
        )
        raise BadInputError(msg)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    bad_rows = ~np.isfinite(out).all(axis=1)
    if bad_rows.any():
        first = int(np.flatnonzero(bad_rows)[0])
        msg = (
            f"{where}: {int(bad_rows.sum())} rows hold NaN or infinite values (or values too large "
            f"for float32), the first is row {first}; leave cells without a vector out of the file "
            "(they read back as NaN) instead of writing NaN"
        )
        raise BadInputError(msg)
    return out


def _as_joinids(values: object, where: str) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        msg = f"{where}: soma_joinid keys must be a 1-D array, got shape {arr.shape}"
        raise BadInputError(msg)
    if not np.issubdtype(arr.dtype, np.integer):
        if (
            np.issubdtype(arr.dtype, np.floating)
            and np.all(np.isfinite(arr))
            and np.all(arr == np.round(arr))
        ):
            arr = arr.astype(np.int64)
        else:
            msg = f"{where}: soma_joinid keys must be integers, got dtype {arr.dtype}"
            raise BadInputError(msg)
    return arr.astype(np.int64, copy=False)


def _from_table(df: pd.DataFrame, column: str | None, where: str) -> EmbeddingInput:
    """Keys and matrix from a table of key columns plus a vector column or component columns."""
    cols = [c for c in df.columns if c not in _KEY_COLUMNS]
    if column is not None:
        if column not in df.columns:
            msg = f"{where}: no column {column!r} (columns: {', '.join(map(str, df.columns))})"
            raise BadInputError(msg)
        cols = [column]
    if not cols:
        msg = f"{where}: no embedding column besides the key columns"
        raise BadInputError(msg)
    if len(cols) == 1 and df[cols[0]].dtype == object:
        try:
            matrix = np.stack([np.asarray(v, dtype=np.float64) for v in df[cols[0]]])
        except (ValueError, TypeError) as e:
            msg = f"{where}: column {cols[0]!r} must hold equal-length lists of numbers ({e})"
            raise BadInputError(msg) from e
    else:
        matrix = df[cols].to_numpy()
    return _keyed(matrix, {k: df[k].to_numpy() for k in _KEY_COLUMNS if k in df.columns}, where)


def _keyed(matrix: object, keys: dict[str, Any], where: str) -> EmbeddingInput:
    m = check_matrix(matrix, where)
    if SOMA_JOINID in keys:
        ids = _as_joinids(keys[SOMA_JOINID], f"{where} ({SOMA_JOINID})")
        _same_len(m, ids, where)
        return EmbeddingInput(matrix=m, source=where, soma_joinids=ids)
    if DATASET_ID in keys and OBSERVATION_JOINID in keys:
        ds = np.asarray(keys[DATASET_ID]).astype(str)
        ob = np.asarray(keys[OBSERVATION_JOINID]).astype(str)
        _same_len(m, ds, where)
        _same_len(m, ob, where)
        return EmbeddingInput(matrix=m, source=where, dataset_ids=ds, observation_joinids=ob)
    msg = (
        f"{where}: no cell keys: give a '{SOMA_JOINID}' column, or '{DATASET_ID}' and "
        f"'{OBSERVATION_JOINID}' columns (the stable cell key of a source H5AD)"
    )
    raise BadInputError(msg)


def _same_len(m: npt.NDArray[np.float32], keys: npt.NDArray[Any], where: str) -> None:
    if len(keys) != m.shape[0]:
        msg = (
            f"{where}: {m.shape[0]} vectors but {len(keys)} keys; the matrix must have one row "
            "per key"
        )
        raise BadInputError(msg)


def _read_keys_file(path: Path) -> dict[str, Any]:
    """Keys from ``.npy`` (soma_joinids) or a ``.parquet`` / ``.csv`` table of key columns."""
    where = str(path)
    if not path.is_file():
        msg = f"keys file {path} does not exist"
        raise NotFoundError(msg)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return {SOMA_JOINID: _load_npy(path)}
    if suffix in (".parquet", ".csv"):
        import pandas as pd

        df = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
        keys = {k: df[k].to_numpy() for k in _KEY_COLUMNS if k in df.columns}
        if not keys:
            msg = (
                f"{where}: needs a '{SOMA_JOINID}' column or '{DATASET_ID}' + "
                f"'{OBSERVATION_JOINID}' columns"
            )
            raise BadInputError(msg)
        return keys
    msg = f"{where}: keys must be a .npy array of soma_joinids or a .parquet / .csv table"
    raise BadInputError(msg)


def _load_npy(path: Path) -> npt.NDArray[Any]:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)  # type: ignore[no-any-return]
    except (ValueError, OSError) as e:
        msg = f"{path} is not a readable .npy array ({e})"
        raise BadInputError(msg) from e


def _read_anndata(path: Path, obsm_key: str, dataset_id: str | None) -> EmbeddingInput:
    import anndata as ad

    where = f"{path} obsm[{obsm_key!r}]"
    try:
        adata = ad.read_zarr(path) if path.suffix.lower() == ".zarr" else ad.read_h5ad(path, "r")
    except Exception as e:  # anndata raises many types for unreadable files
        msg = f"{path} is not a readable AnnData file ({type(e).__name__}: {e})"
        raise BadInputError(msg) from e
    if obsm_key not in adata.obsm:
        known = ", ".join(adata.obsm.keys()) or "none"
        msg = f"{path} has no obsm[{obsm_key!r}] (obsm keys: {known})"
        raise BadInputError(msg)
    m = adata.obsm[obsm_key]
    if hasattr(m, "toarray"):
        m = m.toarray()
    obs = adata.obs
    if SOMA_JOINID in obs.columns:
        return _keyed(m, {SOMA_JOINID: obs[SOMA_JOINID].to_numpy()}, where)
    obj = obs[OBSERVATION_JOINID].to_numpy() if OBSERVATION_JOINID in obs.columns else None
    if obj is None:
        msg = (
            f"{path}: obs has neither '{SOMA_JOINID}' nor '{OBSERVATION_JOINID}'; cells cannot "
            "be matched to the census"
        )
        raise BadInputError(msg)
    if DATASET_ID in obs.columns:
        ds = obs[DATASET_ID].astype(str).to_numpy()
    else:
        ds = np.full(len(obs), dataset_id if dataset_id is not None else path.stem, dtype=object)
    return _keyed(m, {DATASET_ID: ds, OBSERVATION_JOINID: obj}, where)


def _read_zarr(path: Path, column: str | None, keys: dict[str, Any] | None) -> EmbeddingInput:
    import zarr

    where = str(path)
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as e:  # zarr raises several types for a bad store
        msg = f"{path} is not a readable zarr store ({type(e).__name__}: {e})"
        raise BadInputError(msg) from e
    if isinstance(node, zarr.Array):
        return _keyed(node[...], keys or {}, where) if keys else _implicit(node[...], where)
    name = column or "embedding"
    if name not in node:
        msg = f"{where}: zarr group has no array {name!r} (members: {', '.join(node.array_keys())})"
        raise BadInputError(msg)
    found = {k: node[k][...] for k in _KEY_COLUMNS if k in node}
    return _keyed(node[name][...], keys or found, where)


def _implicit(matrix: object, where: str) -> EmbeddingInput:
    m = check_matrix(matrix, where)
    return EmbeddingInput(
        matrix=m, source=where, soma_joinids=np.arange(m.shape[0], dtype=np.int64)
    )


def read_input(
    path: str | Path,
    *,
    obsm_key: str | None = None,
    column: str | None = None,
    joinids: str | Path | None = None,
    dataset_id: str | None = None,
) -> EmbeddingInput:
    """Read an embedding file (see the module docstring for the accepted forms).

    Parameters
    ----------
    path
        ``.npy``, ``.parquet``, ``.zarr`` or ``.h5ad``.
    obsm_key
        Read ``obsm[obsm_key]`` of an AnnData file (``.h5ad`` or AnnData ``.zarr``).
    column
        The vector column of a parquet table (or array of a zarr group).
    joinids
        Keys of a ``.npy`` / zarr-array matrix's rows: a ``.npy`` of soma_joinids, or a
        ``.parquet`` / ``.csv`` table of key columns. Default: row ``i`` is soma_joinid ``i``.
    dataset_id
        For an AnnData file without a ``dataset_id`` column: the dataset its cells come from
        (default: the file name without extension).

    Returns
    -------
    EmbeddingInput
        float32 matrix and row keys.

    Raises
    ------
    BadInputError
        Unreadable or malformed input (shape, dtype, NaN, keys).
    NotFoundError
        A file does not exist.
    """
    p = Path(path)
    if not p.exists():
        msg = f"embedding file {p} does not exist"
        raise NotFoundError(msg)
    keys = _read_keys_file(Path(joinids)) if joinids is not None else None
    suffix = p.suffix.lower()
    if obsm_key is not None:
        if suffix not in (".h5ad", ".zarr"):
            msg = f"{p}: obsm_key needs an AnnData file (.h5ad or .zarr)"
            raise BadInputError(msg)
        return _read_anndata(p, obsm_key, dataset_id)
    if suffix == ".npy":
        m = _load_npy(p)
        return _keyed(m, keys, str(p)) if keys else _implicit(m, str(p))
    if suffix == ".parquet":
        import pandas as pd

        try:
            df = pd.read_parquet(p)
        except Exception as e:  # pyarrow raises several types for a bad file
            msg = f"{p} is not a readable parquet file ({type(e).__name__}: {e})"
            raise BadInputError(msg) from e
        return _from_table(df, column, str(p))
    if suffix == ".zarr":
        return _read_zarr(p, column, keys)
    if suffix == ".h5ad":
        msg = f"{p}: give the obsm key holding the embedding (--from-obsm KEY / obsm_key=)"
        raise BadInputError(msg)
    msg = f"{p}: unsupported embedding file type {suffix!r}; use .npy, .parquet, .zarr or .h5ad"
    raise BadInputError(msg)
