"""Checked reading of the report's JSON: errors name the file and the key at fault."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cellcensus._formats._json import parse
from cellcensus.errors import IntegrityError

__all__ = [
    "READABLE_VERSIONS",
    "REPORT_FORMAT_VERSION",
    "Pair",
    "Reader",
    "check_version",
    "items",
    "loads",
]

#: Version written. 2: numbers per collection (``census_data`` and ``census_spatial_sequencing``:
#: ``spatial_organisms``, ``spatial_cells``, a dataset's ``collection``); totals over both.
REPORT_FORMAT_VERSION = 2
#: Versions read. A version-1 file has no spatial parts (they read as empty / ``None``); its
#: totals cover ``census_data`` only.
READABLE_VERSIONS = (1, 2)
#: What to do about a malformed report.
REGENERATE = "regenerate it with `cellcensus report`"

#: ``(old, new)`` values of a diff; ``None`` where a build has no value.
Pair = tuple[int | None, int | None]


class Reader:
    """Checked access to one JSON object; errors name the file and the key."""

    def __init__(self, d: object, where: str) -> None:
        if not isinstance(d, Mapping):
            msg = f"{where}: expected a JSON object; the report is malformed, regenerate it"
            raise IntegrityError(msg)
        self.d: Mapping[str, Any] = d
        self.where = where

    def _bad(self, key: str, what: str) -> IntegrityError:
        return IntegrityError(
            f"{self.where}: {key!r} {what}; the report is malformed, {REGENERATE}"
        )

    def integer(self, key: str) -> int:
        v = self.d.get(key)
        if not isinstance(v, int) or isinstance(v, bool):
            raise self._bad(key, "must be an integer")
        return v

    def positive(self, key: str) -> int:
        v = self.integer(key)
        if v <= 0:
            raise self._bad(key, "must be positive")
        return v

    def integer_opt(self, key: str) -> int | None:
        return None if self.d.get(key) is None else self.integer(key)

    def number(self, key: str) -> float:
        v = self.d.get(key)
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise self._bad(key, "must be a number")
        return float(v)

    def number_opt(self, key: str) -> float | None:
        return None if self.d.get(key) is None else self.number(key)

    def text(self, key: str) -> str:
        v = self.d.get(key)
        if not isinstance(v, str):
            raise self._bad(key, "must be a string")
        return v

    def text_opt(self, key: str) -> str | None:
        return None if self.d.get(key) is None else self.text(key)

    def counts(self, key: str) -> tuple[int, ...]:
        v = self.array(key)
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in v):
            raise self._bad(key, "must hold non-negative integers")
        return tuple(v)

    def array(self, key: str) -> list[Any]:
        v = self.d.get(key, [])
        if not isinstance(v, list):
            raise self._bad(key, "must be a list")
        return v

    def pair(self, key: str) -> Pair:
        v = self.d.get(key)
        if (
            not isinstance(v, list)
            or len(v) != 2
            or any(x is not None and (not isinstance(x, int) or isinstance(x, bool)) for x in v)
        ):
            raise self._bad(key, "must be [old, new] integers or null")
        return (v[0], v[1])

    def sub(self, key: str) -> Reader:
        return Reader(self.d.get(key), f"{self.where}.{key}")


def items(r: Reader, key: str) -> list[Reader]:
    return [Reader(x, f"{r.where}.{key}[{i}]") for i, x in enumerate(r.array(key))]


def check_version(d: object, where: str) -> Reader:
    r = Reader(d, where)
    version = r.d.get("format_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        known = ", ".join(str(v) for v in READABLE_VERSIONS)
        msg = (
            f"{where} has format_version {version!r}; this cellcensus reads versions "
            f"{known}: upgrade cellcensus, or regenerate the report"
        )
        raise IntegrityError(msg)
    return r


def loads(data: bytes, where: str) -> object:
    """Parse a report's JSON; :class:`IntegrityError` (as for other formats) if it is not JSON."""
    return parse(data, where=where, advice=REGENERATE, error=IntegrityError)
