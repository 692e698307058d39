"""Staging of source H5ADs into the build's ``h5ads/`` (byte-identical copies, with sha256).

Local sources are copied, ``s3://`` sources downloaded, both through the resumable, verified
download of :mod:`cellcensus._storage` (``<dataset_id>.h5ad.part``, continued by ranged GETs
that name the object's ETag, checked against the object's size and its MD5 where the ETag is
one).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cellcensus._storage import (
    PART_SUFFIX,
    TRANSFER,
    DownloadMismatchError,
    download,
    stat,
)
from cellcensus.builder._state import atomic_write_bytes
from cellcensus.errors import BadInputError, CellCensusError, IntegrityError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from cellcensus.builder.manifest import ManifestEntry
    from cellcensus.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StagedSource:
    """A staged copy: where it is, its size and sha256."""

    dataset_id: str
    path: Path
    size: int
    sha256: str


def _settings(settings: Settings | None) -> Settings:
    if settings is None:
        from cellcensus.settings import Settings

        settings = Settings.resolve()
    return settings


def _md5_etag(identity: dict[str, Any]) -> str | None:
    """The object's MD5 when its ETag is one (single-part uploads), else ``None``."""
    etag = str(identity.get("etag") or "").strip('"')
    return etag if etag and "-" not in etag and len(etag) == 32 else None


def _drop_stale_part(dest: Path, identity: dict[str, Any]) -> None:
    """Keep a partial download only if it is of this very version of the source."""
    part = dest.with_name(dest.name + PART_SUFFIX)
    part_identity = dest.with_name(dest.name + PART_SUFFIX + ".json")
    if part.exists():
        recorded = json.loads(part_identity.read_text()) if part_identity.exists() else None
        # a partial download of an earlier version of the object is dropped; one without a
        # record is kept only when the object's ETag is its MD5, which verifies the result
        if recorded != identity and (recorded is not None or _md5_etag(identity) is None):
            part.unlink()
    atomic_write_bytes(part_identity, json.dumps(identity).encode())


def _stage(
    entry: ManifestEntry,
    dest: Path,
    progress: Callable[[int], None] | None,
    settings: Settings | None,
    identity: dict[str, Any],
) -> str:
    """Download or copy the source to ``dest``; returns its sha256."""
    if entry.is_s3:
        _drop_stale_part(dest, identity)
    try:
        done = download(
            entry.uri if entry.is_s3 else str(entry.local_path()),
            dest,
            settings=_settings(settings) if entry.is_s3 else None,
            role=TRANSFER,
            size=int(identity["size"]),
            resume=entry.is_s3,
            if_match=identity.get("etag") if entry.is_s3 else None,
            md5=_md5_etag(identity) if entry.is_s3 else None,
            progress=progress,
        )
    except DownloadMismatchError as e:
        msg = f"dataset {entry.dataset_id!r}: {e}"
        raise IntegrityError(msg) from e
    except CellCensusError as e:
        verb = "download" if entry.is_s3 else "copy"
        msg = f"cannot {verb} {entry.uri}: {e}"
        raise BadInputError(msg, dataset_id=entry.dataset_id, field="uri") from e
    dest.with_name(dest.name + PART_SUFFIX + ".json").unlink(missing_ok=True)
    return done.sha256


def source_identity(entry: ManifestEntry, settings: Settings | None = None) -> dict[str, Any]:
    """What identifies the current content of a source: size and mtime, or size and ETag (S3).

    A resumed build compares it with the identity recorded when the source was staged, and stages
    (and scans) the dataset again when the source was replaced since.
    """
    if entry.is_s3:
        try:
            st = stat(entry.uri, _settings(settings), role=TRANSFER)
        except CellCensusError as e:
            msg = f"cannot read {entry.uri}: {e}"
            raise BadInputError(msg, dataset_id=entry.dataset_id, field="uri") from e
        return {"uri": entry.uri, "size": st.size, "etag": st.etag}
    src = entry.local_path()
    try:
        st = stat(str(src))
    except CellCensusError as e:
        msg = f"source {src} does not exist or is not readable"
        raise BadInputError(msg, dataset_id=entry.dataset_id, field="uri") from e
    return {"uri": entry.uri, "size": st.size, "mtime_ns": st.mtime_ns}


def _record_path(h5ads_dir: Path, dataset_id: str) -> Path:
    return h5ads_dir.parent / "_work" / "staged" / f"{dataset_id}.json"


def stage_source(
    entry: ManifestEntry,
    h5ads_dir: Path,
    *,
    settings: Settings | None = None,
    progress: Callable[[int], None] | None = None,
) -> StagedSource:
    """Copy or download one source into ``h5ads_dir/<dataset_id>.h5ad`` and hash it.

    A copy staged by an interrupted run is reused only when the source still has the identity
    (size and mtime, or ETag) recorded when it was staged; otherwise it is staged again.
    """
    dest = h5ads_dir / f"{entry.dataset_id}.h5ad"
    if dest.resolve().parent != h5ads_dir.resolve():
        msg = "dataset id escapes the h5ads directory"
        raise BadInputError(msg, dataset_id=entry.dataset_id)
    identity = source_identity(entry, settings)
    record = _record_path(h5ads_dir, entry.dataset_id)
    if dest.exists() and record.exists():
        doc = json.loads(record.read_text())
        if doc.get("identity") == identity and doc.get("size") == dest.stat().st_size:
            if progress:
                progress(dest.stat().st_size)
            return StagedSource(entry.dataset_id, dest, int(doc["size"]), str(doc["sha256"]))
        logger.info("source of %s changed since it was staged: staging it again", entry.dataset_id)
    dest.unlink(missing_ok=True)
    record.unlink(missing_ok=True)
    sha256 = _stage(entry, dest, progress, settings, identity)
    if source_identity(entry, settings) != identity:
        dest.unlink()
        msg = f"source {entry.uri} changed while it was being copied; run the build again"
        raise IntegrityError(msg)
    size = dest.stat().st_size
    if entry.asset_h5ad_filesize >= 0 and size != entry.asset_h5ad_filesize:
        dest.unlink()
        msg = (
            f"dataset {entry.dataset_id!r}: staged {size} bytes from {entry.uri}, but the "
            f"manifest's asset_h5ad_filesize says {entry.asset_h5ad_filesize}"
        )
        raise IntegrityError(msg)
    staged = StagedSource(entry.dataset_id, dest, size, sha256)
    doc = {"identity": identity, "size": size, "sha256": staged.sha256}
    atomic_write_bytes(record, json.dumps(doc).encode())
    return staged


def source_size(entry: ManifestEntry) -> int | None:
    """Size of a local source in bytes (None for remote ones, or when it cannot be read)."""
    if entry.is_s3:
        return None
    try:
        return entry.local_path().stat().st_size
    except OSError:
        return None


def remove_tree(path: Path) -> None:
    """Remove a directory tree if it exists."""
    if path.exists():
        shutil.rmtree(path)
