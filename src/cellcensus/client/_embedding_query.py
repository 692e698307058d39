"""``get_anndata(obs_embeddings=..., var_embeddings=...)`` over any release root.

The official client always looks embeddings up in the CZ directory. Here they are looked up in
the ``contributions.json`` of the root the census was opened from (``<root>/<tag>/soma``), else of
the configured root (:func:`configure`, ``CELLCENSUS_RELEASE_ROOT``), else the official one; the
vectors are read with the census's own context and aligned on the result's ``soma_joinid``.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cellxgene_census
import numpy as np

from cellcensus._storage.uri import is_s3
from cellcensus.client._embeddings import (
    CONTRIBUTIONS_JSON,
    EmbeddingNotFoundError,
    census_tag,
    contributions,
    embedding_source,
    embedding_uri,
    root_of_census,
)
from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import anndata
    import tiledbsoma as soma
    from somacore.options import SparseDFCoord

__all__ = ["get_anndata_with_embeddings"]

logger = logging.getLogger(__name__)

JOINID = "soma_joinid"


@dataclass(frozen=True)
class _Directory:
    """Embedding entries and how to locate an entry's array."""

    entries: dict[str, dict[str, Any]]
    where: str
    locate: Callable[[dict[str, Any]], tuple[str, str | None]]


def _read_with_context(uri: str, context: soma.SOMATileDBContext) -> bytes | None:
    """An object's bytes through TileDB's VFS with the census's own configuration (endpoint,
    credentials), or ``None`` when it does not exist."""
    import tiledb

    vfs = tiledb.VFS(config=dict(context.tiledb_config))
    try:
        if not vfs.is_file(uri):
            return None
        with vfs.open(uri) as f:
            return bytes(f.read())
    except tiledb.TileDBError as e:
        logger.debug("cannot read %s: %s", uri, e)
        return None


def _directory_for(census: soma.Collection[Any]) -> _Directory:
    """The embedding directory of the root the census was opened from (``<root>/<tag>/soma``;
    its embeddings are at ``<root>/embeddings/<tag>/<id>``) when it lists any, else the
    configured root's (:func:`configure`, ``CELLCENSUS_RELEASE_ROOT``, the official one)."""
    root = root_of_census(census.uri)
    if root is not None:
        uri = root + CONTRIBUTIONS_JSON
        data = _read_with_context(uri, census.context)
        if data:
            try:
                parsed = json.loads(data)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                msg = f"{uri} is not valid JSON ({e}); the embedding directory is damaged"
                raise BadInputError(msg) from e
            if isinstance(parsed, dict) and parsed:

                def beside(entry: dict[str, Any]) -> tuple[str, str | None]:
                    return f"{root}embeddings/{entry['census_version']}/{entry['id']}/", None

                return _Directory(entries=parsed, where=uri, locate=beside)
    es = embedding_source(None)
    return _Directory(
        entries=contributions(es),
        where=es.contributions_uri,
        locate=lambda entry: embedding_uri(es, entry),
    )


def _columns(
    column_names: soma.AxisColumnNames | None,
    obs_column_names: Sequence[str] | None,
    var_column_names: Sequence[str] | None,
) -> tuple[Sequence[str] | None, Sequence[str] | None]:
    """The effective obs/var column lists (the deprecated ``column_names`` handled as the
    official client does)."""
    if column_names is None:
        return obs_column_names, var_column_names
    if obs_column_names is not None or var_column_names is not None:
        msg = (
            "Both the deprecated 'column_names' argument and its replacements were used. "
            "Please use 'obs_column_names' and 'var_column_names' only."
        )
        raise BadInputError(msg)
    warnings.warn(
        "The argument `column_names` is deprecated and will be removed in a future release. "
        "Please use `obs_column_names` and `var_column_names` instead.",
        FutureWarning,
        stacklevel=4,
    )
    return column_names.get("obs"), column_names.get("var")


def _with_joinid(cols: Sequence[str] | None) -> tuple[list[str] | None, bool]:
    if cols is None:
        return None, False
    wanted = list(cols)
    if JOINID in wanted:
        return wanted, False
    return [JOINID, *wanted], True


