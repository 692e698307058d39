"""Errors and warnings of the client, each also the builtin type ``cellxgene_census`` raises.

Code written against the official client keeps working: an unknown census version is still a
``ValueError``, an unknown ``dataset_id`` still a ``KeyError``, a bad ``value_filter`` still a
``tiledbsoma.SOMAError`` — and every one is also a :class:`~cellcensus.errors.CellCensusError`
with a message that says what was wrong, where, and what to do.
"""

from __future__ import annotations

import requests
from tiledbsoma import DoesNotExistError, SOMAError

from cellcensus.errors import BadInputError, CellCensusError, NotFoundError, PermissionDeniedError

__all__ = [
    "AccessDeniedError",
    "CensusNotFoundError",
    "CollectionNotFoundError",
    "DatasetNotFoundError",
    "FilterError",
    "MemoryEstimateWarning",
    "QueryArgumentError",
    "QueryArgumentTypeError",
    "QueryTooLargeError",
    "ReleaseRootUnreachableError",
]


class CensusNotFoundError(NotFoundError, ValueError):
    """A census version, mirror or organism that is not there.

    Also a ``ValueError``, as ``cellxgene_census`` raises for these.
    """


class CollectionNotFoundError(NotFoundError, DoesNotExistError):
    """No SOMA collection at the resolved location. Also ``tiledbsoma.DoesNotExistError``."""


class AccessDeniedError(PermissionDeniedError, SOMAError):
    """The storage refused TileDB's request (HTTP 403). Also a ``tiledbsoma.SOMAError``."""


class DatasetNotFoundError(NotFoundError, KeyError):
    """A ``dataset_id`` the census does not list. Also a ``KeyError`` (as the official client)."""

    def __str__(self) -> str:
        # KeyError quotes its argument; show the message as written.
        return str(self.args[0]) if self.args else ""


class FilterError(BadInputError, SOMAError):
    """A ``value_filter`` that does not parse or names an unknown column.

    Also a :class:`tiledbsoma.SOMAError`, which is what the official client lets through.
    """


class QueryArgumentError(BadInputError, SOMAError):
    """A query argument that names nothing in the census or has the wrong shape: an unknown
    column, a misspelled ``column_names`` key, negative or malformed coordinates.

    Also a :class:`tiledbsoma.SOMAError`, which is what the official client lets through.
    """


class QueryArgumentTypeError(QueryArgumentError, TypeError):
    """A query argument of the wrong type (``organism=None``). Also a ``TypeError``, as the
    official client raises."""


class QueryTooLargeError(CellCensusError, MemoryError):
    """A query's estimated in-memory size exceeds the memory available (``get_anndata``)."""


class ReleaseRootUnreachableError(CellCensusError, requests.exceptions.ConnectionError, SOMAError):
    """The release root (or a mirror, or the storage of the data) could not be reached: refused,
    timed out, DNS failure.

    Also a ``requests.ConnectionError`` (an ``OSError``), as the official client's directory
    look-ups raise, and a ``tiledbsoma.SOMAError``, as its data reads raise.
    """


class MemoryEstimateWarning(UserWarning):
    """A query's estimated in-memory size is close to or above the memory available."""
