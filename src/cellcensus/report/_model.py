"""``report.json``: a build's numbers and its diff, with a ``format_version``.

A reader refuses versions it does not know. The first keys are ``format_version`` and ``totals``
(a few numbers), so a listing of many builds can read just the head of each file
(:func:`read_totals`). The parts are modelled in :mod:`._summary` and :mod:`._diffmodel`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cellcensus.report._diffmodel import (
    CategoryDelta,
    DatasetChange,
    OrganismDelta,
    ReleaseDiff,
    SchemaChange,
    pair,
    sorted_deltas,
)
from cellcensus.report._json import REPORT_FORMAT_VERSION, Pair, check_version, loads
from cellcensus.report._summary import (
    BINS_PER_DECADE,
    CENSUS_DATA,
    CENSUS_SPATIAL,
    BuildSummary,
    CategoryCount,
    DatasetInfo,
    Histogram,
    OrganismSummary,
    Totals,
)

__all__ = [
    "BINS_PER_DECADE",
    "CENSUS_DATA",
    "CENSUS_SPATIAL",
    "REPORT_FORMAT_VERSION",
    "BuildReport",
    "BuildSummary",
    "CategoryCount",
    "CategoryDelta",
    "DatasetChange",
    "DatasetInfo",
    "Histogram",
    "OrganismDelta",
    "OrganismSummary",
    "Pair",
    "ReleaseDiff",
    "SchemaChange",
    "Totals",
    "pair",
    "read_totals",
    "sorted_deltas",
]


@dataclass(frozen=True, kw_only=True)
class BuildReport:
    """``report.json``: a build's summary and, when there is a baseline, its diff.

    ``format_version`` is the version the report was read from (a version-1 report has no
    spatial numbers); it is always written as :data:`REPORT_FORMAT_VERSION`.
    """

    summary: BuildSummary
    diff: ReleaseDiff | None = None
    generator: str = ""
    format_version: int = REPORT_FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``format_version`` and ``totals`` first)."""
        return {
            "format_version": REPORT_FORMAT_VERSION,
            "totals": self.summary.totals().to_dict(),
            "generator": self.generator,
            "summary": self.summary.to_dict(),
            "diff": None if self.diff is None else self.diff.to_dict(),
        }

    def to_json(self) -> bytes:
        """Serialised ``report.json`` (deterministic: same numbers, same bytes)."""
        return (json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, *, where: str = "report.json") -> BuildReport:
        """Parse and check a ``report.json``.

        Raises
        ------
        IntegrityError
            On invalid JSON, an unknown ``format_version`` or a malformed field.
        """
        r = check_version(loads(data, where), where)
        diff = r.d.get("diff")
        return cls(
            summary=BuildSummary.from_reader(r.sub("summary")),
            diff=None if diff is None else ReleaseDiff.from_reader(r.sub("diff")),
            generator=str(r.d.get("generator") or ""),
            format_version=r.integer("format_version"),
        )


def read_totals(head: bytes, *, where: str = "report.json") -> Totals | None:
    """The ``totals`` of a ``report.json`` from the first bytes of the file.

    Returns ``None`` when ``head`` does not hold the complete ``totals`` object (then read the
    whole file with :meth:`BuildReport.from_json`).

    Raises
    ------
    IntegrityError
        On an unknown ``format_version``.
    """
    text = head.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    found: dict[str, object] = {}
    for key in ("format_version", "totals"):
        i = text.find(f'"{key}":')
        if i < 0:
            return None
        j = i + len(key) + 3
        while j < len(text) and text[j] in " \n\r\t":
            j += 1
        try:
            found[key], _ = decoder.raw_decode(text, j)
        except json.JSONDecodeError:
            return None
    r = check_version(found, where)
    return Totals.from_reader(r.sub("totals"))
