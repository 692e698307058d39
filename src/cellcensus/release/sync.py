"""Download a published build to a local directory: parallel, resumable, verified.

Each object is downloaded to ``<name>.cellcensus-part``, its sha256 checked against
``manifest.json``, and only then renamed into place; a file already in place with the right size
and sha256 is not downloaded again. Killing a sync therefore loses at most the objects in flight,
and a re-run completes it. An object whose checksum is wrong is never put in place: the sync
finishes the others and raises :class:`~cellcensus.errors.IntegrityError` naming it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cellcensus.errors import BadInputError, IntegrityError
from cellcensus.release._open import open_root
from cellcensus.release._root import MULTIPART_CHUNKSIZE, ReleaseRoot
from cellcensus.release._transfer import (
    DEFAULT_JOBS,
    DOWNLOAD_HOOK,
    KillSwitch,
    Stage,
    hash_file,
    run_parallel,
)
from cellcensus.release._validate import validate_relative_path
from cellcensus.release.directory import read_directory, read_manifest
from cellcensus.release.publish import BUILD_JSON
from cellcensus.release.verify import MANIFEST_KEY

if TYPE_CHECKING:
    from cellcensus._progress import Progress
    from cellcensus.release._manifest import ManifestObject
    from cellcensus.settings import Settings

__all__ = ["PART_SUFFIX", "SyncResult", "sync"]

logger = logging.getLogger(__name__)

PART_SUFFIX = ".cellcensus-part"
_STREAM_BLOCK = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class SyncResult:
    """What a sync did."""

    tag: str
    dest: Path
    total_objects: int
    total_bytes: int
    downloaded: int
    skipped: int
    bytes_downloaded: int
    seconds: float


def _is_complete(path: Path, obj: ManifestObject) -> bool:
    try:
        if path.stat().st_size != obj.size:
            return False
    except FileNotFoundError:
        return False
    return hash_file(path, chunksize=MULTIPART_CHUNKSIZE).sha256 == obj.sha256


def sync(
    root: str | Path | ReleaseRoot,
    name: str,
    dest: str | Path,
    *,
    only: Literal["soma", "h5ads"] | None = None,
    settings: Settings | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress | None = None,
) -> SyncResult:
    """Copy a published build (``soma/``, ``h5ads/``, ``build.json``) to ``dest``.

    Parameters
    ----------
    root
        Release root.
    name
        Build tag or alias (``latest``, ``stable``...), resolved through ``release.json``.
    dest
        Local destination directory; receives ``soma/``, ``h5ads/``, ``build.json`` and
        ``manifest.json`` (``cellxgene_census.open_soma(uri=dest/"soma")`` opens the copy).
    only
        Copy only ``soma`` or only ``h5ads`` (``build.json`` and ``manifest.json`` always).
    settings
        Storage settings for S3 roots.
    jobs
        Parallel downloads.
    progress
        Progress reporting.

    Returns
    -------
    SyncResult
        Counts and sizes.

    Raises
    ------
    NotFoundError
        When ``name`` is not published.
    IntegrityError
        When downloaded objects do not match the manifest (they are not kept).
    """
    t0 = time.monotonic()
    if only not in (None, "soma", "h5ads"):
        msg = f"--only must be 'soma' or 'h5ads', got {only!r}"
        raise BadInputError(msg, field="only")
    r = open_root(root, settings)
    tag = read_directory(r).resolve(name)
    manifest = read_manifest(r, tag)
    out = Path(dest).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    selected = [
        o
        for o in manifest.objects
        if only is None or o.path == BUILD_JSON or o.path.startswith(f"{only}/")
    ]
    for o in selected:
        validate_relative_path(o.path, where=r.object_uri(f"{tag}/{MANIFEST_KEY}"))

    _remove_parts(out)
    todo = [o for o in selected if not _is_complete(out / o.path, o)]
    skipped = len(selected) - len(todo)
    total = sum(o.size for o in todo)
    logger.info(
        "syncing %s (%s) to %s: %d of %d objects to download, %d complete",
        r.object_uri(f"{tag}/"),
        name,
        out,
        len(todo),
        len(selected),
        skipped,
    )
    kill = KillSwitch(DOWNLOAD_HOOK)
    bad: list[str] = []

    def fetch(o: ManifestObject, stage: Stage) -> None:
        final = out / o.path
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + PART_SUFFIX)
        if o.size <= MULTIPART_CHUNKSIZE:
            # small objects (most of a SOMA tree): one GET, hashed while written
            got_size, got_sha256 = _stream_to(r, f"{tag}/{o.path}", part, stage)
        else:
            r.download_file(f"{tag}/{o.path}", part, callback=stage.advance)
            digest = hash_file(part, chunksize=MULTIPART_CHUNKSIZE)
            got_size, got_sha256 = digest.size, digest.sha256
        if got_size != o.size or got_sha256 != o.sha256:
            part.unlink(missing_ok=True)
            bad.append(
                f"{o.path} (sha256 {got_sha256[:12]}…, {got_size} B; manifest: "
                f"{o.sha256[:12]}…, {o.size} B)"
            )
            return
        part.replace(final)

    with Stage(progress, "downloading", total) as stage:
        run_parallel(lambda o: fetch(o, stage), todo, jobs=jobs, on_done=lambda _o, _r: kill.tick())
    if bad:
        msg = (
            f"{len(bad)} objects of {r.object_uri(f'{tag}/')} do not match manifest.json and were "
            f"not kept: {'; '.join(sorted(bad)[:10])}. The release is corrupt at the source: run "
            "`cellcensus verify` on it and republish or restore those objects"
        )
        raise IntegrityError(msg)
    (out / MANIFEST_KEY).write_bytes(manifest.to_json())
    _warn_extras(out, only, {o.path for o in selected})
    seconds = time.monotonic() - t0
    logger.info("synced %s to %s in %.1f s", tag, out, seconds)
    return SyncResult(
        tag=tag,
        dest=out,
        total_objects=len(selected),
        total_bytes=sum(o.size for o in selected),
        downloaded=len(todo),
        skipped=skipped,
        bytes_downloaded=total,
        seconds=seconds,
    )


def _stream_to(r: ReleaseRoot, key: str, part: Path, stage: Stage) -> tuple[int, str]:
    """Copy one object into ``part`` in a single pass, hashing as it is written."""
    h = hashlib.sha256()
    size = 0
    with r.open_read(key) as body, part.open("wb") as fh:
        while chunk := body.read(_STREAM_BLOCK):
            fh.write(chunk)
            h.update(chunk)
            size += len(chunk)
            stage.advance(len(chunk))
    return size, h.hexdigest()


def _remove_parts(out: Path) -> None:
    """Delete partial downloads left by a killed sync (ours and boto3's temporary names)."""
    for part in ("soma", "h5ads"):
        for dirpath, _dirs, names in os.walk(out / part):
            for n in names:
                if PART_SUFFIX in n:
                    (Path(dirpath) / n).unlink(missing_ok=True)


def _warn_extras(out: Path, only: str | None, expected: set[str]) -> None:
    extras: list[str] = []
    for part in ("soma", "h5ads"):
        if only is not None and part != only:
            continue
        base = out / part
        if not base.is_dir():
            continue
        for dirpath, _dirs, names in os.walk(base):
            for n in names:
                rel = (Path(dirpath) / n).relative_to(out).as_posix()
                if rel not in expected:
                    extras.append(rel)
    if extras:
        logger.warning(
            "%d files in %s are not part of this build (e.g. %s); remove them, or sync into an "
            "empty directory: extra files in soma/ can confuse TileDB",
            len(extras),
            out,
            extras[0],
        )
