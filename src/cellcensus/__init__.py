"""cellcensus: self-hosted CELLxGENE-Census-compatible releases."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from cellcensus.errors import (
    BadInputError,
    CellCensusError,
    ConfigError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
)

try:
    __version__ = version("cellcensus")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "BadInputError",
    "CellCensusError",
    "ConfigError",
    "IntegrityError",
    "NotFoundError",
    "PermissionDeniedError",
    "__version__",
]
