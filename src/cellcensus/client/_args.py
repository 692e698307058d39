"""Checks of query arguments before a query runs: organism, column lists, coordinates, layers.

The official client passes these straight to TileDB-SOMA, whose failures are hard to act on
("internal coding error: No column named x", "bad any_cast") or silent (a misspelled
``column_names`` key is ignored). Each check here raises a
:class:`~cellcensus.errors.QueryArgumentError` (also a ``tiledbsoma.SOMAError``) or a
:class:`~cellcensus.errors.CensusNotFoundError` (a ``ValueError``, like the official
client's unknown layer) that names the argument and lists what exists.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cellcensus.errors import (
    CensusNotFoundError,
    QueryArgumentError,
    QueryArgumentTypeError,
)

if TYPE_CHECKING:
    import tiledbsoma as soma

__all__ = [
    "check_axis_column_names",
    "check_columns",
    "check_coords",
    "check_layers",
    "check_organism",
]

_SHOWN = 40
_ECHO = 60


def _echo(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _ECHO else f"{text[:_ECHO]}… ({len(text)} characters)"


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _SHOWN else "")


def check_organism(organism: object) -> str:
    """The organism, if it is a non-empty string.

    Raises
    ------
    QueryArgumentTypeError
        (also a ``TypeError``, as the official client raises for ``None``) otherwise.
    """
    if not isinstance(organism, str) or not organism.strip():
        msg = (
            f"organism must be a name such as 'Homo sapiens' or 'mus_musculus', got "
            f"{_echo(organism)}"
        )
        raise QueryArgumentTypeError(msg, field="organism")
    return organism


def check_columns(df: soma.DataFrame, names: object, *, where: str) -> None:
    """Check a list of column names against a DataFrame (``None`` means all columns).

    Raises
    ------
    QueryArgumentError
        For a string instead of a list, a non-string item, or a name the DataFrame lacks.
    """
    if names is None:
        return
    if isinstance(names, str | bytes) or not isinstance(names, Sequence | np.ndarray):
        msg = (
            f"must be a list of column names, got {_echo(names)}; write [{_echo(names)}] for "
            "one column"
        )
        raise QueryArgumentError(msg, field=where)
    items = list(names)
    bad_type = [n for n in items if not isinstance(n, str)]
    if bad_type:
        msg = f"must hold column names (strings), got {_echo(bad_type[0])}"
        raise QueryArgumentError(msg, field=where)
    dupes = sorted({n for n in items if items.count(n) > 1})
    if dupes:
        msg = (
            f"names {', '.join(_echo(n) for n in dupes[:5])} more than once; list each column once"
        )
        raise QueryArgumentError(msg, field=where)
    known = list(df.schema.names)
    unknown = [n for n in items if n not in known]
    if unknown:
        msg = (
            f"no column named {', '.join(_echo(n) for n in unknown[:5])} in {df.uri}; "
            f"columns: {_listing(known)}"
        )
        raise QueryArgumentError(msg, field=where)


def check_axis_column_names(column_names: object) -> Mapping[str, Any] | None:
    """The deprecated ``column_names={"obs": [...], "var": [...]}`` of ``get_anndata``.

    Raises
    ------
    QueryArgumentError
        When it is not a mapping or has a key other than ``obs`` and ``var``.
    """
    if column_names is None:
        return None
    if not isinstance(column_names, Mapping):
        msg = (
            "column_names must be a dict such as {'obs': [...], 'var': [...]}, got "
            f"{_echo(column_names)}"
        )
        raise QueryArgumentError(msg, field="column_names")
    extra = sorted(str(k) for k in column_names if k not in ("obs", "var"))
    if extra:
        msg = (
            f"column_names has keys {', '.join(_echo(k) for k in extra[:5])}; only 'obs' and "
            "'var' are read (a misspelled key would be ignored silently)"
        )
        raise QueryArgumentError(msg, field="column_names")
    return column_names


def _bad_coord(where: str, what: str) -> QueryArgumentError:
    return QueryArgumentError(
        f"{what}; give soma_joinid coordinates as an int >= 0, a slice of them, or a list / "
        "numpy array of them",
        field=where,
    )


def _check_int(v: object, where: str, last: int | None = None) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise _bad_coord(where, f"{_echo(v)} is not an integer")
    if int(v) < 0:
        raise _bad_coord(where, f"{int(v)} is negative")
    if last is not None and int(v) > last:
        raise _bad_coord(where, f"{int(v)} is after the last soma_joinid ({last})")


def _check_slice(coords: slice, where: str, last: int | None) -> None:
    if coords.step not in (None, 1):
        raise _bad_coord(where, f"slice {coords} has a step")
    for v in (coords.start, coords.stop):
        if v is not None:
            _check_int(v, where)
    if last is not None and coords.start is not None and int(coords.start) > last:
        raise _bad_coord(where, f"slice {coords} starts after the last soma_joinid ({last})")


def last_joinid(df: soma.DataFrame) -> int | None:
    """The largest ``soma_joinid`` a DataFrame's domain allows (``None`` if unknown)."""
    try:
        names = list(df.index_column_names)
        hi = df.domain[names.index("soma_joinid")][1]
    except (ValueError, IndexError, TypeError, AttributeError):
        return None
    return int(hi) if isinstance(hi, numbers.Integral) else None


def check_coords(coords: object, *, where: str, last: int | None = None) -> None:
    """Check ``soma_joinid`` coordinates (``None``, int, slice, sequence or array of ints >= 0).

    Other types that TileDB-SOMA accepts (pyarrow arrays) pass unchecked. ``last``, the
    largest ``soma_joinid`` of the domain (:func:`last_joinid`), lets coordinates after it be
    refused (TileDB-SOMA fails on them).

    Raises
    ------
    QueryArgumentError
        For strings, negative or non-integer values, or a slice with a step.
    """
    if coords is None:
        return
    if isinstance(coords, str | bytes):
        raise _bad_coord(where, f"{_echo(coords)} is a string")
    if isinstance(coords, slice):
        _check_slice(coords, where, last)
        return
    if isinstance(coords, numbers.Integral | bool):
        _check_int(coords, where, last)
        return
    if isinstance(coords, np.ndarray):
        if coords.dtype.kind not in "iu" or coords.ndim != 1:
            raise _bad_coord(where, f"a {coords.ndim}-d array of {coords.dtype}")
        if coords.size:
            _check_int(int(coords.min()), where, last)
            _check_int(int(coords.max()), where, last)
        return
    if isinstance(coords, Sequence):
        for v in coords:
            _check_int(v, where, last)
        return
    if isinstance(coords, float | Mapping | set):
        raise _bad_coord(where, f"{_echo(coords)} is not a coordinate")


def check_layers(ms: soma.Measurement, names: Sequence[str], *, where: str) -> None:
    """Check X layer names against a measurement.

    Raises
    ------
    CensusNotFoundError
        (a ``ValueError``, as the official client raises) for an unknown layer.
    """
    known = sorted(ms.X) if "X" in ms else []
    for name in names:
        if not isinstance(name, str) or name not in known:
            msg = f"{where}: X layer {_echo(name)} is not in {ms.uri}; layers: {_listing(known)}"
            raise CensusNotFoundError(msg)
