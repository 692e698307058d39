"""Former home of the ``manifest.json`` / ``build.json`` models: now
:mod:`cellcensus._formats.manifest` and :mod:`cellcensus._formats.build` (re-exported here for
modules not yet moved over)."""

from __future__ import annotations

from cellcensus._formats.build import BUILD_FORMAT_VERSIONS, BuildInfo
from cellcensus._formats.manifest import MANIFEST_FORMAT_VERSION, Manifest, ManifestObject

__all__ = [
    "BUILD_FORMAT_VERSIONS",
    "MANIFEST_FORMAT_VERSION",
    "BuildInfo",
    "Manifest",
    "ManifestObject",
]
