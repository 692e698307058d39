"""Typed models of a release report (``report.json``): a build's numbers and its diff.

``report.json`` carries ``format_version``; a reader refuses versions it does not know. Its first
keys are ``format_version`` and ``totals`` (a few numbers), so a listing of many builds can read
just the head of each file (:func:`read_totals`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cellcensus.errors import IntegrityError

__all__ = [
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
    "ReleaseDiff",
    "SchemaChange",
    "Totals",
    "read_totals",
]

REPORT_FORMAT_VERSION = 1

#: Histogram bins per decade (bin ``k`` covers ``[10**(k/B), 10**((k+1)/B))``).
BINS_PER_DECADE = 20

Pair = tuple[int | None, int | None]


# ---------------------------------------------------------------------------- parsing helpers
class _Reader:
    """Checked access to one JSON object; errors name the file and the key."""

    def __init__(self, d: object, where: str) -> None:
        if not isinstance(d, Mapping):
            msg = f"{where}: expected a JSON object; the report is malformed, regenerate it"
            raise IntegrityError(msg)
        self.d: Mapping[str, Any] = d
        self.where = where

    def _bad(self, key: str, what: str) -> IntegrityError:
        return IntegrityError(
            f"{self.where}: {key!r} {what}; the report is malformed, regenerate it with "
            "`cellcensus report`"
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

    def sub(self, key: str) -> _Reader:
        return _Reader(self.d.get(key), f"{self.where}.{key}")


def _items(r: _Reader, key: str) -> list[_Reader]:
    return [_Reader(x, f"{r.where}.{key}[{i}]") for i, x in enumerate(r.array(key))]


# ---------------------------------------------------------------------------- build summary
@dataclass(frozen=True, kw_only=True)
class CategoryCount:
    """Cells of one ontology term (or label) of a category, e.g. ``assay`` = 10x 3' v3."""

    label: str
    ontology_term_id: str
    total_cells: int
    unique_cells: int

    @property
    def key(self) -> str:
        """Identity across builds: the term id, or the label where there is none."""
        return self.ontology_term_id if self.ontology_term_id not in ("", "na") else self.label

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "label": self.label,
            "ontology_term_id": self.ontology_term_id,
            "total_cells": self.total_cells,
            "unique_cells": self.unique_cells,
        }

    @classmethod
    def from_reader(cls, r: _Reader) -> CategoryCount:
        """Parse."""
        return cls(
            label=r.text("label"),
            ontology_term_id=r.text("ontology_term_id"),
            total_cells=r.integer("total_cells"),
            unique_cells=r.integer("unique_cells"),
        )


@dataclass(frozen=True, kw_only=True)
class Histogram:
    """Distribution of a per-cell value on log-spaced bins (``BINS_PER_DECADE`` per decade).

    ``counts[i]`` counts values in ``[10**((first_bin+i)/B), 10**((first_bin+i+1)/B))``;
    ``below_one`` counts values < 1 (cells with no counts). ``min``/``max``/``mean`` are exact.
    """

    count: int
    below_one: int
    first_bin: int
    counts: tuple[int, ...]
    min: float | None
    max: float | None
    mean: float | None
    bins_per_decade: int = BINS_PER_DECADE

    def edge(self, i: int) -> float:
        """Lower edge of ``counts[i]`` (``edge(len(counts))`` is the upper edge of the last)."""
        return float(10 ** ((self.first_bin + i) / self.bins_per_decade))

    def quantile(self, q: float) -> float | None:
        """Approximate quantile (log-interpolated within a bin); ``None`` when empty."""
        if self.count == 0:
            return None
        target = q * self.count
        if target <= self.below_one:
            return 0.0
        seen = float(self.below_one)
        for i, c in enumerate(self.counts):
            if c and seen + c >= target:
                frac = (target - seen) / c
                lo, hi = math.log10(self.edge(i)), math.log10(self.edge(i + 1))
                return float(10 ** (lo + frac * (hi - lo)))
            seen += c
        return self.max

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        median = self.quantile(0.5)
        return {
            "count": self.count,
            "below_one": self.below_one,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "approx_median": None if median is None else round(median, 3),
            "bins_per_decade": self.bins_per_decade,
            "first_bin": self.first_bin,
            "counts": list(self.counts),
        }

    @classmethod
    def from_reader(cls, r: _Reader) -> Histogram:
        """Parse."""
        return cls(
            count=r.integer("count"),
            below_one=r.integer("below_one"),
            first_bin=r.integer("first_bin"),
            counts=r.counts("counts"),
            min=r.number_opt("min"),
            max=r.number_opt("max"),
            mean=r.number_opt("mean"),
            bins_per_decade=r.positive("bins_per_decade"),
        )


