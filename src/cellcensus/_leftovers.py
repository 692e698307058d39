"""What an interrupted SOMA write leaves behind, removed before the write is done again.

Creating a SOMA member is two steps (create the object, then add it to its collection) and
filling it is more; a write killed in between leaves a member readers would take as complete,
or an object at a member's path that is not a member and cannot be created again. Resumed
builds call these helpers before writing such an object again. Only local objects have a
directory to remove; for other URIs only the membership is dropped.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from cellcensus._storage.uri import is_local, local_path

if TYPE_CHECKING:
    from collections.abc import Iterable

    import tiledbsoma

__all__ = ["drop_members", "remove_object_dir"]


def remove_object_dir(uri: str) -> bool:
    """Remove the directory of the local SOMA object at ``uri``; return whether it existed.

    Nothing happens for a URI that is not local.
    """
    if not is_local(uri):
        return False
    path = local_path(uri)
    if not path.exists():
        return False
    shutil.rmtree(path)
    return True


def drop_members(
    parent_uri: str, keys: Iterable[str], context: tiledbsoma.SOMATileDBContext | None
) -> bool:
    """Delete the members ``keys`` of the collection at ``parent_uri`` and their directories.

    The collection is opened in delete mode, so the caller must not hold it open for writing.
    Returns whether anything (a member or a directory) was there.

    Raises
    ------
    ValueError
        When ``parent_uri`` is not a collection (a damaged census).
    """
    import tiledbsoma

    found = False
    parent_uri = parent_uri.rstrip("/")
    keys = tuple(keys)
    with tiledbsoma.open(parent_uri, "d", context=context) as parent:
        if not isinstance(
            parent, tiledbsoma.Collection | tiledbsoma.Experiment | tiledbsoma.Measurement
        ):
            msg = f"{parent_uri} is a {type(parent).__name__}, not a collection"
            raise ValueError(msg)  # noqa: TRY004 - a broken census, not a wrong argument type
        for key in keys:
            if key in parent:
                del parent[key]
                found = True
    for key in keys:
        found = remove_object_dir(f"{parent_uri}/{key}") or found
    return found
