"""Reading an export back into an :class:`anndata.AnnData` (all three formats)."""

from __future__ import annotations

from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy import sparse

from cellcensus._formats.export import ExportInfo
from cellcensus.client._writers import export_format, parquet_paths
from cellcensus.errors import BadInputError, NotFoundError

__all__ = ["read_export"]


def _read_parquet(path: Path) -> anndata.AnnData:
    paths = parquet_paths(path)
    for key, p in paths.items():
        if not p.exists():
            msg = f"{p} is missing: {path} is not a complete parquet export ({key} part)"
            raise NotFoundError(msg)
    ExportInfo.from_json(paths["meta"].read_bytes(), where=str(paths["meta"]))
    obs = pq.read_table(paths["obs"]).to_pandas()
    var = pq.read_table(paths["var"]).to_pandas()
    obs.index = pd.Index(np.arange(len(obs)).astype(str), dtype=object)
    var.index = pd.Index(np.arange(len(var)).astype(str), dtype=object)
    if "soma_joinid" not in obs or "soma_joinid" not in var:
        msg = "the obs/var side files need their soma_joinid column to place the X values"
        raise BadInputError(msg)
    x = pq.read_table(paths["X"])
    o = x["obs_soma_joinid"].to_numpy()
    v = x["var_soma_joinid"].to_numpy()
    rows = np.searchsorted(obs["soma_joinid"].to_numpy(), o)
    cols = np.searchsorted(var["soma_joinid"].to_numpy(), v)
    X = sparse.csr_matrix(
        (x["value"].to_numpy(), (rows, cols)), shape=(len(obs), len(var)), dtype=np.float32
    )
    return anndata.AnnData(X=X, obs=obs, var=var)


def read_export(path: str | Path) -> anndata.AnnData:
    """Read an export written by :func:`export` into memory.

    Lifecycle: experimental.

    Parameters
    ----------
    path
        The export's path (``*.h5ad``, ``*.zarr`` or the X file ``*.parquet``).

    Returns
    -------
    anndata.AnnData
        The exported data. For parquet, ``obs``/``var`` need their ``soma_joinid`` column
        (exported by default).
    """
    p = Path(path)
    fmt = export_format(p, None)
    if fmt == "h5ad":
        return anndata.read_h5ad(p)
    if fmt == "zarr":
        return anndata.read_zarr(p)
    return _read_parquet(p)