@dataclass(frozen=True, kw_only=True)
class OrganismSummary:
    """One experiment of ``census_data``: cells, genes, stored values, categories, histograms."""

    name: str
    label: str
    total_cells: int
    unique_cells: int | None
    genes: int | None
    nnz: int | None
    datasets: int | None
    categories: Mapping[str, tuple[CategoryCount, ...]] = field(default_factory=dict)
    histograms: Mapping[str, Histogram] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "label": self.label,
            "total_cells": self.total_cells,
            "unique_cells": self.unique_cells,
            "genes": self.genes,
            "nnz": self.nnz,
            "datasets": self.datasets,
            "categories": {
                cat: [c.to_dict() for c in rows] for cat, rows in sorted(self.categories.items())
            },
            "histograms": {k: h.to_dict() for k, h in sorted(self.histograms.items())},
        }

    @classmethod
    def from_reader(cls, r: _Reader) -> OrganismSummary:
        """Parse."""
        cats = r.sub("categories")
        hists = r.sub("histograms")
        return cls(
            name=r.text("name"),
            label=r.text("label"),
            total_cells=r.integer("total_cells"),
            unique_cells=r.integer_opt("unique_cells"),
            genes=r.integer_opt("genes"),
            nnz=r.integer_opt("nnz"),
            datasets=r.integer_opt("datasets"),
            categories={
                str(cat): tuple(CategoryCount.from_reader(x) for x in _items(cats, cat))
                for cat in cats.d
            },
            histograms={str(k): Histogram.from_reader(hists.sub(k)) for k in hists.d},
        )


@dataclass(frozen=True, kw_only=True)
class DatasetInfo:
    """One dataset of a build (``census_info/datasets`` joined with ``build.json`` inputs)."""

    dataset_id: str
    dataset_version_id: str | None = None
    title: str | None = None
    collection_name: str | None = None
    organism: str | None = None
    cells: int | None = None
    sha256: str | None = None
    h5ad_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "dataset_id": self.dataset_id,
            "dataset_version_id": self.dataset_version_id,
            "title": self.title,
            "collection_name": self.collection_name,
            "organism": self.organism,
            "cells": self.cells,
            "sha256": self.sha256,
            "h5ad_bytes": self.h5ad_bytes,
        }

    @classmethod
    def from_reader(cls, r: _Reader) -> DatasetInfo:
        """Parse."""
        return cls(
            dataset_id=r.text("dataset_id"),
            dataset_version_id=r.text_opt("dataset_version_id"),
            title=r.text_opt("title"),
            collection_name=r.text_opt("collection_name"),
            organism=r.text_opt("organism"),
            cells=r.integer_opt("cells"),
            sha256=r.text_opt("sha256"),
            h5ad_bytes=r.integer_opt("h5ad_bytes"),
        )


