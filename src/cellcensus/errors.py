"""Every error and warning cellcensus raises on purpose, in one hierarchy.

Every user-facing failure is a :class:`CellCensusError`. Subclasses also inherit the fitting
builtin, so callers can catch either (``except LookupError`` still works for a missing release),
and the errors of the read API are also the types ``cellxgene_census`` raises for the same
failure: an unknown census version is still a ``ValueError``, an unknown ``dataset_id`` a
``KeyError``, a bad ``value_filter`` a ``tiledbsoma.SOMAError``.

====================================  =======================================================
Error                                 Also a
====================================  =======================================================
:class:`BadInputError`                ``ValueError``
:class:`FilterError`                  ``BadInputError``, ``tiledbsoma.SOMAError``
:class:`QueryArgumentError`           ``BadInputError``, ``tiledbsoma.SOMAError``
:class:`QueryArgumentTypeError`       ``QueryArgumentError``, ``TypeError``
:class:`ConfigError`                  ``ValueError``
:class:`NotFoundError`                ``LookupError``
:class:`CensusNotFoundError`          ``NotFoundError``, ``ValueError``
:class:`DatasetNotFoundError`         ``NotFoundError``, ``KeyError``
:class:`CollectionNotFoundError`      ``NotFoundError``, ``tiledbsoma.DoesNotExistError``
:class:`PermissionDeniedError`        ``PermissionError``
:class:`AccessDeniedError`            ``PermissionDeniedError``, ``tiledbsoma.SOMAError``
:class:`ReleaseRootUnreachableError`  ``requests.ConnectionError``, ``tiledbsoma.SOMAError``
:class:`IntegrityError`
:class:`UnsupportedFormatError`       ``ValueError``
:class:`StorageError`                 ``OSError``
:class:`PreconditionFailedError`
:class:`QueryTooLargeError`           ``MemoryError``
:class:`MissingExtraError`            ``ImportError``
====================================  =======================================================

The six classes that derive from ``tiledbsoma`` or ``requests`` types are created on first
use (:mod:`cellcensus._soma_errors`), so that importing this module does not load TileDB.

Lifecycle: maturing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cellcensus._soma_errors import (
        AccessDeniedError,
        CollectionNotFoundError,
        FilterError,
        QueryArgumentError,
        QueryArgumentTypeError,
        ReleaseRootUnreachableError,
    )

__all__ = [
    "AccessDeniedError",
    "BadInputError",
    "CellCensusError",
    "CensusNotFoundError",
    "CollectionNotFoundError",
    "ConfigError",
    "DatasetNotFoundError",
    "EmbeddingNotFoundError",
    "FilterError",
    "IntegrityError",
    "MemoryEstimateWarning",
    "MissingExtraError",
    "NotFoundError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "QueryArgumentError",
    "QueryArgumentTypeError",
    "QueryTooLargeError",
    "ReleaseRootUnreachableError",
    "StorageError",
    "UnsupportedFormatError",
]

#: Classes defined in :mod:`cellcensus._soma_errors` (their bases load TileDB-SOMA).
_SOMA_ERRORS = frozenset(
    {
        "AccessDeniedError",
        "CollectionNotFoundError",
        "FilterError",
        "QueryArgumentError",
        "QueryArgumentTypeError",
        "ReleaseRootUnreachableError",
    }
)


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
        # keep the class, dataset_id and field when the error crosses a process boundary (Dask)
        return (_rebuild_bad_input, (type(self), self.message, self.dataset_id, self.field))


def _rebuild_bad_input(
    cls: type[BadInputError], message: str, dataset_id: str | None, field: str | None
) -> BadInputError:
    return cls(message, dataset_id=dataset_id, field=field)


class ConfigError(CellCensusError, ValueError):
    """Settings are inconsistent or invalid."""


class NotFoundError(CellCensusError, LookupError):
    """A release, tag, mirror, organism, dataset or object does not exist."""


class CensusNotFoundError(NotFoundError, ValueError):
    """A census version, mirror or organism that is not there.

    Also a ``ValueError``, as ``cellxgene_census`` raises for these.
    """


class EmbeddingNotFoundError(CensusNotFoundError):
    """No embedding matches (a ``ValueError``, as in the official client)."""


class DatasetNotFoundError(NotFoundError, KeyError):
    """A ``dataset_id`` the census does not list. Also a ``KeyError`` (as the official client)."""

    def __str__(self) -> str:
        # KeyError quotes its argument; show the message as written.
        return str(self.args[0]) if self.args else ""


class PermissionDeniedError(CellCensusError, PermissionError):
    """The operation needs credentials or rights that were not given."""


class IntegrityError(CellCensusError):
    """Stored data does not match what was recorded (checksum, size, cell count)."""


class UnsupportedFormatError(CellCensusError, ValueError):
    """A file written by cellcensus has a ``format_version`` this cellcensus cannot read.

    Raised by every reader of :mod:`cellcensus._formats` (``build.json``, ``manifest.json``,
    ``<stem>.export.json``, the resume state, the sync marker); the message names the file, the
    version found, the versions supported and what to do (usually: upgrade cellcensus).
    """


class StorageError(CellCensusError, OSError):
    """The storage failed under an operation: no space left, I/O error, timeout, lost server.

    Also an ``OSError``. Read-only and permission problems are :class:`PermissionDeniedError`.
    """


class PreconditionFailedError(CellCensusError):
    """A conditional write lost: the object exists (create-only) or changed (replace-if-match)."""


class QueryTooLargeError(CellCensusError, MemoryError):
    """A query's estimated in-memory size exceeds the memory available (``get_anndata``)."""


class MissingExtraError(CellCensusError, ImportError):
    """A feature needs an optional part of cellcensus that is not installed.

    The message names the extra to install, e.g. ``pip install 'cellcensus[build]'``.
    """


class MemoryEstimateWarning(UserWarning):
    """A query's estimated in-memory size is close to or above the memory available."""


def __getattr__(name: str) -> type[Exception]:
    if name in _SOMA_ERRORS:
        cls: type[Exception] = getattr(importlib.import_module("cellcensus._soma_errors"), name)
        globals()[name] = cls
        return cls
    msg = f"module 'cellcensus.errors' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *_SOMA_ERRORS})
