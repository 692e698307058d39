"""``<tag>/manifest.json``: every object of a published build, with its size and sha256.

Written by ``publish``; read by ``verify``, ``sync``, ``download_source_h5ad`` and reports.
Version 1 is the only version so far. Malformed content is an
:class:`~cellcensus.errors.IntegrityError` (the release is damaged); an unknown version an
:class:`~cellcensus.errors.UnsupportedFormatError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from cellcensus._formats._json import check_version, load_object
from cellcensus.errors import IntegrityError

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FORMAT_VERSION",
    "Manifest",
    "ManifestDict",
    "ManifestObject",
    "ManifestObjectDict",
]

FORMAT_VERSION = 1
MANIFEST_FORMAT_VERSION = FORMAT_VERSION
_ADVICE = "the release is damaged: publish the build again"


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
    format_version: int = FORMAT_VERSION

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
        UnsupportedFormatError
            On an unknown ``format_version``.
        IntegrityError
            On malformed content.
        BadInputError
            On an unsafe object path.
        """
        d = load_object(data, where=where, advice=_ADVICE, error=IntegrityError)
        reader = check_version(
            d, where=where, readers={1: cls._from_v1}, advice=_ADVICE, error=IntegrityError
        )
        return reader(d, where=where)

    @classmethod
    def _from_v1(cls, d: Mapping[str, Any], *, where: str) -> Manifest:
        from cellcensus.release._validate import validate_relative_path

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
