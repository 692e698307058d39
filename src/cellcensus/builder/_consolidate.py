"""Consolidation and vacuuming of every TileDB object of a census (one fragment per array)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import tiledbsoma as soma

logger = logging.getLogger(__name__)

_ARRAY_TYPES = ("SOMADataFrame", "SOMASparseNDArray", "SOMAPointCloudDataFrame")
#: Arrays whose data stays as written (their metadata is consolidated): image levels, written in
#: blocks of rows that never overlap; rewriting them would cost as much as the image.
_KEPT_ARRAY_TYPES = ("SOMADenseNDArray",)
_MODES = ("fragment_meta", "array_meta", "commits", "fragments")
#: Memory TileDB may use while consolidating one array. TileDB's default (10 GiB) is both
#: unbounded for our purposes and slow: it allocates and zeroes the buffers even for tiny arrays.
CONSOLIDATION_MEMORY_BUDGET = 256 * 1024**2


#: Modes for arrays written as one fragment per band (X layers, obs): their data stays as is.
_METADATA_MODES = ("fragment_meta", "array_meta", "commits")


@dataclass(frozen=True)
class Target:
    """One TileDB object to consolidate, and the consolidation modes for it."""

    uri: str
    is_array: bool
    modes: tuple[str, ...] = _MODES


def gather(root_uri: str, *, data_arrays: set[str] | frozenset[str] = frozenset()) -> list[Target]:
    """Every array and group below (and including) the root collection.

    Arrays in ``data_arrays`` keep their fragments: only their metadata is consolidated; so do
    dense arrays (images). Groups are every collection kind: experiments, measurements, scenes,
    multiscale images.
    """
    targets: list[Target] = [Target(root_uri, False)]
    keep = {u.rstrip("/") for u in data_arrays}

    def walk(coll: soma.Collection[Any]) -> None:
        for key in sorted(coll.keys()):
            obj = coll[key]
            if obj.soma_type in _ARRAY_TYPES:
                modes = _METADATA_MODES if _same(obj.uri, keep) else _MODES
                targets.append(Target(obj.uri, True, modes))
            elif obj.soma_type in _KEPT_ARRAY_TYPES:
                targets.append(Target(obj.uri, True, _METADATA_MODES))
            else:
                targets.append(Target(obj.uri, False))
                walk(obj)

    root: soma.Collection[Any]
    with soma.Collection.open(root_uri) as root:
        walk(root)
    return targets


def _same(uri: str, uris: set[str]) -> bool:
    return uri.rstrip("/").removeprefix("file://") in {u.removeprefix("file://") for u in uris}


def consolidate(target: Target) -> str:
    """Consolidate and vacuum one object (arrays: all modes; groups: metadata)."""
    import tiledb

    if target.is_array:
        for mode in target.modes:
            config = tiledb.Config(
                {
                    "sm.consolidation.mode": mode,
                    "sm.mem.total_budget": str(CONSOLIDATION_MEMORY_BUDGET),
                }
            )
            tiledb.consolidate(target.uri, config=config)
            tiledb.vacuum(target.uri, config=tiledb.Config({"sm.vacuum.mode": mode}))
    else:
        tiledb.Group.consolidate_metadata(target.uri)
        tiledb.Group.vacuum_metadata(target.uri)
    return target.uri
