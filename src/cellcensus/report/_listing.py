"""One row per build of a release root: flags and aliases from ``release.json``, cells and
size from the head of each build's ``report.json`` (one small read per build, in parallel).

Builds published before reports existed fall back to ``build.json`` (cells) and
``manifest.json`` (size), and so do builds with spatial datasets whose ``report.json`` is of
version 1 (its totals count ``census_data`` only).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cellcensus.errors import CellCensusError, NotFoundError
from cellcensus.release._open import open_root
from cellcensus.release._transfer import DEFAULT_JOBS, run_parallel
from cellcensus.release.directory import read_directory, read_manifest
from cellcensus.report._model import Totals, read_totals
from cellcensus.report._release import BUILD_JSON, REPORT_JSON

if TYPE_CHECKING:
    from pathlib import Path

    from cellcensus._formats.directory import ReleaseEntry
    from cellcensus.release._root import ReleaseRoot
    from cellcensus.settings import Settings

__all__ = ["HEAD_BYTES", "ReleaseRow", "list_releases"]

logger = logging.getLogger(__name__)

#: Bytes read from the start of each ``report.json``: ``totals`` is in the first few hundred.
HEAD_BYTES = 16 * 1024


@dataclass(frozen=True, kw_only=True)
class ReleaseRow:
    """One build in a listing."""

    tag: str
    release_date: str | None
    lts: bool
    retracted: bool
    pinned: bool
    aliases: tuple[str, ...]
    cells: int | None
    unique_cells: int | None
    spatial_cells: int | None
    datasets: int | None
    store_bytes: int | None
    soma_uri: str

    @property
    def kind(self) -> str:
        """``LTS`` or ``weekly``."""
        return "LTS" if self.lts else "weekly"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "tag": self.tag,
            "release_date": self.release_date,
            "kind": self.kind,
            "lts": self.lts,
            "retracted": self.retracted,
            "pinned": self.pinned,
            "aliases": list(self.aliases),
            "cells": self.cells,
            "unique_cells": self.unique_cells,
            "spatial_cells": self.spatial_cells,
            "datasets": self.datasets,
            "store_bytes": self.store_bytes,
            "soma_uri": self.soma_uri,
        }


def _head(root: ReleaseRoot, key: str, n: int) -> bytes | None:
    try:
        with root.open_read(key) as f:
            return f.read(n)
    except NotFoundError:
        return None


def _dict(v: object) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _legacy_totals(root: ReleaseRoot, tag: str) -> Totals | None:
    """Cells from ``build.json`` and size from ``manifest.json`` (builds without a report)."""
    got = root.read_versioned(f"{tag}/{BUILD_JSON}")
    if got is None:
        return None
    try:
        doc = json.loads(got[0])
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    summary = doc.get("summary") if isinstance(doc, dict) else None
    if not isinstance(summary, dict) or not isinstance(summary.get("total_cell_count"), int):
        return None
    try:
        m = read_manifest(root, tag)
        size: int | None = sum(o.size for o in m.objects if o.path.startswith(("soma/", "h5ads/")))
    except NotFoundError:
        size = None
    unique = summary.get("unique_cell_count")
    datasets = summary.get("datasets_included")
    data = _dict(summary.get("organisms"))
    # census_spatial_sequencing per organism; builders before spatial support wrote none
    spatial = _dict(summary.get("spatial"))
    spatial_cells = sum(
        int(v["cells"])
        for v in spatial.values()
        if isinstance(v, dict) and isinstance(v.get("cells"), int)
    )
    organisms = set(data) | set(spatial)
    return Totals(
        tag=tag,
        cells=int(summary["total_cell_count"]),
        unique_cells=unique if isinstance(unique, int) else None,
        spatial_cells=spatial_cells,
        datasets=datasets if isinstance(datasets, int) else 0,
        organisms=len(organisms),
        nnz=None,
        store_bytes=size,
    )


def _totals(root: ReleaseRoot, tag: str) -> Totals | None:
    try:
        head = _head(root, f"{tag}/{REPORT_JSON}", HEAD_BYTES)
        if head is not None:
            totals = read_totals(head, where=root.object_uri(f"{tag}/{REPORT_JSON}"))
            if totals is not None and totals.spatial_cells is None:
                # a version-1 report counts census_data only: build.json has the totals of
                # builds with spatial datasets
                legacy = _legacy_totals(root, tag)
                if legacy is not None and legacy.spatial_cells:
                    return legacy
            if totals is not None:
                return totals
            logger.debug("%s: totals not in the first %d bytes", tag, HEAD_BYTES)
        return _legacy_totals(root, tag)
    except CellCensusError as e:
        logger.warning("cannot read the numbers of %s: %s", tag, e)
        return None


def list_releases(
    root: str | Path | ReleaseRoot,
    *,
    settings: Settings | None = None,
    jobs: int = DEFAULT_JOBS,
) -> list[ReleaseRow]:
    """Every build of a release root, newest first, with flags, aliases, cells and size.

    Parameters
    ----------
    root
        Release root.
    settings
        Storage settings for S3 roots.
    jobs
        Parallel reads.

    Returns
    -------
    list[ReleaseRow]
        One row per build; cells and size are ``None`` when the build has neither a
        ``report.json`` nor a readable ``build.json``.
    """
    r = open_root(root, settings)
    d = read_directory(r)
    entries: list[ReleaseEntry] = d.ordered_builds()
    totals = run_parallel(lambda e: _totals(r, e.tag), entries, jobs=jobs)
    return [
        ReleaseRow(
            tag=e.tag,
            release_date=e.release_date,
            lts=e.lts,
            retracted=e.retracted,
            pinned=e.do_not_delete,
            aliases=tuple(d.aliases_of(e.tag)),
            cells=t.cells if t else None,
            unique_cells=t.unique_cells if t else None,
            spatial_cells=t.spatial_cells if t else None,
            datasets=t.datasets if t else None,
            store_bytes=t.store_bytes if t else None,
            soma_uri=e.soma.uri,
        )
        for e, t in zip(entries, totals, strict=True)
    ]
