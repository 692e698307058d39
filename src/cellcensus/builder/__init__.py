"""The census builder: manifest of H5ADs → Census-schema SOMA collection + copied H5ADs."""

from __future__ import annotations

from cellcensus._extras import require_extra

require_extra("build", "the census builder (cellcensus.builder)")

from cellcensus.builder._build import BuildOptions, BuildResult, build_census  # noqa: E402
from cellcensus.builder.manifest import ManifestEntry, load_manifest  # noqa: E402
from cellcensus.builder.validate import ValidationReport, validate_build  # noqa: E402

__all__ = [
    "BuildOptions",
    "BuildResult",
    "ManifestEntry",
    "ValidationReport",
    "build_census",
    "load_manifest",
    "validate_build",
]