def _entry(
    directory: _Directory, name: str, exp_name: str, tag: str, data_type: str
) -> dict[str, Any]:
    found = [
        e
        for e in directory.entries.values()
        if isinstance(e, dict)
        if e.get("embedding_name") == name
        and e.get("experiment_name") == exp_name
        and e.get("data_type") == data_type
        and e.get("census_version") == tag
    ]
    if not found:
        msg = (
            f"No embeddings found for {name}, {exp_name}, {tag}, {data_type} (in {directory.where})"
        )
        raise EmbeddingNotFoundError(msg)
    return sorted(found, key=lambda e: str(e.get("submission_date", "")))[-1]


def _vectors(
    census: soma.Collection[Any],
    directory: _Directory,
    entry: dict[str, Any],
    ids: np.ndarray[Any, Any],
    tag: str,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    import tiledbsoma as soma

    from cellcensus.experimental._embedding import INFO_KEY, read_vectors

    uri, region = directory.locate(entry)
    ctx = census.context
    if is_s3(uri) and region:
        ctx = ctx.replace(tiledb_config={"vfs.s3.region": region})
    with soma.open(uri, context=ctx) as arr:
        info = json.loads(arr.metadata[INFO_KEY])
        if info.get("census_version") != tag:
            msg = (
                f"Census and embedding mismatch - census_version not equal: {uri} belongs to "
                f"{info.get('census_version')!r}, the census is {tag!r}"
            )
            raise BadInputError(msg)
        if not isinstance(arr, soma.SparseNDArray):
            msg = f"{uri} is not a SparseNDArray"
            raise BadInputError(msg)
        return read_vectors(arr, ids.astype(np.int64))


def get_anndata_with_embeddings(
    census: soma.Collection[Any],
    organism: str,
    *,
    measurement_name: str,
    X_name: str,
    X_layers: Sequence[str] | None,
    obsm_layers: Sequence[str] | None,
    obsp_layers: Sequence[str] | None,
    varm_layers: Sequence[str] | None,
    varp_layers: Sequence[str] | None,
    obs_value_filter: str | None,
    obs_coords: SparseDFCoord | None,
    var_value_filter: str | None,
    var_coords: SparseDFCoord | None,
    column_names: soma.AxisColumnNames | None,
    obs_embeddings: Sequence[str],
    var_embeddings: Sequence[str],
    obs_column_names: Sequence[str] | None,
    var_column_names: Sequence[str] | None,
    modality: str,
) -> anndata.AnnData:
    """The official ``get_anndata`` plus embeddings from the census's own release root."""
    from cellcensus.client._query import experiment_name

    if obsm_layers and set(obsm_layers) & set(obs_embeddings):
        msg = "Cannot request both `obsm_layers` and `obs_embeddings` for the same embedding name"
        raise BadInputError(msg)
    if varm_layers and set(varm_layers) & set(var_embeddings):
        msg = "Cannot request both `varm_layers` and `var_embeddings` for the same embedding name"
        raise BadInputError(msg)
    if modality == "census_spatial_sequencing":
        msg = "Embeddings are not supported for the spatial sequencing collection at this time."
        raise BadInputError(msg)
    obs_cols, var_cols = _columns(column_names, obs_column_names, var_column_names)
    obs_cols, drop_obs = _with_joinid(obs_cols)
    var_cols, drop_var = _with_joinid(var_cols)
    adata = cellxgene_census.get_anndata(
        census,
        organism,
        measurement_name=measurement_name,
        X_name=X_name,
        X_layers=X_layers,
        obsm_layers=obsm_layers,
        obsp_layers=obsp_layers,
        varm_layers=varm_layers,
        varp_layers=varp_layers,
        obs_value_filter=obs_value_filter,
        obs_coords=obs_coords,
        var_value_filter=var_value_filter,
        var_coords=var_coords,
        obs_column_names=obs_cols,
        var_column_names=var_cols,
        modality=modality,
    )
    tag = census_tag(census.uri)
    exp_name = experiment_name(organism)
    directory = _directory_for(census)
    for name in obs_embeddings:
        entry = _entry(directory, name, exp_name, tag, "obs_embedding")
        adata.obsm[name] = _vectors(census, directory, entry, adata.obs[JOINID].to_numpy(), tag)
    for name in var_embeddings:
        entry = _entry(directory, name, exp_name, tag, "var_embedding")
        adata.varm[name] = _vectors(census, directory, entry, adata.var[JOINID].to_numpy(), tag)
    if drop_obs:
        adata.obs = adata.obs.drop(columns=[JOINID])
    if drop_var:
        adata.var = adata.var.drop(columns=[JOINID])
    return adata
