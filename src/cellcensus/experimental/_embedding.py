"""Embeddings of a release: discover them and read their vectors (the embedding functions of
``cellxgene_census.experimental``, over any release root).

Each function takes the official arguments and returns the official result; the keyword-only
``release_root`` and ``settings`` choose the release root as for :func:`cellcensus.open_soma`
(default: :func:`cellcensus.configure`, ``CELLCENSUS_RELEASE_ROOT``, then the official
directory). Organisms may be given as ``"homo_sapiens"`` or ``"Homo sapiens"``.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from cellcensus._storage.uri import is_s3
from cellcensus.client._directory import (
    get_census_version_description,
    get_census_version_directory,
)
from cellcensus.client._embeddings import (
    EmbeddingNotFoundError,
    contributions,
    embedding_source,
)
from cellcensus.client._open import get_default_soma_context, open_soma, storage_config
from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    import numpy.typing as npt
    import pyarrow as pa
    import tiledbsoma as soma

    from cellcensus.settings import Settings

__all__ = [
    "get_all_available_embeddings",
    "get_all_census_versions_with_embedding",
    "get_embedding",
    "get_embedding_metadata",
    "get_embedding_metadata_by_name",
]

INFO_KEY = "CxG_embedding_info"
Root = str | os.PathLike[str] | None


def experiment_name(organism: str) -> str:
    """``"Homo sapiens"`` -> ``"homo_sapiens"``."""
    return "_".join(organism.strip().split()).lower()


def context_for(
    uri: str, context: soma.SOMATileDBContext | None, settings: Settings | None
) -> soma.SOMATileDBContext:
    """``context`` if given, else the official default context plus the storage settings of an
    ``s3://`` URI (endpoint, credentials)."""
    if context is not None:
        return context
    if is_s3(uri):
        return get_default_soma_context(tiledb_config=storage_config(settings))
    return get_default_soma_context()