@dataclass(frozen=True, kw_only=True)
class BuildSummary:
    """Everything a report says about one build (its diff aside)."""

    tag: str
    build_date: str | None = None
    census_schema_version: str | None = None
    dataset_schema_version: str | None = None
    cellcensus_version: str | None = None
    total_cells: int = 0
    unique_cells: int | None = None
    nnz: int | None = None
    soma_bytes: int | None = None
    h5ads_bytes: int | None = None
    inputs: Mapping[str, int] = field(default_factory=dict)
    organisms: tuple[OrganismSummary, ...] = ()
    datasets: tuple[DatasetInfo, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def store_bytes(self) -> int | None:
        """Bytes of ``soma/`` plus ``h5ads/`` (``None`` when either is unknown)."""
        if self.soma_bytes is None or self.h5ads_bytes is None:
            return None
        return self.soma_bytes + self.h5ads_bytes

    @property
    def genes(self) -> int | None:
        """Genes summed over organisms (a gene id is per organism)."""
        vals = [o.genes for o in self.organisms]
        return None if any(v is None for v in vals) else sum(v or 0 for v in vals)

    def organism(self, name: str) -> OrganismSummary | None:
        """The organism called ``name`` (``homo_sapiens``), if the build has cells of it."""
        return next((o for o in self.organisms if o.name == name), None)

    def totals(self) -> Totals:
        """The few headline numbers."""
        return Totals(
            tag=self.tag,
            cells=self.total_cells,
            unique_cells=self.unique_cells,
            datasets=len(self.datasets),
            organisms=len(self.organisms),
            nnz=self.nnz,
            store_bytes=self.store_bytes,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "tag": self.tag,
            "build_date": self.build_date,
            "census_schema_version": self.census_schema_version,
            "dataset_schema_version": self.dataset_schema_version,
            "cellcensus_version": self.cellcensus_version,
            "total_cells": self.total_cells,
            "unique_cells": self.unique_cells,
            "nnz": self.nnz,
            "soma_bytes": self.soma_bytes,
            "h5ads_bytes": self.h5ads_bytes,
            "inputs": dict(sorted(self.inputs.items())),
            "organisms": [o.to_dict() for o in self.organisms],
            "datasets": [d.to_dict() for d in self.datasets],
            "notes": list(self.notes),
        }

    @classmethod
    def from_reader(cls, r: _Reader) -> BuildSummary:
        """Parse."""
        inputs = r.sub("inputs")
        return cls(
            tag=r.text("tag"),
            build_date=r.text_opt("build_date"),
            census_schema_version=r.text_opt("census_schema_version"),
            dataset_schema_version=r.text_opt("dataset_schema_version"),
            cellcensus_version=r.text_opt("cellcensus_version"),
            total_cells=r.integer("total_cells"),
            unique_cells=r.integer_opt("unique_cells"),
            nnz=r.integer_opt("nnz"),
            soma_bytes=r.integer_opt("soma_bytes"),
            h5ads_bytes=r.integer_opt("h5ads_bytes"),
            inputs={str(k): inputs.integer(k) for k in inputs.d},
            organisms=tuple(OrganismSummary.from_reader(x) for x in _items(r, "organisms")),
            datasets=tuple(DatasetInfo.from_reader(x) for x in _items(r, "datasets")),
            notes=tuple(str(n) for n in r.array("notes")),
        )


# ---------------------------------------------------------------------------- diff
@dataclass(frozen=True, kw_only=True)
class SchemaChange:
    """A schema version that differs between two builds."""

    field: str
    old: str | None
    new: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"field": self.field, "old": self.old, "new": self.new}

    @classmethod
    def from_reader(cls, r: _Reader) -> SchemaChange:
        """Parse."""
        return cls(field=r.text("field"), old=r.text_opt("old"), new=r.text_opt("new"))


