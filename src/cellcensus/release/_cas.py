"""Compare-and-swap updates of the small JSON files at a release root.

``cas_update`` reads a file with its version token, applies a *pure* change function, and writes
the result only if the file is still the version that was read (S3 ``IfMatch``/``IfNoneMatch``,
or the local lock-and-compare, see :mod:`cellcensus.release._root`). On a lost race it re-reads and
re-applies the change, so concurrent writers never lose each other's changes. A change that leaves
the content equal to what is stored writes nothing; that also makes a retry after a lost response
(our write did land, but we saw a 412) converge instead of failing.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING, TypeVar

from cellcensus.errors import CellCensusError
from cellcensus.release._root import PreconditionFailedError, ReleaseRoot

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MAX_ATTEMPTS", "cas_update"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ATTEMPTS = 50


def cas_update(
    root: ReleaseRoot,
    key: str,
    *,
    parse: Callable[[bytes], T],
    dump: Callable[[T], bytes],
    empty: Callable[[], T],
    change: Callable[[T], T],
    max_attempts: int = MAX_ATTEMPTS,
) -> tuple[T, bool]:
    """Apply ``change`` to the object at ``key`` atomically.

    Parameters
    ----------
    root
        The release root.
    key
        The object (``release.json`` or ``mirrors.json``).
    parse, dump
        Bytes to model and back.
    empty
        The model of a missing file.
    change
        Pure function from the current model to the new one; may raise to abort (nothing is
        written then). It can run several times.
    max_attempts
        Give up after this many lost races.

    Returns
    -------
    tuple
        The model now stored, and whether this call wrote it.

    Raises
    ------
    CellCensusError
        After ``max_attempts`` lost races (heavy contention), or whatever ``change`` raises.
    """
    for attempt in range(1, max_attempts + 1):
        current = root.read_versioned(key)
        before = empty() if current is None else parse(current[0])
        after = change(before)
        if current is not None and after == before:
            return after, False
        new_bytes = dump(after)
        try:
            if current is None:
                root.write_bytes(key, new_bytes, if_none_match=True)
            else:
                root.write_bytes(key, new_bytes, if_match=current[1])
        except PreconditionFailedError:
            delay = min(2.0, 0.02 * (2 ** min(attempt, 7))) * random.uniform(0.5, 1.0)  # noqa: S311
            logger.debug(
                "%s changed concurrently (attempt %d); retrying in %.2f s", key, attempt, delay
            )
            time.sleep(delay)
            continue
        return after, True
    msg = (
        f"{root.object_uri(key)} kept changing while cellcensus tried to update it "
        f"({max_attempts} attempts); other writers are busy: retry later"
    )
    raise CellCensusError(msg)
