"""``<stem>.export.json``: what a parquet export holds (written beside its ``.parquet`` files).

Written by :func:`cellcensus.export` (``ParquetWriter``), read by ``read_export``. Version 1 is
the only version so far.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypedDict

from cellcensus._formats._json import check_version, load_object, malformed

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ExportInfo", "ExportInfoDict"]

FORMAT_VERSION = 1
#: The ``format`` key that names the file's kind.
FORMAT_NAME: Final = "cellcensus-parquet-export"
_ADVICE = "export the query again"


class ExportInfoDict(TypedDict):
    """``<stem>.export.json``."""

    format: Literal["cellcensus-parquet-export"]
    format_version: int
    organism: str
    measurement_name: str
    X_name: str
    query: dict[str, Any]
    n_obs: int
    n_vars: int
    nnz: int
    estimate: dict[str, Any]


def _count(d: Mapping[str, Any], key: str, where: str) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise malformed(where, f"{key!r} must be a count (integer >= 0)", _ADVICE)
    return v


@dataclass(frozen=True, kw_only=True)
class ExportInfo:
    """What was exported: the query, its counts and the estimate made before reading X."""

    organism: str
    measurement_name: str
    X_name: str
    n_obs: int
    n_vars: int
    nnz: int
    query: Mapping[str, Any] = field(default_factory=dict)
    estimate: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> ExportInfoDict:
        """JSON form."""
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "organism": self.organism,
            "measurement_name": self.measurement_name,
            "X_name": self.X_name,
            "query": dict(self.query),
            "n_obs": self.n_obs,
            "n_vars": self.n_vars,
            "nnz": self.nnz,
            "estimate": dict(self.estimate),
        }

    def to_json(self) -> bytes:
        """Serialised ``<stem>.export.json``."""
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes | str, *, where: str = "export.json") -> ExportInfo:
        """Parse, dispatching on ``format_version``.

        Raises
        ------
        UnsupportedFormatError
            For a ``format_version`` this cellcensus does not read.
        BadInputError
            For content that is not an export description.
        """
        d = load_object(data, where=where, advice=_ADVICE)
        reader = check_version(d, where=where, readers={1: cls._from_v1}, advice=_ADVICE)
        return reader(d, where=where)

    @classmethod
    def _from_v1(cls, d: Mapping[str, Any], *, where: str) -> ExportInfo:
        if d.get("format") != FORMAT_NAME:
            what = f"'format' is {d.get('format')!r}, not {FORMAT_NAME!r}"
            raise malformed(where, what, _ADVICE)
        text = {k: d.get(k) for k in ("organism", "measurement_name", "X_name")}
        for key, v in text.items():
            if not isinstance(v, str):
                raise malformed(where, f"{key!r} must be a string", _ADVICE)
        query, estimate = d.get("query") or {}, d.get("estimate") or {}
        if not isinstance(query, Mapping) or not isinstance(estimate, Mapping):
            raise malformed(where, "'query' and 'estimate' must be objects", _ADVICE)
        return cls(
            organism=str(text["organism"]),
            measurement_name=str(text["measurement_name"]),
            X_name=str(text["X_name"]),
            n_obs=_count(d, "n_obs", where),
            n_vars=_count(d, "n_vars", where),
            nnz=_count(d, "nnz", where),
            query=dict(query),
            estimate=dict(estimate),
            format_version=1,
        )