@dataclass(frozen=True, kw_only=True)
class DatasetChange:
    """A dataset in both builds whose source changed (``reasons``: ``sha256``,
    ``dataset_version_id``)."""

    dataset_id: str
    reasons: tuple[str, ...]
    old: DatasetInfo
    new: DatasetInfo

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "dataset_id": self.dataset_id,
            "reasons": list(self.reasons),
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
        }

    @classmethod
    def from_reader(cls, r: _Reader) -> DatasetChange:
        """Parse."""
        return cls(
            dataset_id=r.text("dataset_id"),
            reasons=tuple(str(x) for x in r.array("reasons")),
            old=DatasetInfo.from_reader(r.sub("old")),
            new=DatasetInfo.from_reader(r.sub("new")),
        )


def _delta(p: Pair) -> int:
    return (p[1] or 0) - (p[0] or 0)


@dataclass(frozen=True, kw_only=True)
class CategoryDelta:
    """Cells of one term of a category in the old and the new build."""

    label: str
    ontology_term_id: str
    total_cells: Pair
    unique_cells: Pair

    @property
    def delta(self) -> int:
        """Change of the total cell count."""
        return _delta(self.total_cells)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "label": self.label,
            "ontology_term_id": self.ontology_term_id,
            "total_cells": list(self.total_cells),
            "unique_cells": list(self.unique_cells),
        }

    @classmethod
    def from_reader(cls, r: _Reader) -> CategoryDelta:
        """Parse."""
        return cls(
            label=r.text("label"),
            ontology_term_id=r.text("ontology_term_id"),
            total_cells=r.pair("total_cells"),
            unique_cells=r.pair("unique_cells"),
        )


@dataclass(frozen=True, kw_only=True)
class OrganismDelta:
    """Old and new numbers of one organism; ``categories`` lists only terms that changed."""

    name: str
    label: str
    total_cells: Pair
    unique_cells: Pair
    genes: Pair
    nnz: Pair
    datasets: Pair
    categories: Mapping[str, tuple[CategoryDelta, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "label": self.label,
            "total_cells": list(self.total_cells),
            "unique_cells": list(self.unique_cells),
            "genes": list(self.genes),
            "nnz": list(self.nnz),
            "datasets": list(self.datasets),
            "categories": {
                cat: [c.to_dict() for c in rows] for cat, rows in sorted(self.categories.items())
            },
        }

    @classmethod
    def from_reader(cls, r: _Reader) -> OrganismDelta:
        """Parse."""
        cats = r.sub("categories")
        return cls(
            name=r.text("name"),
            label=r.text("label"),
            total_cells=r.pair("total_cells"),
            unique_cells=r.pair("unique_cells"),
            genes=r.pair("genes"),
            nnz=r.pair("nnz"),
            datasets=r.pair("datasets"),
            categories={
                str(cat): tuple(CategoryDelta.from_reader(x) for x in _items(cats, cat))
                for cat in cats.d
            },
        )


@dataclass(frozen=True, kw_only=True)
class ReleaseDiff:
    """What changed from build ``old_tag`` to build ``new_tag``."""

    old_tag: str
    new_tag: str
    schema_changes: tuple[SchemaChange, ...] = ()
    total_cells: Pair = (None, None)
    unique_cells: Pair = (None, None)
    datasets: Pair = (None, None)
    store_bytes: Pair = (None, None)
    added: tuple[DatasetInfo, ...] = ()
    removed: tuple[DatasetInfo, ...] = ()
    changed: tuple[DatasetChange, ...] = ()
    organisms: tuple[OrganismDelta, ...] = ()

    @property
    def identical_datasets(self) -> bool:
        """Whether no dataset was added, removed or changed."""
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "old_tag": self.old_tag,
            "new_tag": self.new_tag,
            "schema_changes": [c.to_dict() for c in self.schema_changes],
            "total_cells": list(self.total_cells),
            "unique_cells": list(self.unique_cells),
            "datasets": list(self.datasets),
            "store_bytes": list(self.store_bytes),
            "datasets_added": [d.to_dict() for d in self.added],
            "datasets_removed": [d.to_dict() for d in self.removed],
            "datasets_changed": [c.to_dict() for c in self.changed],
            "organisms": [o.to_dict() for o in self.organisms],
        }

    def to_json(self) -> bytes:
        """Serialised diff (``cellcensus diff --json``)."""
        doc = {"format_version": REPORT_FORMAT_VERSION, **self.to_dict()}
        return (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode()

    @classmethod
    def from_reader(cls, r: _Reader) -> ReleaseDiff:
        """Parse."""
        return cls(
            old_tag=r.text("old_tag"),
            new_tag=r.text("new_tag"),
            schema_changes=tuple(SchemaChange.from_reader(x) for x in _items(r, "schema_changes")),
            total_cells=r.pair("total_cells"),
            unique_cells=r.pair("unique_cells"),
            datasets=r.pair("datasets"),
            store_bytes=r.pair("store_bytes"),
            added=tuple(DatasetInfo.from_reader(x) for x in _items(r, "datasets_added")),
            removed=tuple(DatasetInfo.from_reader(x) for x in _items(r, "datasets_removed")),
            changed=tuple(DatasetChange.from_reader(x) for x in _items(r, "datasets_changed")),
            organisms=tuple(OrganismDelta.from_reader(x) for x in _items(r, "organisms")),
        )


# ---------------------------------------------------------------------------- report.json
@dataclass(frozen=True, kw_only=True)
class Totals:
    """The headline numbers of a build, first in ``report.json``."""

    tag: str
    cells: int
    unique_cells: int | None
    datasets: int
    organisms: int
    nnz: int | None
    store_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "tag": self.tag,
            "cells": self.cells,
            "unique_cells": self.unique_cells,
            "datasets": self.datasets,
            "organisms": self.organisms,
            "nnz": self.nnz,
            "store_bytes": self.store_bytes,
        }

    @classmethod
    def from_reader(cls, r: _Reader) -> Totals:
        """Parse."""
        return cls(
            tag=r.text("tag"),
            cells=r.integer("cells"),
            unique_cells=r.integer_opt("unique_cells"),
            datasets=r.integer("datasets"),
            organisms=r.integer("organisms"),
            nnz=r.integer_opt("nnz"),
            store_bytes=r.integer_opt("store_bytes"),
        )


