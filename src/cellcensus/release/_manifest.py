"""Typed models of the cellcensus files of a build: ``manifest.json`` and ``build.json``.

Both carry ``format_version``; an unknown version fails with a clear message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from cellcensus.errors import BadInputError, IntegrityError
from cellcensus.release._models import _loads
from cellcensus.release._validate import validate_relative_path

__all__ = [
    "BUILD_FORMAT_VERSIONS",
    "MANIFEST_FORMAT_VERSION",
    "BuildInfo",
    "Manifest",
    "ManifestObject",
]

MANIFEST_FORMAT_VERSION = 1
BUILD_FORMAT_VERSIONS = frozenset({1})


class ManifestObjectDict(TypedDict):
    """One object of a build in ``manifest.json``."""

    path: str
    size: int
    sha256: str


class ManifestDict(TypedDict):
    """``manifest.json``."""

    format_version: int
    tag: str
    created_at: str
    total_size: int
    objects: list[ManifestObjectDict]


# ---------------------------------------------------------------------------- manifest.json
@dataclass(frozen=True, kw_only=True, order=True)
class ManifestObject:
    """One object of a build: path relative to ``<tag>/``, size in bytes, sha256 hex digest."""

    path: str
    size: int
    sha256: str

    def to_dict(self) -> ManifestObjectDict:
        """JSON form."""
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """``manifest.json``: every object of one build, with its size and sha256."""

    tag: str
    objects: tuple[ManifestObject, ...]
    created_at: str = ""
    format_version: int = MANIFEST_FORMAT_VERSION

    @property
    def total_size(self) -> int:
        """Sum of object sizes, in bytes."""
        return sum(o.size for o in self.objects)

    def by_path(self) -> dict[str, ManifestObject]:
        """Objects keyed by path."""
        return {o.path: o for o in self.objects}

    def same_objects(self, other: Manifest) -> bool:
        """Whether both manifests list exactly the same objects (ignores tag and time)."""
        return sorted(self.objects) == sorted(other.objects)

    def to_dict(self) -> ManifestDict:
        """JSON form."""
        return {
            "format_version": self.format_version,
            "tag": self.tag,
            "created_at": self.created_at,
            "total_size": self.total_size,
            "objects": [o.to_dict() for o in sorted(self.objects)],
        }

    def to_json(self) -> bytes:
        """Serialised ``manifest.json``."""
        return (json.dumps(self.to_dict(), indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, *, where: str = "manifest.json") -> Manifest:
        """Parse and check a manifest (format version, paths, sizes, digests).

        Raises
        ------
        IntegrityError
            On an unknown ``format_version`` or a malformed entry.
        BadInputError
            On an unsafe object path.
        """
        d = _loads(data, where)
        if not isinstance(d, Mapping):
            msg = f"{where}: the top level must be an object"
            raise IntegrityError(msg)
        version = d.get("format_version")
        if version != MANIFEST_FORMAT_VERSION:
            msg = (
                f"{where} has format_version {version!r}; this cellcensus reads version "
                f"{MANIFEST_FORMAT_VERSION} only: upgrade cellcensus to read this release"
            )
            raise IntegrityError(msg)
        raw = d.get("objects")
        if not isinstance(raw, list):
            msg = f"{where}: 'objects' must be a list"
            raise IntegrityError(msg)
        objects = []
        seen: set[str] = set()
        for i, o in enumerate(raw):
            if not isinstance(o, Mapping):
                msg = f"{where}: objects[{i}] is not an object"
                raise IntegrityError(msg)
            path, size, sha = o.get("path"), o.get("size"), o.get("sha256")
            if not isinstance(size, int) or size < 0 or not isinstance(sha, str) or len(sha) != 64:
                msg = f"{where}: objects[{i}] needs path, size >= 0 and a sha256"
                raise IntegrityError(msg)
            validate_relative_path(str(path), where=where)
            if path in seen:
                msg = f"{where}: object path {path!r} is listed twice"
                raise IntegrityError(msg)
            seen.add(str(path))
            objects.append(ManifestObject(path=str(path), size=size, sha256=sha.lower()))
        return cls(
            tag=str(d.get("tag") or ""),
            created_at=str(d.get("created_at") or ""),
            objects=tuple(sorted(objects)),
        )


# ---------------------------------------------------------------------------- build.json
@dataclass(frozen=True, kw_only=True)
class BuildInfo:
    """``build.json``, written by the builder: opaque provenance, except ``format_version``."""

    format_version: int
    data: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: bytes, *, where: str = "build.json") -> BuildInfo:
        """Parse and check the format version.

        Raises
        ------
        BadInputError
            When the file is not a JSON object or its ``format_version`` is unknown.
        """
        try:
            d = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            msg = f"{where} is not valid JSON ({e}); rebuild the census"
            raise BadInputError(msg) from e
        if not isinstance(d, dict):
            msg = f"{where} must hold a JSON object"
            raise BadInputError(msg)
        version = d.get("format_version")
        if version not in BUILD_FORMAT_VERSIONS:
            msg = (
                f"{where} has format_version {version!r}; this cellcensus knows versions "
                f"{sorted(BUILD_FORMAT_VERSIONS)}: rebuild with a matching cellcensus or upgrade"
            )
            raise BadInputError(
                msg,
                field="format_version",
            )
        return cls(format_version=int(version), data=d)
