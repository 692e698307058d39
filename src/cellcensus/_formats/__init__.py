"""One home per file format cellcensus writes: a typed model, its JSON shape and its version.

==============================  ======================  ======================================
File                            Model                   ``format_version``
==============================  ======================  ======================================
``<tag>/build.json``            :class:`BuildInfo`      1 (:mod:`~cellcensus._formats.build`)
``<tag>/manifest.json``         :class:`Manifest`       1 (:mod:`~cellcensus._formats.manifest`)
``<stem>.export.json``          :class:`ExportInfo`     1 (:mod:`~cellcensus._formats.export`)
``_work/state.json``            :class:`ResumeState`    2 (:mod:`~cellcensus._formats.state`)
``_work/plan.json``             :class:`PlanMarker`     versioned by ``state.json``
``DEST/.cellcensus-sync.json``  :class:`SyncState`      1 (:mod:`~cellcensus._formats.sync`)
``release.json``                ``ReleaseDirectory``    none: the official client's format
``mirrors.json``                ``MirrorDirectory``     none: the official client's format
==============================  ======================  ======================================

Every model is a frozen keyword-only dataclass with ``to_dict``/``to_json`` and a
``from_json`` that dispatches on ``format_version``; a version this cellcensus does not read
raises :class:`~cellcensus.errors.UnsupportedFormatError` (which file, which version, which
are read, what to do), malformed content a :class:`~cellcensus.errors.BadInputError`
(``manifest.json``: :class:`~cellcensus.errors.IntegrityError`, the release is damaged).
Each module has a ``FORMAT_VERSION`` and a TypedDict of the JSON shape.
"""

from __future__ import annotations

from cellcensus._formats.build import BuildInfo, BuildInput
from cellcensus._formats.directory import (
    Locator,
    Mirror,
    MirrorDirectory,
    ReleaseDirectory,
    ReleaseEntry,
    Retraction,
)
from cellcensus._formats.export import ExportInfo
from cellcensus._formats.manifest import Manifest, ManifestObject
from cellcensus._formats.state import PlanMarker, ResumeState
from cellcensus._formats.sync import SyncState

__all__ = [
    "BuildInfo",
    "BuildInput",
    "ExportInfo",
    "Locator",
    "Manifest",
    "ManifestObject",
    "Mirror",
    "MirrorDirectory",
    "PlanMarker",
    "ReleaseDirectory",
    "ReleaseEntry",
    "ResumeState",
    "Retraction",
    "SyncState",
]
