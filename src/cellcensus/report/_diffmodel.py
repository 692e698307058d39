"""Models of the difference between two builds (the ``diff`` of ``report.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cellcensus.report._json import REPORT_FORMAT_VERSION, Pair, items
from cellcensus.report._summary import DatasetInfo

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cellcensus.report._json import Reader

__all__ = [
    "CategoryDelta",
    "DatasetChange",
    "OrganismDelta",
    "ReleaseDiff",
    "SchemaChange",
    "pair",
    "sorted_deltas",
]


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
    def from_reader(cls, r: Reader) -> SchemaChange:
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
    def from_reader(cls, r: Reader) -> DatasetChange:
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
    def from_reader(cls, r: Reader) -> CategoryDelta:
        """Parse."""
        return cls(
            label=r.text("label"),
            ontology_term_id=r.text("ontology_term_id"),
            total_cells=r.pair("total_cells"),
            unique_cells=r.pair("unique_cells"),
        )


@dataclass(frozen=True, kw_only=True)
class OrganismDelta:
    """Old and new numbers of one organism of one collection; ``categories`` lists only terms
    that changed."""

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
    def from_reader(cls, r: Reader) -> OrganismDelta:
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
                str(cat): tuple(CategoryDelta.from_reader(x) for x in items(cats, cat))
                for cat in cats.d
            },
        )


@dataclass(frozen=True, kw_only=True)
class ReleaseDiff:
    """What changed from build ``old_tag`` to build ``new_tag``.

    ``total_cells`` and ``unique_cells`` cover both collections; ``spatial_cells`` is the
    ``census_spatial_sequencing`` part. ``organisms`` compares the experiments of
    ``census_data``, ``spatial_organisms`` those of ``census_spatial_sequencing``.
    """

    old_tag: str
    new_tag: str
    schema_changes: tuple[SchemaChange, ...] = ()
    total_cells: Pair = (None, None)
    unique_cells: Pair = (None, None)
    spatial_cells: Pair = (None, None)
    datasets: Pair = (None, None)
    store_bytes: Pair = (None, None)
    added: tuple[DatasetInfo, ...] = ()
    removed: tuple[DatasetInfo, ...] = ()
    changed: tuple[DatasetChange, ...] = ()
    organisms: tuple[OrganismDelta, ...] = ()
    spatial_organisms: tuple[OrganismDelta, ...] = ()

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
            "spatial_cells": list(self.spatial_cells),
            "datasets": list(self.datasets),
            "store_bytes": list(self.store_bytes),
            "datasets_added": [d.to_dict() for d in self.added],
            "datasets_removed": [d.to_dict() for d in self.removed],
            "datasets_changed": [c.to_dict() for c in self.changed],
            "organisms": [o.to_dict() for o in self.organisms],
            "spatial_organisms": [o.to_dict() for o in self.spatial_organisms],
        }

    def to_json(self) -> bytes:
        """Serialised diff (``cellcensus diff --json``)."""
        doc = {"format_version": REPORT_FORMAT_VERSION, **self.to_dict()}
        return (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode()

    @classmethod
    def from_reader(cls, r: Reader) -> ReleaseDiff:
        """Parse."""
        return cls(
            old_tag=r.text("old_tag"),
            new_tag=r.text("new_tag"),
            schema_changes=tuple(SchemaChange.from_reader(x) for x in items(r, "schema_changes")),
            total_cells=r.pair("total_cells"),
            unique_cells=r.pair("unique_cells"),
            # absent from version 1
            spatial_cells=r.pair("spatial_cells") if "spatial_cells" in r.d else (None, None),
            datasets=r.pair("datasets"),
            store_bytes=r.pair("store_bytes"),
            added=tuple(DatasetInfo.from_reader(x) for x in items(r, "datasets_added")),
            removed=tuple(DatasetInfo.from_reader(x) for x in items(r, "datasets_removed")),
            changed=tuple(DatasetChange.from_reader(x) for x in items(r, "datasets_changed")),
            organisms=tuple(OrganismDelta.from_reader(x) for x in items(r, "organisms")),
            spatial_organisms=tuple(
                OrganismDelta.from_reader(x) for x in items(r, "spatial_organisms")
            ),
        )


def pair(old: int | None, new: int | None) -> Pair:
    """An ``(old, new)`` pair."""
    return (old, new)


def sorted_deltas(rows: Sequence[CategoryDelta]) -> tuple[CategoryDelta, ...]:
    """Largest absolute change first, then by label."""
    return tuple(sorted(rows, key=lambda c: (-abs(c.delta), c.label, c.ontology_term_id)))
