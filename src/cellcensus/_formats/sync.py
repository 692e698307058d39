"""``DEST/.cellcensus-sync.json``: which build a sync destination holds and whether it is complete.

Written and read by :func:`cellcensus.release.sync`. Version 1 is the only version so far.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from cellcensus._formats._json import check_version, load_object, malformed

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FORMAT_VERSION", "SYNC_MARKER_VERSION", "SyncState", "SyncStateDict"]

FORMAT_VERSION = 1
SYNC_MARKER_VERSION = FORMAT_VERSION
_ADVICE = (
    "the destination's state is unknown: delete the marker and sync into an empty directory "
    "(or pass --delete)"
)


class SyncStateDict(TypedDict):
    """``.cellcensus-sync.json``."""

    format_version: int
    source: str
    tag: str
    manifest_sha256: str
    parts: list[str]
    owned: list[str]
    complete: bool


def _safe_top_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in ("", ".", "..")


@dataclass(frozen=True, kw_only=True)
class SyncState:
    """The content of ``DEST/.cellcensus-sync.json``.

    Parameters
    ----------
    source
        URI of the build that was synced (``<root>/<tag>/``).
    tag
        Its tag.
    manifest_sha256
        sha256 of its ``manifest.json``: identifies the build's exact content.
    parts
        Top-level directories of the build verified complete in ``DEST`` (``soma``, ``h5ads``).
    owned
        Top-level names in ``DEST`` that sync manages (removed or replaced by the next sync).
    complete
        Whether the destination holds exactly that build (``parts`` of it).
    """

    source: str
    tag: str
    manifest_sha256: str
    parts: frozenset[str]
    owned: frozenset[str]
    complete: bool

    def to_dict(self) -> SyncStateDict:
        """JSON form."""
        return {
            "format_version": FORMAT_VERSION,
            "source": self.source,
            "tag": self.tag,
            "manifest_sha256": self.manifest_sha256,
            "parts": sorted(self.parts),
            "owned": sorted(self.owned),
            "complete": self.complete,
        }

    def to_json(self) -> bytes:
        """Serialised marker."""
        return (json.dumps(self.to_dict(), indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes | str, *, where: str) -> SyncState:
        """Parse; a malformed marker is an error (the destination's state is then unknown).

        Raises
        ------
        UnsupportedFormatError
            For a marker of an unknown ``format_version``.
        BadInputError
            For malformed content.
        """
        d = load_object(data, where=where, advice=_ADVICE)
        reader = check_version(d, where=where, readers={1: cls._from_v1}, advice=_ADVICE)
        return reader(d, where=where)

    @classmethod
    def _from_v1(cls, d: Mapping[str, Any], *, where: str) -> SyncState:
        ok = all(isinstance(d.get(k), str) for k in ("source", "tag", "manifest_sha256")) and all(
            isinstance(d.get(k), list) and all(isinstance(x, str) for x in d[k])
            for k in ("parts", "owned")
        )
        if not ok or not isinstance(d.get("complete"), bool):
            what = "not a sync marker this cellcensus understands"
            raise malformed(where, what, _ADVICE)
        owned = frozenset(n for n in d["owned"] if _safe_top_name(n))
        return cls(
            source=d["source"],
            tag=d["tag"],
            manifest_sha256=d["manifest_sha256"],
            parts=frozenset(d["parts"]) & owned,
            owned=owned,
            complete=d["complete"],
        )
