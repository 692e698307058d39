"""What every reader of :mod:`cellcensus._formats` shares: parsing, version dispatch, errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeVar

from cellcensus.errors import BadInputError, CellCensusError, UnsupportedFormatError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["check_version", "load_object", "malformed", "parse"]

T = TypeVar("T")


def malformed(
    where: str, what: str, advice: str, error: type[CellCensusError] = BadInputError
) -> CellCensusError:
    """The error for content that is not the file it should be (``where: what; advice``)."""
    return error(f"{where}: {what}; {advice}")


def parse(
    data: bytes | str,
    *,
    where: str,
    advice: str,
    error: type[CellCensusError] = BadInputError,
) -> object:
    """Parse ``data`` as JSON; ``error`` (message ending with ``advice``) if it is not JSON."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise malformed(where, f"not valid JSON ({e})", advice, error) from e


def load_object(
    data: bytes | str,
    *,
    where: str,
    advice: str,
    error: type[CellCensusError] = BadInputError,
) -> dict[str, Any]:
    """Parse ``data`` as JSON whose top level is an object.

    Raises
    ------
    CellCensusError
        ``error`` (default :class:`~cellcensus.errors.BadInputError`) for invalid JSON or a top
        level that is not an object; the message ends with ``advice``.
    """
    d = parse(data, where=where, advice=advice, error=error)
    if not isinstance(d, dict):
        raise malformed(where, "the file must hold a JSON object", advice, error)
    return d


def check_version(
    d: Mapping[str, Any],
    *,
    where: str,
    readers: Mapping[int, Callable[..., T]],
    advice: str,
    error: type[CellCensusError] = BadInputError,
) -> Callable[..., T]:
    """The reader of the document's ``format_version``.

    Parameters
    ----------
    d
        The parsed document.
    where
        The file (path or URI), for messages.
    readers
        Reader per supported version.
    advice
        What to do about an old version this cellcensus no longer reads.
    error
        Error type for a missing or non-integer ``format_version`` (malformed content).

    Raises
    ------
    UnsupportedFormatError
        For a version not in ``readers``.
    CellCensusError
        ``error`` when ``format_version`` is missing or not an integer.
    """
    version = d.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        what = f"'format_version' is {version!r}, not an integer"
        raise malformed(where, what, advice, error)
    reader = readers.get(version)
    if reader is None:
        newest = max(readers)
        todo = (
            "it was written by a newer cellcensus: upgrade cellcensus to read it"
            if version > newest
            else advice
        )
        supported = ", ".join(str(v) for v in sorted(readers))
        msg = (
            f"{where} has format_version {version}; this cellcensus reads version(s) "
            f"{supported} of this file: {todo}"
        )
        raise UnsupportedFormatError(msg)
    return reader
