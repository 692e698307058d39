"""A post-build step: add an embedding to a *staged* build as an ``obsm`` layer of the census
experiment (``census_data/<organism>/ms/RNA/obsm/<name>``: in SOMA, ``obsm`` belongs to the
measurement), as the official Census does for its in-census embeddings. Published builds are
immutable, so this runs on a build directory before ``cellcensus publish``; readers then get it
with ``get_anndata(obsm_layers=[name])``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cellcensus._formats.build import BuildInfo
from cellcensus._storage.uri import local_path
from cellcensus.embeddings._census import experiment, experiment_name, resolve_keys
from cellcensus.embeddings._input import EmbeddingInput, read_input
from cellcensus.embeddings._write import EMBEDDING_INFO_KEY, write_embedding_array
from cellcensus.errors import BadInputError, NotFoundError
from cellcensus.release._validate import validate_name

if TYPE_CHECKING:
    import datetime as dt

__all__ = ["ObsmResult", "add_obsm_layer"]

logger = logging.getLogger(__name__)

BUILD_JSON = "build.json"
OBSM = "obsm"
MEASUREMENT = "RNA"


@dataclass(frozen=True, kw_only=True)
class ObsmResult:
    """The layer written by :func:`add_obsm_layer`."""

    uri: str
    n_embeddings: int
    n_features: int


def _record(build_dir: Path, step: dict[str, object]) -> None:
    """Append the step to ``build.json``'s ``post_build_steps`` (provenance), atomically."""
    path = build_dir / BUILD_JSON
    info = BuildInfo.from_json(path.read_bytes(), where=str(path))
    info = replace(info, post_build_steps=(*info.post_build_steps, step))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(info.to_json())
    tmp.replace(path)


def add_obsm_layer(
    build_dir: str | Path,
    source: str | Path | EmbeddingInput,
    *,
    name: str,
    organism: str,
    obsm_key: str | None = None,
    column: str | None = None,
    joinids: str | Path | None = None,
    dataset_id: str | None = None,
    today: dt.date | None = None,
) -> ObsmResult:
    """Write an embedding into a staged build as ``ms/RNA/obsm/<name>`` of the organism's
    experiment.

    Parameters
    ----------
    build_dir
        The builder's output directory (``soma/``, ``h5ads/``, ``build.json``), not yet
        published.
    source
        The embedding (file or :class:`EmbeddingInput`; see :func:`read_input`).
    name
        Layer name (``scvi``, ...).
    organism
        The experiment.
    obsm_key, column, joinids, dataset_id
        How to read ``source``.
    today
        Date recorded in ``build.json`` (tests).

    Returns
    -------
    ObsmResult
        The layer's URI and size.

    Raises
    ------
    BadInputError
        Bad input, a taken layer name, or not a build directory.
    NotFoundError
        Unknown organism.
    """
    import datetime as dt

    import tiledbsoma as soma

    bdir = Path(build_dir).resolve()
    soma_dir = bdir / "soma"
    if not (soma_dir / "__tiledb_group.tdb").is_file() or not (bdir / BUILD_JSON).is_file():
        msg = f"{bdir} is not a build directory (soma/ and build.json); give the builder's output"
        raise BadInputError(msg)
    validate_name(name, what="name")
    inp = (
        source
        if isinstance(source, EmbeddingInput)
        else read_input(
            source, obsm_key=obsm_key, column=column, joinids=joinids, dataset_id=dataset_id
        )
    )
    exp_name = experiment_name(organism)
    with soma.open(soma_dir.as_uri(), mode="r", soma_type=soma.Collection) as census:
        km = resolve_keys(census, organism, inp)
        ms = experiment(census, organism).ms[MEASUREMENT]
        ms_uri = ms.uri
        has_obsm = OBSM in ms
        obsm = ms[OBSM] if has_obsm else None
        if isinstance(obsm, soma.Collection) and name in obsm:
            msg = f"{exp_name} in {bdir} already has an obsm layer {name!r}; choose another name"
            raise BadInputError(msg, field="name")
    bj = bdir / BUILD_JSON
    tag = BuildInfo.from_json(bj.read_bytes(), where=str(bj)).build_tag or bdir.name
    obsm_uri = f"{ms_uri.rstrip('/')}/{OBSM}"
    layer_uri = f"{obsm_uri}/{name}"
    if not has_obsm:
        if local_path(obsm_uri).exists():
            msg = f"{obsm_uri} exists but is not a member of the experiment; remove it first"
            raise BadInputError(msg)
        soma.Collection.create(obsm_uri).close()
        with soma.Measurement.open(ms_uri, "w") as e, soma.open(obsm_uri) as coll:
            e.set(OBSM, coll, use_relative_uri=True)
    info = {
        "id": name,
        "embedding_name": name,
        "data_type": "obs_embedding",
        "census_version": tag,
        "experiment_name": exp_name,
        "measurement_name": "RNA",
        "n_embeddings": int(km.matrix.shape[0]),
        "n_features": int(km.matrix.shape[1]),
        "submission_date": (today or dt.datetime.now(dt.UTC).date()).isoformat(),
    }
    write_embedding_array(layer_uri, km, info_json=json.dumps(info))
    with soma.open(obsm_uri, "w") as members, soma.SparseNDArray.open(layer_uri) as a:
        if not isinstance(members, soma.Collection):
            msg = f"{obsm_uri} is not a SOMA collection"
            raise BadInputError(msg)
        members.set(name, a, use_relative_uri=True)
    with soma.open(layer_uri) as check:
        if EMBEDDING_INFO_KEY not in check.metadata:
            msg = f"{layer_uri} was written without its metadata"
            raise NotFoundError(msg)
    _record(
        bdir,
        {
            "step": "obsm_layer",
            "organism": exp_name,
            "name": name,
            "n_embeddings": info["n_embeddings"],
            "n_features": info["n_features"],
            "source": inp.source,
        },
    )
    logger.info("added obsm layer %s to %s (%d x %d)", name, exp_name, *km.matrix.shape)
    return ObsmResult(
        uri=layer_uri, n_embeddings=int(km.matrix.shape[0]), n_features=int(km.matrix.shape[1])
    )