def _check_version(d: object, where: str) -> _Reader:
    r = _Reader(d, where)
    version = r.d.get("format_version")
    if version != REPORT_FORMAT_VERSION:
        msg = (
            f"{where} has format_version {version!r}; this cellcensus reads version "
            f"{REPORT_FORMAT_VERSION}: upgrade cellcensus, or regenerate the report"
        )
        raise IntegrityError(msg)
    return r


def _loads(data: bytes, where: str) -> object:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        msg = f"{where} is not valid JSON ({e}); regenerate it with `cellcensus report`"
        raise IntegrityError(msg) from e


@dataclass(frozen=True, kw_only=True)
class BuildReport:
    """``report.json``: a build's summary and, when there is a baseline, its diff."""

    summary: BuildSummary
    diff: ReleaseDiff | None = None
    generator: str = ""
    format_version: int = REPORT_FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``format_version`` and ``totals`` first)."""
        return {
            "format_version": self.format_version,
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
        r = _check_version(_loads(data, where), where)
        diff = r.d.get("diff")
        return cls(
            summary=BuildSummary.from_reader(r.sub("summary")),
            diff=None if diff is None else ReleaseDiff.from_reader(r.sub("diff")),
            generator=str(r.d.get("generator") or ""),
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
    r = _check_version(found, where)
    return Totals.from_reader(r.sub("totals"))


def pair(old: int | None, new: int | None) -> Pair:
    """An ``(old, new)`` pair."""
    return (old, new)


def sorted_deltas(rows: Sequence[CategoryDelta]) -> tuple[CategoryDelta, ...]:
    """Largest absolute change first, then by label."""
    return tuple(sorted(rows, key=lambda c: (-abs(c.delta), c.label, c.ontology_term_id)))