def get_embedding_metadata(
    embedding_uri: str,
    context: soma.SOMATileDBContext | None = None,
    *,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The metadata of an embedding array (its ``CxG_embedding_info`` JSON) as a dict.

    Lifecycle: experimental.

    Parameters
    ----------
    embedding_uri
        The embedding's URI (``uri`` of an entry of :func:`get_all_available_embeddings`).
    context
        A :class:`tiledbsoma.SOMATileDBContext` to open it with.
    settings
        Storage settings for an ``s3://`` URI when no ``context`` is given.

    Returns
    -------
    dict
        ``id``, ``embedding_name``, ``census_version``, ``experiment_name``, ``n_features``, ...

    Raises
    ------
    BadInputError
        The array has no embedding metadata.
    """
    import tiledbsoma as soma

    with soma.open(embedding_uri, context=context_for(embedding_uri, context, settings)) as arr:
        raw = arr.metadata.get(INFO_KEY)
    if not isinstance(raw, str):
        msg = f"{embedding_uri} has no {INFO_KEY} metadata: it is not a census embedding"
        raise BadInputError(msg)
    info = json.loads(raw)
    if not isinstance(info, dict):
        msg = f"{embedding_uri}: {INFO_KEY} is not a JSON object"
        raise BadInputError(msg)
    return info


def _joinids(ids: npt.NDArray[np.int64] | pa.Array | Any) -> npt.NDArray[np.int64]:  # noqa: ANN401
    import pandas as pd
    import pyarrow as pa

    if isinstance(ids, pa.Array | pa.ChunkedArray | pd.Series):
        ids = ids.to_numpy()
    if not isinstance(ids, np.ndarray) or ids.dtype != np.int64:
        msg = "obs_soma_joinids must be array of int64"
        raise TypeError(msg)
    return ids


def read_vectors(arr: soma.SparseNDArray, ids: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Vectors of ``ids`` (rows in the order given) from an open embedding array; NaN rows for
    cells without a vector."""
    import tiledbsoma as soma

    n_features = int(arr.shape[1])
    out = np.full((len(ids), n_features), np.nan, dtype=np.float32)
    if len(ids) == 0:
        return out
    indexer = soma.IntIndexer(ids, context=arr.context)
    flat = out.reshape(-1)
    for tbl in arr.read(coords=(ids,)).tables():
        rows = indexer.get_indexer(tbl.column("soma_dim_0").to_numpy())
        cols = tbl.column("soma_dim_1").to_numpy()
        flat[rows * n_features + cols] = tbl.column("soma_data").to_numpy()
    return out


def check_census_match(census: soma.Collection[Any], info: dict[str, Any], where: str) -> None:
    """The embedding's experiment and measurement exist in the census (else ``ValueError``)."""
    exp_name = info.get("experiment_name")
    if exp_name not in census["census_data"]:
        msg = f"Census and embedding mismatch - experiment_name does not exist ({where})"
        raise BadInputError(msg)
    if info.get("measurement_name", "RNA") not in census["census_data"][exp_name].ms:
        msg = f"Census and embedding mismatch - measurement_name does not exist ({where})"
        raise BadInputError(msg)


def get_embedding(
    census_version: str,
    embedding_uri: str,
    obs_soma_joinids: npt.NDArray[np.int64] | pa.Array,
    context: soma.SOMATileDBContext | None = None,
    *,
    release_root: Root = None,
    settings: Settings | None = None,
) -> npt.NDArray[np.float32]:
    """Vectors of the given cells as a dense float32 matrix; cells without a vector are NaN.

    Lifecycle: experimental.

    Parameters
    ----------
    census_version
        The census version (tag or alias) the embedding must belong to.
    embedding_uri
        The embedding's URI.
    obs_soma_joinids
        Cells (``soma_joinid``, int64); row ``i`` of the result is ``obs_soma_joinids[i]``.
    context
        A :class:`tiledbsoma.SOMATileDBContext` for the embedding and the census.
    release_root, settings
        The release root and storage settings (see the module docstring).

    Returns
    -------
    numpy.ndarray
        ``(len(obs_soma_joinids), n_features)`` float32.

    Raises
    ------
    TypeError
        ``obs_soma_joinids`` is not int64.
    BadInputError
        (a ``ValueError``) The embedding belongs to another census version, or its experiment or
        measurement is not in the census.
    """
    import tiledbsoma as soma

    ids = _joinids(obs_soma_joinids)
    directory = get_census_version_directory(release_root=release_root, settings=settings)
    ctx = context_for(embedding_uri, context, settings)
    with soma.open(embedding_uri, context=ctx) as arr:
        info = json.loads(arr.metadata[INFO_KEY])
        wanted = directory.get(census_version)
        if wanted is None:
            warnings.warn(
                "Unable to determine Census version - skipping validation of Census and "
                "embedding version.",
                stacklevel=2,
            )
        elif wanted != directory.get(info["census_version"]):
            msg = (
                f"Census and embedding mismatch - census_version not equal: the embedding at "
                f"{embedding_uri} belongs to {info['census_version']!r}, not {census_version!r}"
            )
            raise BadInputError(msg)
        with open_soma(
            census_version=census_version,
            context=context,
            release_root=release_root,
            settings=settings,
        ) as census:
            check_census_match(census, info, embedding_uri)
        if not isinstance(arr, soma.SparseNDArray):
            msg = f"{embedding_uri} is not a SparseNDArray"
            raise BadInputError(msg)
        return read_vectors(arr, ids)


def _resolved_build(census_version: str, release_root: Root, settings: Settings | None) -> str:
    description = get_census_version_description(
        census_version, release_root=release_root, settings=settings
    )
    return description["release_build"]


def get_embedding_metadata_by_name(
    embedding_name: str,
    organism: str,
    census_version: str,
    embedding_type: str | None = "obs_embedding",
    *,
    release_root: Root = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """The directory entry of one embedding (the most recently submitted when several match).

    Lifecycle: experimental.

    Parameters
    ----------
    embedding_name
        E.g. ``"scvi"``.
    organism
        ``"homo_sapiens"`` or ``"Homo sapiens"``.
    census_version
        Tag or alias.
    embedding_type
        ``"obs_embedding"`` or ``"var_embedding"``.
    release_root, settings
        The release root and storage settings.

    Returns
    -------
    dict
        The entry (``id``, ``n_features``, ``indexes``, ``uri``, ...).

    Raises
    ------
    EmbeddingNotFoundError
        (a ``ValueError``) Nothing matches.
    """
    build = _resolved_build(census_version, release_root, settings)
    es = embedding_source(release_root, settings)
    exp = experiment_name(organism)
    found = [
        e
        for e in contributions(es).values()
        if e.get("embedding_name") == embedding_name
        and e.get("experiment_name") == exp
        and e.get("data_type") == embedding_type
        and e.get("census_version") == build
    ]
    if not found:
        msg = (
            f"No embeddings found for {embedding_name}, {exp}, {build}, {embedding_type} "
            f"(in {es.contributions_uri})"
        )
        raise EmbeddingNotFoundError(msg)
    return sorted(found, key=lambda e: str(e.get("submission_date", "")))[-1]


def get_all_available_embeddings(
    census_version: str,
    *,
    release_root: Root = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Every embedding of a census version (the directory's entries, in directory order).

    Lifecycle: experimental.

    Parameters
    ----------
    census_version
        Tag or alias (validated: an unknown version raises ``CensusNotFoundError``).
    release_root, settings
        The release root and storage settings.

    Returns
    -------
    list[dict]
        The entries.
    """
    build = _resolved_build(census_version, release_root, settings)
    es = embedding_source(release_root, settings)
    return [e for e in contributions(es).values() if e.get("census_version") == build]


def get_all_census_versions_with_embedding(
    embedding_name: str,
    organism: str,
    embedding_type: str | None = "obs_embedding",
    *,
    release_root: Root = None,
    settings: Settings | None = None,
) -> list[str]:
    """The census versions (build tags, sorted) that have an embedding of this name.

    Lifecycle: experimental.

    Parameters
    ----------
    embedding_name
        E.g. ``"scvi"``.
    organism
        ``"homo_sapiens"`` or ``"Homo sapiens"``.
    embedding_type
        ``"obs_embedding"`` or ``"var_embedding"``.
    release_root, settings
        The release root and storage settings.

    Returns
    -------
    list[str]
        Build tags.
    """
    es = embedding_source(release_root, settings)
    exp = experiment_name(organism)
    return sorted(
        {
            str(e["census_version"])
            for e in contributions(es).values()
            if e.get("embedding_name") == embedding_name
            and e.get("experiment_name") == exp
            and e.get("data_type") == embedding_type
        }
    )
