"""Models of a build's numbers (the ``summary`` and ``totals`` of ``report.json``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cellcensus.report._json import items

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cellcensus.report._json import Reader

__all__ = [
    "BINS_PER_DECADE",
    "CENSUS_DATA",
    "CENSUS_SPATIAL",
    "BuildSummary",
    "CategoryCount",
    "DatasetInfo",
    "Histogram",
    "OrganismSummary",
    "Totals",
]

#: The two experiment collections of a census: single-cell data, and spatial sequencing
#: (Visium, Slide-seqV2; only present in builds with spatial datasets).
CENSUS_DATA = "census_data"
CENSUS_SPATIAL = "census_spatial_sequencing"
#: Histogram bins per decade (bin ``k`` covers ``[10**(k/B), 10**((k+1)/B))``).
BINS_PER_DECADE = 20


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
    def from_reader(cls, r: Reader) -> CategoryCount:
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
    def from_reader(cls, r: Reader) -> Histogram:
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
    """One experiment (of ``census_data`` or ``census_spatial_sequencing``): cells, genes,
    stored values, categories, histograms."""

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
    def from_reader(cls, r: Reader) -> OrganismSummary:
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
                str(cat): tuple(CategoryCount.from_reader(x) for x in items(cats, cat))
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
    #: ``census_data`` or ``census_spatial_sequencing`` (``None``: unknown, version-1 reports)
    collection: str | None = None

    @property
    def spatial(self) -> bool:
        """Whether the dataset's cells are in ``census_spatial_sequencing``."""
        return self.collection == CENSUS_SPATIAL

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "dataset_id": self.dataset_id,
            "collection": self.collection,
            "dataset_version_id": self.dataset_version_id,
            "title": self.title,
            "collection_name": self.collection_name,
            "organism": self.organism,
            "cells": self.cells,
            "sha256": self.sha256,
            "h5ad_bytes": self.h5ad_bytes,
        }

    @classmethod
    def from_reader(cls, r: Reader) -> DatasetInfo:
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
            collection=r.text_opt("collection"),
        )


@dataclass(frozen=True, kw_only=True)
class BuildSummary:
    """Everything a report says about one build (its diff aside).

    ``organisms`` are the experiments of ``census_data``, ``spatial_organisms`` those of
    ``census_spatial_sequencing`` (empty when the build has none). ``total_cells``,
    ``unique_cells`` and ``nnz`` cover both collections, as ``census_info/summary`` does.
    """

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
    spatial_organisms: tuple[OrganismSummary, ...] = ()
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
        """Genes of ``census_data`` summed over organisms (a gene id is per organism)."""
        vals = [o.genes for o in self.organisms]
        return None if any(v is None for v in vals) else sum(v or 0 for v in vals)

    @property
    def data_cells(self) -> int:
        """Cells of ``census_data``."""
        return sum(o.total_cells for o in self.organisms)

    @property
    def spatial_cells(self) -> int:
        """Cells (spots, beads) of ``census_spatial_sequencing``."""
        return sum(o.total_cells for o in self.spatial_organisms)

    @property
    def organism_names(self) -> tuple[str, ...]:
        """Organisms with cells in either collection."""
        names = [o.name for o in (*self.organisms, *self.spatial_organisms)]
        return tuple(dict.fromkeys(names))

    def organism(self, name: str) -> OrganismSummary | None:
        """The ``census_data`` organism called ``name`` (``homo_sapiens``), if it has cells."""
        return next((o for o in self.organisms if o.name == name), None)

    def spatial_organism(self, name: str) -> OrganismSummary | None:
        """The ``census_spatial_sequencing`` organism called ``name``, if it has cells."""
        return next((o for o in self.spatial_organisms if o.name == name), None)

    def totals(self) -> Totals:
        """The few headline numbers."""
        return Totals(
            tag=self.tag,
            cells=self.total_cells,
            unique_cells=self.unique_cells,
            spatial_cells=self.spatial_cells,
            datasets=len(self.datasets),
            organisms=len(self.organism_names),
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
            "spatial_organisms": [o.to_dict() for o in self.spatial_organisms],
            "datasets": [d.to_dict() for d in self.datasets],
            "notes": list(self.notes),
        }

    @classmethod
    def from_reader(cls, r: Reader) -> BuildSummary:
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
            organisms=tuple(OrganismSummary.from_reader(x) for x in items(r, "organisms")),
            spatial_organisms=tuple(
                OrganismSummary.from_reader(x) for x in items(r, "spatial_organisms")
            ),
            datasets=tuple(DatasetInfo.from_reader(x) for x in items(r, "datasets")),
            notes=tuple(str(n) for n in r.array("notes")),
        )


@dataclass(frozen=True, kw_only=True)
class Totals:
    """The headline numbers of a build, first in ``report.json``.

    ``cells``, ``unique_cells``, ``datasets`` and ``nnz`` cover both collections;
    ``spatial_cells`` is the ``census_spatial_sequencing`` part of ``cells`` (``None`` in
    version-1 reports, whose totals cover ``census_data`` only).
    """

    tag: str
    cells: int
    unique_cells: int | None
    spatial_cells: int | None
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
            "spatial_cells": self.spatial_cells,
            "datasets": self.datasets,
            "organisms": self.organisms,
            "nnz": self.nnz,
            "store_bytes": self.store_bytes,
        }

    @classmethod
    def from_reader(cls, r: Reader) -> Totals:
        """Parse."""
        return cls(
            tag=r.text("tag"),
            cells=r.integer("cells"),
            unique_cells=r.integer_opt("unique_cells"),
            spatial_cells=r.integer_opt("spatial_cells"),
            datasets=r.integer("datasets"),
            organisms=r.integer("organisms"),
            nnz=r.integer_opt("nnz"),
            store_bytes=r.integer_opt("store_bytes"),
        )
