"""The census an embedding is attached to: open a release's SOMA collection at a root, check the
organism, and turn the input's cell keys into ``soma_joinid`` values of that release."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cellcensus.errors import BadInputError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy.typing as npt
    import tiledbsoma as soma

    from cellcensus.embeddings._input import EmbeddingInput
    from cellcensus.release import ReleaseRoot

__all__ = ["KeyedMatrix", "census_context", "experiment_name", "open_census", "resolve_keys"]

logger = logging.getLogger(__name__)

_SHOWN = 5


def experiment_name(organism: str) -> str:
    """``"Homo sapiens"`` / ``"homo_sapiens"`` -> ``"homo_sapiens"`` (the experiment's name)."""
    return "_".join(organism.strip().split()).lower()


def census_context(root: ReleaseRoot) -> soma.SOMATileDBContext:
    """A SOMA context that reads (and writes) the root's storage with its settings."""
    import tiledbsoma as soma

    cfg: dict[str, str | float] = dict(root.settings.tiledb_config()) if root.is_s3 else {}
    return soma.SOMATileDBContext(tiledb_config=cfg)


@contextlib.contextmanager
def open_census(root: ReleaseRoot, tag: str) -> Iterator[soma.Collection[Any]]:
    """Open ``<root>/<tag>/soma`` for reading.

    Raises
    ------
    NotFoundError
        When the build has no SOMA collection there.
    """
    import tiledbsoma as soma

    uri = root.object_uri(f"{tag}/soma")
    try:
        census = soma.open(uri, mode="r", soma_type=soma.Collection, context=census_context(root))
    except soma.DoesNotExistError as e:
        msg = f"no census at {uri}: is {tag!r} published at {root.uri}?"
        raise NotFoundError(msg) from e
    with census:
        yield census


def experiment(census: soma.Collection[Any], organism: str) -> soma.Experiment:
    """The organism's experiment in ``census_data``.

    Raises
    ------
    NotFoundError
        For an organism the release does not hold (the known ones are listed).
    """
    name = experiment_name(organism)
    data = census["census_data"]
    if name not in data:
        known = ", ".join(sorted(data)) or "none"
        msg = (
            f"organism {organism!r} ({name}) is not in the census at {census.uri} "
            f"(organisms: {known})"
        )
        raise NotFoundError(msg)
    return data[name]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class KeyedMatrix:
    """Vectors sorted by ``soma_joinid``, and the axis length of the release (joinid domain)."""

    joinids: npt.NDArray[np.int64]
    matrix: npt.NDArray[np.float32]
    axis_length: int


def _axis_joinids(df: soma.DataFrame) -> npt.NDArray[np.int64]:
    tbl = df.read(column_names=["soma_joinid"]).concat()
    ids: npt.NDArray[np.int64] = tbl.column("soma_joinid").to_numpy().astype(np.int64)
    return ids


def _check_joinids(ids: npt.NDArray[np.int64], existing: npt.NDArray[np.int64], where: str) -> None:
    uniq, counts = np.unique(ids, return_counts=True)
    if len(uniq) != len(ids):
        dup = uniq[counts > 1]
        msg = (
            f"{len(dup)} soma_joinids appear more than once (e.g. {dup[:_SHOWN].tolist()}); "
            "give one vector per cell"
        )
        raise BadInputError(msg, field="soma_joinid")
    n = len(existing)
    contiguous = n > 0 and int(existing.min()) == 0 and int(existing.max()) == n - 1
    unknown = (ids < 0) | (ids >= n) if contiguous else ~np.isin(ids, existing)
    if unknown.any():
        bad = ids[unknown]
        msg = (
            f"{int(unknown.sum())} soma_joinids are not cells of {where} "
            f"(e.g. {bad[:_SHOWN].tolist()}); the embedding must have been computed on this "
            "release, or key it by dataset_id + observation_joinid"
        )
        raise BadInputError(msg, field="soma_joinid")


def _joinids_from_stable_keys(
    obs: soma.DataFrame, inp: EmbeddingInput, where: str
) -> npt.NDArray[np.int64]:
    import pandas as pd

    wanted = pd.DataFrame(
        {"dataset_id": inp.dataset_ids, "observation_joinid": inp.observation_joinids}
    )
    if wanted.duplicated().any():
        first = wanted[wanted.duplicated()].iloc[0]
        msg = (
            f"the cell ({first['dataset_id']}, {first['observation_joinid']}) appears more than "
            "once; give one vector per cell"
        )
        raise BadInputError(msg, field="observation_joinid")
    datasets = sorted(set(wanted["dataset_id"]))
    found = (
        obs.read(
            column_names=["soma_joinid", "dataset_id", "observation_joinid"],
            value_filter=f"dataset_id in {datasets!r}",
        )
        .concat()
        .to_pandas()
    )
    found["dataset_id"] = found["dataset_id"].astype(str)
    missing_ds = sorted(set(datasets) - set(found["dataset_id"]))
    if missing_ds:
        msg = (
            f"{len(missing_ds)} dataset ids are not in {where} (e.g. {missing_ds[:_SHOWN]}); "
            "check the dataset_id column (or --dataset-id)"
        )
        raise BadInputError(msg, field="dataset_id")
    merged = wanted.merge(found, how="left", on=["dataset_id", "observation_joinid"])
    if merged["soma_joinid"].isna().any():
        bad = merged[merged["soma_joinid"].isna()]
        shown = list(zip(bad["dataset_id"], bad["observation_joinid"], strict=True))[:_SHOWN]
        msg = (
            f"{len(bad)} cells are not in {where} (e.g. {shown}); was the embedding computed on "
            "cells the census excludes (assay, tissue type, organism)?"
        )
        raise BadInputError(msg, field="observation_joinid")
    return merged["soma_joinid"].to_numpy().astype(np.int64)


def resolve_keys(
    census: soma.Collection[Any],
    organism: str,
    inp: EmbeddingInput,
    *,
    data_type: str = "obs_embedding",
    measurement_name: str = "RNA",
) -> KeyedMatrix:
    """Map the input's keys to ``soma_joinid`` values of the release and sort by them.

    Raises
    ------
    NotFoundError
        Unknown organism or measurement.
    BadInputError
        Duplicate keys, or keys that are not cells (genes) of the release and organism.
    """
    exp = experiment(census, organism)
    where = f"{experiment_name(organism)} in {census.uri}"
    if measurement_name not in exp.ms:
        msg = f"{where} has no measurement {measurement_name!r}"
        raise NotFoundError(msg)
    if data_type == "var_embedding":
        axis = exp.ms[measurement_name].var
        if inp.soma_joinids is None:
            msg = "a var_embedding must be keyed by soma_joinid (the gene's row in var)"
            raise BadInputError(msg, field="soma_joinid")
    else:
        axis = exp.obs
    existing = _axis_joinids(axis)
    if inp.soma_joinids is not None:
        ids = inp.soma_joinids
        _check_joinids(ids, existing, where)
    else:
        ids = _joinids_from_stable_keys(axis, inp, where)
    order = np.argsort(ids, kind="stable")
    axis_length = int(existing.max()) + 1 if len(existing) else 0
    return KeyedMatrix(
        joinids=np.ascontiguousarray(ids[order]),
        matrix=np.ascontiguousarray(inp.matrix[order]),
        axis_length=axis_length,
    )
