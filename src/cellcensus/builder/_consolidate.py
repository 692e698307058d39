"""Consolidation and vacuuming of every TileDB object of a census (one fragment per array)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import tiledbsoma as soma

logger = logging.getLogger(__name__)

_ARRAY_TYPES = ("SOMADataFrame", "SOMASparseNDArray")
_MODES = ("fragment_meta", "array_meta", "commits", "fragments")
#: Memory TileDB may use while consolidating one array. TileDB's default (10 GiB) is both
#: unbounded for our purposes and slow: it allocates and zeroes the buffers even for tiny arrays.
CONSOLIDATION_MEMORY_BUDGET = 256 * 1024**2


@dataclass(frozen=True)
class Target:
    """One TileDB object to consolidate."""

    uri: str
    is_array: bool


def gather(root_uri: str) -> list[Target]:
    """Every array and group below (and including) the root collection."""
    targets: list[Target] = [Target(root_uri, False)]

    def walk(coll: soma.Collection[Any]) -> None:
        for key in sorted(coll.keys()):
            obj = coll[key]
            if obj.soma_type in _ARRAY_TYPES:
                targets.append(Target(obj.uri, True))
            else:
                targets.append(Target(obj.uri, False))
                walk(obj)

    root: soma.Collection[Any]
    with soma.Collection.open(root_uri) as root:
        walk(root)
    return targets


def consolidate(target: Target) -> str:
    """Consolidate and vacuum one object (arrays: all modes; groups: metadata)."""
    import tiledb

    if target.is_array:
        for mode in _MODES:
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
