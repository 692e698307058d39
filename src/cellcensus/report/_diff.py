"""The difference between two builds' summaries (pure: no I/O)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cellcensus.report._model import (
    BuildSummary,
    CategoryCount,
    CategoryDelta,
    DatasetChange,
    DatasetInfo,
    OrganismDelta,
    OrganismSummary,
    ReleaseDiff,
    SchemaChange,
    pair,
    sorted_deltas,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["diff_summaries"]

_SCHEMA_FIELDS = ("census_schema_version", "dataset_schema_version")


def _changed(old: DatasetInfo, new: DatasetInfo) -> tuple[str, ...]:
    """Why a dataset present in both builds counts as changed (empty: it did not).

    The source H5AD's sha256 decides when both builds recorded it; the dataset_version_id
    (a new version of a dataset is a new file) decides too when both carry one.
    """
    reasons = []
    if old.sha256 and new.sha256 and old.sha256 != new.sha256:
        reasons.append("sha256")
    if (
        old.dataset_version_id
        and new.dataset_version_id
        and old.dataset_version_id != new.dataset_version_id
    ):
        reasons.append("dataset_version_id")
    return tuple(reasons)


def _category_deltas(
    old: tuple[CategoryCount, ...], new: tuple[CategoryCount, ...]
) -> tuple[CategoryDelta, ...]:
    o: Mapping[str, CategoryCount] = {c.key: c for c in old}
    n: Mapping[str, CategoryCount] = {c.key: c for c in new}
    rows = []
    for key in sorted(set(o) | set(n)):
        a, b = o.get(key), n.get(key)
        ref = b or a
        assert ref is not None  # noqa: S101 - key comes from one of the two
        total = pair(a.total_cells if a else None, b.total_cells if b else None)
        unique = pair(a.unique_cells if a else None, b.unique_cells if b else None)
        if total[0] == total[1] and unique[0] == unique[1]:
            continue
        rows.append(
            CategoryDelta(
                label=ref.label,
                ontology_term_id=ref.ontology_term_id,
                total_cells=total,
                unique_cells=unique,
            )
        )
    return sorted_deltas(rows)


def _organism_delta(
    name: str, old: OrganismSummary | None, new: OrganismSummary | None
) -> OrganismDelta:
    ref = new or old
    assert ref is not None  # noqa: S101 - name comes from one of the two
    cats = sorted(set(old.categories if old else {}) | set(new.categories if new else {}))
    categories = {}
    for cat in cats:
        rows = _category_deltas(
            old.categories.get(cat, ()) if old else (), new.categories.get(cat, ()) if new else ()
        )
        if rows:
            categories[cat] = rows
    return OrganismDelta(
        name=name,
        label=ref.label,
        total_cells=pair(old.total_cells if old else None, new.total_cells if new else None),
        unique_cells=pair(old.unique_cells if old else None, new.unique_cells if new else None),
        genes=pair(old.genes if old else None, new.genes if new else None),
        nnz=pair(old.nnz if old else None, new.nnz if new else None),
        datasets=pair(old.datasets if old else None, new.datasets if new else None),
        categories=categories,
    )


def diff_summaries(old: BuildSummary, new: BuildSummary) -> ReleaseDiff:
    """What changed from ``old`` to ``new``.

    Datasets are matched by ``dataset_id``: *added* and *removed* are in one build only;
    *changed* are in both with a different source (sha256 of the H5AD, or dataset_version_id).
    Cell and gene counts are compared per organism of each collection (``census_data`` and
    ``census_spatial_sequencing`` apart), and cell counts per category term (only terms whose
    counts differ are listed, largest change first).

    Parameters
    ----------
    old, new
        Summaries of the baseline and of the build described.

    Returns
    -------
    ReleaseDiff
        The changes.
    """
    schema = tuple(
        SchemaChange(field=f, old=getattr(old, f), new=getattr(new, f))
        for f in _SCHEMA_FIELDS
        if getattr(old, f) != getattr(new, f)
    )
    o = {d.dataset_id: d for d in old.datasets}
    n = {d.dataset_id: d for d in new.datasets}
    changed = []
    for did in sorted(set(o) & set(n)):
        reasons = _changed(o[did], n[did])
        if reasons:
            changed.append(DatasetChange(dataset_id=did, reasons=reasons, old=o[did], new=n[did]))
    return ReleaseDiff(
        old_tag=old.tag,
        new_tag=new.tag,
        schema_changes=schema,
        total_cells=pair(old.total_cells, new.total_cells),
        unique_cells=pair(old.unique_cells, new.unique_cells),
        spatial_cells=pair(old.spatial_cells, new.spatial_cells),
        datasets=pair(len(old.datasets), len(new.datasets)),
        store_bytes=pair(old.store_bytes, new.store_bytes),
        added=tuple(n[d] for d in sorted(set(n) - set(o))),
        removed=tuple(o[d] for d in sorted(set(o) - set(n))),
        changed=tuple(changed),
        organisms=_organism_deltas(old.organisms, new.organisms),
        spatial_organisms=_organism_deltas(old.spatial_organisms, new.spatial_organisms),
    )


def _organism_deltas(
    old: tuple[OrganismSummary, ...], new: tuple[OrganismSummary, ...]
) -> tuple[OrganismDelta, ...]:
    """Deltas of the organisms of one collection, largest (in the new build) first."""
    o = {x.name: x for x in old}
    n = {x.name: x for x in new}
    names = sorted(
        set(o) | set(n), key=lambda name: (-(n[name].total_cells if name in n else 0), name)
    )
    return tuple(_organism_delta(name, o.get(name), n.get(name)) for name in names)
