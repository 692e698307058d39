"""File-system errors as one clear :class:`~cellcensus.errors.CellCensusError` each.

Local writes (a build's output, a directory release root, a sync destination, an export) fail in
a few ways a user can act on: the place is read-only or not theirs, the disk is full, a path that
should be a directory is a file, or it does not exist. :func:`fs_error` turns the ``OSError``
into an error whose message says what was being done, where, and what to do;
:func:`mapped_fs_errors` does it for a block of code.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from cellcensus.errors import (
    BadInputError,
    CellCensusError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["NO_SPACE", "fs_error", "mapped_fs_errors"]

#: errno values that mean "out of space" (disk full, quota exceeded, file-size limit).
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_READ_ONLY = frozenset({errno.EROFS})
_DENIED = frozenset({errno.EACCES, errno.EPERM})
_NOT_A_DIR = frozenset({errno.ENOTDIR, errno.EEXIST, errno.EISDIR})
#: Free bytes below which a file system counts as full when an error does not say why.
_FULL_BYTES = 1024 * 1024


def _nearly_full(path: Path) -> bool:
    """Whether the file system holding ``path`` (or its nearest existing parent) is full."""
    for p in (path, *path.parents):
        if p.exists():
            try:
                return shutil.disk_usage(p).free < _FULL_BYTES
            except OSError:
                return False
    return False


def fs_error(  # noqa: PLR0911 - one return per kind of failure is the clearest form
    e: OSError, *, action: str, path: str | Path | None = None, hint: str = ""
) -> CellCensusError:
    """The :class:`CellCensusError` for an ``OSError`` raised while doing ``action``.

    Parameters
    ----------
    e
        The error.
    action
        What was being done, as a verb phrase (``"writing the build"``).
    path
        The place involved; the error's own file name is used when it names one.
    hint
        What happens on a re-run (``"re-run the same command: it resumes"``), appended.

    Returns
    -------
    CellCensusError
        :class:`PermissionDeniedError` (read-only or not permitted),
        :class:`~cellcensus.errors.StorageError` (no space, I/O error),
        :class:`BadInputError` (a file where a directory is needed), or
        :class:`NotFoundError`.
    """
    if isinstance(e, CellCensusError):
        return e
    where = str(e.filename) if e.filename else (str(path) if path is not None else "?")
    then = f"; {hint}" if hint else ""
    code = e.errno
    if code is None and path is not None and _nearly_full(Path(path)):
        code = errno.ENOSPC  # a library (h5py) that reports the failure without its errno
    if code in _READ_ONLY:
        return PermissionDeniedError(
            f"{action}: {where} is on a read-only file system; choose a writable location"
            f" (or remount it read-write){then}"
        )
    if code in _DENIED:
        return PermissionDeniedError(
            f"{action}: permission denied for {where}; check its owner and mode or choose "
            f"another location{then}"
        )
    if code in NO_SPACE:
        return StorageError(
            f"{action}: no space left for {where} ({e.strerror or 'disk full'}); free space "
            f"on that file system or choose another location{then}"
        )
    if code in _NOT_A_DIR:
        return BadInputError(
            f"{action}: {where} (or one of its parents) is a file where a directory is needed "
            f"({e.strerror}); give a directory path{then}"
        )
    if code == errno.ENOENT:
        return NotFoundError(f"{action}: {where} does not exist ({e.strerror}){then}")
    what = e.strerror or str(e) or type(e).__name__
    number = f" (errno {code})" if code is not None else ""
    return StorageError(
        f"{action}: {what} on {where}{number}; check the file system and retry{then}"
    )


@contextlib.contextmanager
def mapped_fs_errors(action: str, path: str | Path | None = None, hint: str = "") -> Iterator[None]:
    """Re-raise any ``OSError`` of the block as :func:`fs_error` (``CellCensusError`` passes)."""
    try:
        yield
    except CellCensusError:
        raise
    except OSError as e:
        raise fs_error(e, action=action, path=path, hint=hint) from e
