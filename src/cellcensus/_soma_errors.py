"""The errors of :mod:`cellcensus.errors` whose bases are ``tiledbsoma`` / ``requests`` types.

Import them from :mod:`cellcensus.errors` (which loads this module on first use, so that
importing the error hierarchy does not load TileDB); their ``__module__`` is
``cellcensus.errors``, so they pickle under that name.
"""

from __future__ import annotations

import requests
from tiledbsoma import DoesNotExistError, SOMAError

from cellcensus.errors import BadInputError, CellCensusError, NotFoundError, PermissionDeniedError

__all__ = [
    "AccessDeniedError",
    "CollectionNotFoundError",
    "FilterError",
    "QueryArgumentError",
    "QueryArgumentTypeError",
    "ReleaseRootUnreachableError",
]


class CollectionNotFoundError(NotFoundError, DoesNotExistError):
    """No SOMA collection at the resolved location. Also ``tiledbsoma.DoesNotExistError``."""


class AccessDeniedError(PermissionDeniedError, SOMAError):
    """The storage refused TileDB's request (HTTP 403). Also a ``tiledbsoma.SOMAError``."""


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


class ReleaseRootUnreachableError(CellCensusError, requests.exceptions.ConnectionError, SOMAError):
    """The release root (or a mirror, or the storage of the data) could not be reached: refused,
    timed out, DNS failure.

    Also a ``requests.ConnectionError`` (an ``OSError``), as the official client's directory
    look-ups raise, and a ``tiledbsoma.SOMAError``, as its data reads raise.
    """


for _cls in (
    CollectionNotFoundError,
    AccessDeniedError,
    FilterError,
    QueryArgumentError,
    QueryArgumentTypeError,
    ReleaseRootUnreachableError,
):
    _cls.__module__ = "cellcensus.errors"
del _cls
