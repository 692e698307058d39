"""Staging of source H5ADs into the build's ``h5ads/`` (byte-identical copies, with sha256).

Local sources are copied; ``s3://`` sources are downloaded with resume (a ``.part`` file
continued by
ranged GETs) and verified against the object's size (and MD5 where the ETag is one).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from cellcensus.builder._state import atomic_write_bytes
from cellcensus.errors import BadInputError, IntegrityError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from cellcensus.builder.manifest import ManifestEntry
    from cellcensus.settings import Settings

logger = logging.getLogger(__name__)

_BLOCK = 8 * 1024 * 1024


@dataclass(frozen=True)
class StagedSource:
    """A staged copy: where it is, its size and sha256."""

    dataset_id: str
    path: Path
    size: int
    sha256: str


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def _copy_local(entry: ManifestEntry, dest: Path, progress: Callable[[int], None] | None) -> None:
    src = entry.local_path()
    if not src.is_file():
        msg = f"source {src} does not exist or is not a file"
        raise BadInputError(
            msg,
            dataset_id=entry.dataset_id,
            field="uri",
        )
    part = dest.with_suffix(".part")
    try:
        with src.open("rb") as fin, part.open("wb") as fout:
            while block := fin.read(_BLOCK):
                fout.write(block)
                if progress:
                    progress(len(block))
    except PermissionError as e:
        part.unlink(missing_ok=True)
        msg = f"source {src} is not readable"
        raise BadInputError(msg, dataset_id=entry.dataset_id) from e
    part.replace(dest)


def _s3_client(settings: Settings | None) -> Any:  # noqa: ANN401 - boto3 clients are untyped
    if settings is None:
        from cellcensus.settings import Settings

        settings = Settings.resolve()
    return settings.boto3_client()


def _download_s3(
    entry: ManifestEntry,
    dest: Path,
    progress: Callable[[int], None] | None,
    settings: Settings | None,
    identity: dict[str, Any],
) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    parsed = urlparse(entry.uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    client = _s3_client(settings)
    part = dest.with_suffix(".part")
    part_identity = dest.with_suffix(".part.json")
    etag = str(identity.get("etag") or "").strip('"')
    md5_checkable = bool(etag) and "-" not in etag and len(etag) == 32
    if part.exists():
        recorded = json.loads(part_identity.read_text()) if part_identity.exists() else None
        # a partial download of an earlier version of the object is dropped; one without a
        # record is kept only when the object's ETag is its MD5, which verifies the result
        if recorded != identity and (recorded is not None or not md5_checkable):
            part.unlink()
    atomic_write_bytes(part_identity, json.dumps(identity).encode())
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        size = int(head["ContentLength"])
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            part.unlink()
            have = 0
        if progress and have:
            progress(have)
        if have < size:
            extra = {"IfMatch": head["ETag"]} if head.get("ETag") else {}
            resp = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={have}-", **extra)
            with part.open("ab") as fh:
                for block in resp["Body"].iter_chunks(_BLOCK):
                    fh.write(block)
                    if progress:
                        progress(len(block))
    except (ClientError, BotoCoreError) as e:
        msg = f"cannot download {entry.uri}: {e}"
        raise BadInputError(msg, dataset_id=entry.dataset_id, field="uri") from e
    got = part.stat().st_size
    if got != size:
        msg = (
            f"dataset {entry.dataset_id!r}: downloaded {got} bytes of {entry.uri}, "
            f"expected {size}; "
            "re-run to resume"
        )
        raise IntegrityError(msg)
    etag = str(head.get("ETag", "")).strip('"')
    if etag and "-" not in etag and len(etag) == 32:
        md5 = hashlib.md5(usedforsecurity=False)
        with part.open("rb") as fh:
            while block := fh.read(_BLOCK):
                md5.update(block)
        if md5.hexdigest() != etag:
            part.unlink()
            msg = (
                f"dataset {entry.dataset_id!r}: MD5 of the download of {entry.uri} does not match "
                "its ETag; the partial file was removed, re-run to download again"
            )
            raise IntegrityError(msg)
    part.replace(dest)
    part_identity.unlink(missing_ok=True)


def source_identity(entry: ManifestEntry, settings: Settings | None = None) -> dict[str, Any]:
    """What identifies the current content of a source: size and mtime, or size and ETag (S3).

    A resumed build compares it with the identity recorded when the source was staged, and stages
    (and scans) the dataset again when the source was replaced since.
    """
    if entry.is_s3:
        from botocore.exceptions import BotoCoreError, ClientError

        parsed = urlparse(entry.uri)
        try:
            head = _s3_client(settings).head_object(
                Bucket=parsed.netloc, Key=parsed.path.lstrip("/")
            )
        except (ClientError, BotoCoreError) as e:
            msg = f"cannot read {entry.uri}: {e}"
            raise BadInputError(msg, dataset_id=entry.dataset_id, field="uri") from e
        return {"uri": entry.uri, "size": int(head["ContentLength"]), "etag": head.get("ETag")}
    src = entry.local_path()
    try:
        st = src.stat()
    except OSError as e:
        msg = f"source {src} does not exist or is not readable"
        raise BadInputError(msg, dataset_id=entry.dataset_id, field="uri") from e
    return {"uri": entry.uri, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


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
    if entry.is_s3:
        _download_s3(entry, dest, progress, settings, identity)
    else:
        _copy_local(entry, dest, progress)
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
    staged = StagedSource(entry.dataset_id, dest, size, sha256_file(dest))
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
