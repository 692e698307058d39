"""The census builder: manifest of H5ADs → Census-schema SOMA collection + copied H5ADs."""

from __future__ import annotations

from cellcensus.builder._build import BuildOptions, BuildResult, build_census
from cellcensus.builder.manifest import ManifestEntry, load_manifest
from cellcensus.builder.validate import ValidationReport, validate_build

__all__ = [
    "BuildOptions",
    "BuildResult",
    "ManifestEntry",
    "ValidationReport",
    "build_census",
    "load_manifest",
    "validate_build",
]
