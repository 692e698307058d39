"""Former home of the ``release.json`` / ``mirrors.json`` models: now
:mod:`cellcensus._formats.directory` (re-exported here for modules not yet moved over)."""

from __future__ import annotations

from cellcensus._formats.directory import (
    AUTO_ALIASES,
    Locator,
    Mirror,
    MirrorDirectory,
    ReleaseDirectory,
    ReleaseEntry,
    Retraction,
)

__all__ = [
    "AUTO_ALIASES",
    "Locator",
    "Mirror",
    "MirrorDirectory",
    "ReleaseDirectory",
    "ReleaseEntry",
    "Retraction",
]
