"""The cellcensus exception hierarchy.

Every user-facing failure is a :class:`CellCensusError`. Subclasses also inherit the fitting builtin
so callers can catch either (``except LookupError`` still works for a missing release).
"""

from __future__ import annotations

__all__ = [
    "BadInputError",
    "CellCensusError",
    "ConfigError",
    "IntegrityError",
    "NotFoundError",
    "PermissionDeniedError",
    "StorageError",
]


class CellCensusError(Exception):
    """Root of every error cellcensus raises on purpose."""


class BadInputError(CellCensusError, ValueError):
    """An input (H5AD, manifest, tag, path, filter, argument) is malformed or not allowed.

    Parameters
    ----------
    message
        What is wrong and what to do about it.
    dataset_id
        The dataset the problem was found in, when there is one.
    field
        The column, key or argument at fault, when there is one.
    """

    def __init__(
        self, message: str, *, dataset_id: str | None = None, field: str | None = None
    ) -> None:
        prefix = ""
        if dataset_id is not None:
            prefix += f"dataset {dataset_id!r}: "
        if field is not None:
            prefix += f"field {field!r}: "
        super().__init__(prefix + message)
        self.message = message
        self.dataset_id = dataset_id
        self.field = field

    def __reduce__(self) -> tuple[object, ...]:
        # keep dataset_id/field when the error crosses a process boundary (Dask workers)
        return (_rebuild_bad_input, (self.message, self.dataset_id, self.field))


def _rebuild_bad_input(message: str, dataset_id: str | None, field: str | None) -> BadInputError:
    return BadInputError(message, dataset_id=dataset_id, field=field)


class NotFoundError(CellCensusError, LookupError):
    """A release, tag, mirror, organism, dataset or object does not exist."""


class IntegrityError(CellCensusError):
    """Stored data does not match what was recorded (checksum, size, cell count)."""


class PermissionDeniedError(CellCensusError, PermissionError):
    """The operation needs credentials or rights that were not given."""


class ConfigError(CellCensusError, ValueError):
    """Settings are inconsistent or invalid."""


class StorageError(CellCensusError, OSError):
    """The storage failed under an operation: no space left, I/O error, timeout, lost server.

    Also an ``OSError``. Read-only and permission problems are :class:`PermissionDeniedError`.
    """
