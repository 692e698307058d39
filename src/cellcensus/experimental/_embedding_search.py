"""Nearest neighbours in embedding space, and metadata predicted from them
(``cellxgene_census.experimental.find_nearest_obs`` / ``predict_obs_metadata`` over any root).

``find_nearest_obs`` queries the embedding's IVFFlat index (TileDB-Vector-Search), found through
the mirror's ``embeddings_base_uri``, exactly as the official client does, so both return the
same neighbours for the same index. ``NeighborObs`` is the official result type itself.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from cellxgene_census.experimental import NeighborObs

from cellcensus._storage.uri import is_s3
from cellcensus.client._embeddings import embedding_source, index_location
from cellcensus.client._open import get_default_soma_context, open_soma, storage_config
from cellcensus.errors import BadInputError
from cellcensus.experimental._embedding import (
    experiment_name,
    get_embedding_metadata_by_name,
)

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    import anndata as ad
    import tiledbsoma as soma

    from cellcensus.settings import Settings

__all__ = ["NeighborObs", "find_nearest_obs", "predict_obs_metadata"]


def _index_config(uri: str, region: str | None, settings: Settings | None) -> dict[str, str]:
    """TileDB configuration to read the index: the official defaults, the storage settings for
    ``s3://`` (endpoint, keys), and the mirror's region."""
    base = get_default_soma_context().tiledb_config
    cfg = {k: str(v) for k, v in base.items()}
    if is_s3(uri):
        cfg.update(storage_config(settings))
        if region:
            cfg["vfs.s3.region"] = region
    return cfg


def find_nearest_obs(
    embedding_name: str,
    organism: str,
    census_version: str,
    query: ad.AnnData,
    *,
    k: int = 10,
    nprobe: int = 100,
    memory_GiB: int = 4,
    mirror: str | None = None,
    embedding_metadata: dict[str, Any] | None = None,
    release_root: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    **kwargs: Any,  # noqa: ANN401 - passed to the index query, as in the official client
) -> NeighborObs:
    """The ``k`` cells of the census nearest to each query cell in an embedding's space.

    Lifecycle: experimental.

    Parameters
    ----------
    embedding_name, organism, census_version
        The embedding, as for :func:`get_embedding_metadata_by_name`.
    query
        AnnData whose ``obsm[embedding_name]`` holds the query vectors.
    k
        Neighbours per query cell.
    nprobe
        Index partitions searched per query (more: slower, more exact).
    memory_GiB
        Memory budget of the index, in GiB.
    mirror
        Mirror whose ``embeddings_base_uri`` locates the index (default: the default mirror).
    embedding_metadata
        The entry from :func:`get_embedding_metadata_by_name` (saves a look-up).
    release_root, settings
        The release root and storage settings.
    **kwargs
        More arguments of the index's ``query``.

    Returns
    -------
    NeighborObs
        ``distances`` (squared L2) and ``neighbor_ids`` (``soma_joinid``), each ``q x k``.

    Raises
    ------
    BadInputError
        (a ``ValueError``) The query lacks the layer or has the wrong width, or the embedding
        has no index.
    ConfigError
        tiledb-vector-search is not installed.
    """
    if embedding_metadata is None:
        embedding_metadata = get_embedding_metadata_by_name(
            embedding_name,
            organism,
            census_version,
            release_root=release_root,
            settings=settings,
        )
    if embedding_metadata.get("embedding_name") != embedding_name:
        msg = (
            f"embedding_metadata is for {embedding_metadata.get('embedding_name')!r}, "
            f"not {embedding_name!r}"
        )
        raise BadInputError(msg)
    n_features = int(embedding_metadata["n_features"])
    if embedding_name not in query.obsm:
        msg = f"Query does not have the expected layer {embedding_name}"
        raise BadInputError(msg)
    vectors = np.asarray(query.obsm[embedding_name])
    if vectors.ndim != 2 or vectors.shape[1] != n_features:
        msg = (
            f"Query embedding {embedding_name} has {vectors.shape[-1]} features, "
            f"expected {n_features}"
        )
        raise BadInputError(msg)
    es = embedding_source(release_root, settings)
    loc = index_location(es, embedding_metadata, mirror=mirror)
    if loc is None:
        msg = (
            f"No suitable embedding index found for {embedding_name}: attach it with "
            "`cellcensus embeddings add ... --index`"
        )
        raise BadInputError(msg)
    uri, region = loc
    from cellcensus.embeddings._write import _vector_search

    vs = _vector_search()
    memory_vectors = memory_GiB * (2**30) // (4 * n_features)
    index = vs.ivf_flat_index.IVFFlatIndex(
        uri=uri, config=_index_config(uri, region, es.settings), memory_budget=memory_vectors
    )
    distances, neighbor_ids = index.query(
        np.ascontiguousarray(vectors, dtype=np.float32), k=k, nprobe=nprobe, **kwargs
    )
    return NeighborObs(distances=distances, neighbor_ids=neighbor_ids)


def predict_obs_metadata(
    organism: str,
    census_version: str,
    neighbors: NeighborObs,
    column_names: Sequence[str],
    experiment: soma.Experiment | None = None,
    *,
    release_root: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """Predict ``obs`` columns of query cells as the most frequent value among their neighbours.

    Lifecycle: experimental.

    Parameters
    ----------
    organism, census_version
        As given to :func:`find_nearest_obs`.
    neighbors
        Its result.
    column_names
        Categorical ``obs`` columns to predict (``cell_type``, ``tissue_general``, ...).
    experiment
        The open experiment (else the census is opened for the call).
    release_root, settings
        The release root and storage settings.

    Returns
    -------
    pandas.DataFrame
        One row per query cell: each column's prediction, and ``<column>_confidence``, the
        fraction of neighbours that have the predicted value. Ties go to the value that sorts
        first (as in the official client).
    """
    ids = np.asarray(neighbors.neighbor_ids).astype(np.int64)
    n_queries, n_neighbors = ids.shape
    with contextlib.ExitStack() as stack:
        if experiment is None:
            census = stack.enter_context(
                open_soma(
                    census_version=census_version, release_root=release_root, settings=settings
                )
            )
            experiment = census["census_data"][experiment_name(organism)]
        wanted = np.unique(ids[ids >= 0])
        obs = (
            experiment.obs.read(coords=(wanted,), column_names=["soma_joinid", *column_names])
            .concat()
            .to_pandas()
            .set_index("soma_joinid")
        )
    out: dict[str, Any] = {}
    flat = ids.reshape(-1)
    present = np.isin(flat, obs.index.to_numpy())
    for col in column_names:
        cat = obs[col].astype("category")
        n_cat = len(cat.cat.categories)
        codes_by_id = pd.Series(cat.cat.codes.to_numpy(), index=obs.index)
        codes = np.full(flat.shape, -1, dtype=np.int64)
        codes[present] = codes_by_id.reindex(flat[present]).to_numpy()
        counts = np.zeros((n_queries, max(n_cat, 1)), dtype=np.int64)
        rows = np.repeat(np.arange(n_queries), n_neighbors)
        ok = codes >= 0
        np.add.at(counts, (rows[ok], codes[ok]), 1)
        totals = counts.sum(axis=1)
        best = counts.argmax(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            confidence = counts[np.arange(n_queries), best] / totals
        out[col] = pd.Index(np.asarray(cat.cat.categories, dtype=object)[best]).astype(object)
        out[f"{col}_confidence"] = confidence.astype(np.float64)
    return pd.DataFrame.from_dict(out)
