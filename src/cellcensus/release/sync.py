"""Download a published build to a local directory: parallel, resumable, verified, exact.

Each object is downloaded to ``<name>.cellcensus-part``, its sha256 checked against
``manifest.json``, and only then renamed into place; a file already in place with the right size
and sha256 is not downloaded again. Killing a sync therefore loses at most the objects in flight,
and a re-run completes it. An object whose checksum is wrong is never put in place: the sync
finishes the others and raises :class:`~cellcensus.errors.IntegrityError` naming it.

**The destination ends up exactly the release.** ``DEST/.cellcensus-sync.json`` records what a
sync put there. It is rewritten to say "incomplete" (and ``DEST/manifest.json`` is removed)
*before* anything else changes, and rewritten to say "complete" *after* every object is in place,
the files of another build (an earlier sync of another tag) are removed, and ``manifest.json``
is written. So a destination whose marker says complete holds exactly the build it names; a
half-replaced one never looks complete. A destination that holds files sync did not put there
(no marker) is refused unless ``delete=True`` (``--delete``), so a wrong ``DEST`` never loses
someone's files.

**Out of space.** A download that fails (disk full, read-only, lost server) deletes its partial
file; the objects already verified stay, and a re-run resumes with them. No ``.cellcensus-part``
file is left behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cellcensus._formats.sync import SyncState
from cellcensus._fs import mapped_fs_errors
from cellcensus._storage import TRANSFER, DownloadMismatchError, download, sha256_file
from cellcensus.errors import BadInputError, IntegrityError
from cellcensus.release._open import open_root
from cellcensus.release._transfer import (
    DEFAULT_JOBS,
    DOWNLOAD_HOOK,
    KillSwitch,
    Stage,
    run_parallel,
)
from cellcensus.release._validate import validate_relative_path
from cellcensus.release.directory import read_directory, read_manifest
from cellcensus.release.verify import MANIFEST_KEY

if TYPE_CHECKING:
    from cellcensus._formats.manifest import Manifest, ManifestObject
    from cellcensus._progress import Progress
    from cellcensus.release._root import ReleaseRoot
    from cellcensus.settings import Settings

__all__ = ["PART_SUFFIX", "SYNC_MARKER", "SyncResult", "SyncState", "read_sync_state", "sync"]

logger = logging.getLogger(__name__)

PART_SUFFIX = ".cellcensus-part"
#: The file in a sync destination that says which build it holds and whether it is complete.
SYNC_MARKER = ".cellcensus-sync.json"
#: Directories a sync always manages in its destination (plus every top-level name of a build).
_PARTS = ("soma", "h5ads")
_RESERVED = frozenset({MANIFEST_KEY, SYNC_MARKER})
_SHOWN = 5


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
    removed: int = 0


def _safe_top_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in ("", ".", "..")


def read_sync_state(dest: str | Path) -> SyncState | None:
    """The marker of a sync destination, or ``None`` when sync has not written one there.

    Raises
    ------
    BadInputError
        When the marker exists but is malformed.
    """
    path = Path(dest) / SYNC_MARKER
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return SyncState.from_json(data, where=str(path))


def _write_state(out: Path, state: SyncState) -> None:
    tmp = out / (SYNC_MARKER + PART_SUFFIX)
    with tmp.open("wb") as f:
        f.write(state.to_json())
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(out / SYNC_MARKER)


def _is_complete(path: Path, obj: ManifestObject) -> bool:
    try:
        if not path.is_file() or path.stat().st_size != obj.size:
            return False
    except FileNotFoundError:
        return False
    return sha256_file(path) == obj.sha256


def _part(path: str) -> str | None:
    """The top-level directory of an object path (``None`` for a top-level file)."""
    head, sep, _ = path.partition("/")
    return head if sep else None


def _check_paths(manifest: Manifest, where: str) -> None:
    for o in manifest.objects:
        validate_relative_path(o.path, where=where)
        top = o.path.split("/", 1)[0]
        if top in _RESERVED or top.endswith(PART_SUFFIX):
            msg = (
                f"{where} lists {o.path!r}, a name sync reserves for itself; the manifest is "
                "corrupt or malicious"
            )
            raise IntegrityError(msg)


def sync(
    root: str | Path | ReleaseRoot,
    name: str,
    dest: str | Path,
    *,
    only: Literal["soma", "h5ads"] | None = None,
    delete: bool = False,
    settings: Settings | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress | None = None,
) -> SyncResult:
    """Make ``dest`` an exact, verified copy of a published build.

    Parameters
    ----------
    root
        Release root.
    name
        Build tag or alias (``latest``, ``stable``...), resolved through ``release.json``.
    dest
        Local destination directory; receives ``soma/``, ``h5ads/``, ``build.json`` and
        ``manifest.json`` (``cellxgene_census.open_soma(uri=dest/"soma")`` opens the copy), and
        the marker ``.cellcensus-sync.json``. Files of another build that an earlier sync put
        there are removed; other files outside ``soma/`` and ``h5ads/`` are left alone.
    only
        Copy only ``soma`` or only ``h5ads`` (the build's top-level files such as ``build.json``
        and the release report, and ``manifest.json``, always). The
        other part is kept only if an earlier sync verified it for this very build.
    delete
        Remove files under ``dest/soma``, ``dest/h5ads`` (and the build's other top-level
        names) that a sync did not put there. Without it such files make the sync refuse.
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
    BadInputError
        When ``dest`` is a file, or holds files sync did not put there (without ``delete``).
    IntegrityError
        When downloaded objects do not match the manifest (they are not kept).
    PermissionDeniedError, StorageError
        When ``dest`` is read-only or its disk is full (one clear message; re-run to resume).
    """
    t0 = time.monotonic()
    if only not in (None, "soma", "h5ads"):
        msg = f"--only must be 'soma' or 'h5ads', got {only!r}"
        raise BadInputError(msg, field="only")
    r = open_root(root, settings)
    tag = read_directory(r).resolve(name)
    manifest = read_manifest(r, tag)
    manifest_bytes = manifest.to_json()
    source = r.object_uri(f"{tag}/")
    _check_paths(manifest, r.object_uri(f"{tag}/{MANIFEST_KEY}"))
    out = Path(dest).expanduser().resolve()
    if out.exists() and not out.is_dir():
        msg = f"sync destination {out} is a file; give a directory (it is created if missing)"
        raise BadInputError(msg, field="dest")
    resume = "re-run the same sync: it resumes and keeps the objects already verified"
    with mapped_fs_errors(f"syncing {source} to {out}", out, hint=resume):
        out.mkdir(parents=True, exist_ok=True)
        result = _sync_into(r, tag, manifest, manifest_bytes, out, only, delete, jobs, progress)
    seconds = time.monotonic() - t0
    logger.info("synced %s to %s in %.1f s", tag, out, seconds)
    return SyncResult(
        tag=tag,
        dest=out,
        total_objects=result[0],
        total_bytes=result[1],
        downloaded=result[2],
        skipped=result[0] - result[2],
        bytes_downloaded=result[3],
        seconds=seconds,
        removed=result[4],
    )


def _sync_into(  # noqa: PLR0917 - one private step of sync()
    r: ReleaseRoot,
    tag: str,
    manifest: Manifest,
    manifest_bytes: bytes,
    out: Path,
    only: str | None,
    delete: bool,
    jobs: int,
    progress: Progress | None,
) -> tuple[int, int, int, int, int]:
    """The body of :func:`sync`; returns (objects, bytes, downloaded, bytes downloaded, removed)."""
    source = r.object_uri(f"{tag}/")
    msha = hashlib.sha256(manifest_bytes).hexdigest()
    build_parts = {p for o in manifest.objects if (p := _part(o.path)) is not None}
    selected = [o for o in manifest.objects if only is None or _part(o.path) in (None, only)]
    top_names = {o.path.split("/", 1)[0] for o in manifest.objects}

    prev = read_sync_state(out)
    legacy = prev is None and _is_legacy_sync(out)
    kept_parts: frozenset[str] = frozenset()
    if prev is not None and prev.manifest_sha256 == msha:
        kept_parts = prev.parts - ({only} if only else build_parts)
    expected = {o.path for o in selected} | {
        o.path for o in manifest.objects if _part(o.path) in kept_parts
    }
    owned = frozenset(_PARTS) | top_names | (prev.owned if prev is not None else frozenset())
    if prev is None and not legacy and not delete:
        foreign = _unexpected_files(out, owned, expected)
        if foreign:
            shown = ", ".join(foreign[:_SHOWN])
            msg = (
                f"sync destination {out} holds {len(foreign)} files that are not part of "
                f"{source} and were not put there by `cellcensus sync` (e.g. {shown}); sync "
                "into an empty directory, or pass --delete (delete=True) to remove them"
            )
            raise BadInputError(msg, field="dest")

    # From here on the destination is being changed: first make it say so.
    _write_state(
        out,
        SyncState(
            source=source,
            tag=tag,
            manifest_sha256=msha,
            parts=kept_parts,
            owned=owned,
            complete=False,
        ),
    )
    (out / MANIFEST_KEY).unlink(missing_ok=True)
    _remove_parts(out, owned)

    todo = [o for o in selected if not _is_complete(out / o.path, o)]
    total = sum(o.size for o in todo)
    logger.info(
        "syncing %s to %s: %d of %d objects to download, %d complete",
        source,
        out,
        len(todo),
        len(selected),
        len(selected) - len(todo),
    )
    bad = _download(r, tag, todo, out, jobs=jobs, progress=progress)
    if bad:
        msg = (
            f"{len(bad)} objects of {source} do not match manifest.json and were not kept: "
            f"{'; '.join(sorted(bad)[:_SHOWN])}"
            + (f" (and {len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else "")
            + ". The release is corrupt at the source: run `cellcensus verify` on it and "
            "republish or restore those objects"
        )
        raise IntegrityError(msg)
    removed = _remove_unexpected(out, owned, expected)
    if removed:
        logger.info("removed %d files of another build from %s", removed, out)
    (out / MANIFEST_KEY).write_bytes(manifest_bytes)
    done_parts = kept_parts | ({only} if only else build_parts)
    _write_state(
        out,
        SyncState(
            source=source,
            tag=tag,
            manifest_sha256=msha,
            parts=frozenset(done_parts),
            owned=frozenset(_PARTS) | top_names,
            complete=True,
        ),
    )
    return len(selected), sum(o.size for o in selected), len(todo), total, removed


def _download(
    r: ReleaseRoot,
    tag: str,
    todo: list[ManifestObject],
    out: Path,
    *,
    jobs: int,
    progress: Progress | None,
) -> list[str]:
    """Fetch ``todo`` into ``out``; returns descriptions of objects whose content was wrong."""
    kill = KillSwitch(DOWNLOAD_HOOK)
    bad: list[str] = []

    def fetch(o: ManifestObject, stage: Stage) -> None:
        final = out / o.path
        _make_parents(out, final)
        if final.is_dir():  # a directory of another build where this build has a file
            _rmtree(final)
        try:
            download(
                r.location(f"{tag}/{o.path}"),
                final,
                settings=r.settings,
                role=TRANSFER,
                size=o.size,
                sha256=o.sha256,
                resume=False,  # a failed download leaves no partial file
                suffix=PART_SUFFIX,
                progress=stage.advance,
            )
        except DownloadMismatchError as e:
            got = f"sha256 {e.sha256[:12]}…" if e.sha256 else "size"
            bad.append(f"{o.path} ({got}, {e.size} B; manifest: {o.sha256[:12]}…, {o.size} B)")

    with Stage(progress, "downloading", sum(o.size for o in todo)) as stage:
        run_parallel(lambda o: fetch(o, stage), todo, jobs=jobs, on_done=lambda _o, _r: kill.tick())
    return bad


def _is_legacy_sync(out: Path) -> bool:
    """Whether ``out`` was written by a cellcensus sync that predates the marker."""
    from cellcensus._formats.manifest import Manifest

    path = out / MANIFEST_KEY
    try:
        Manifest.from_json(path.read_bytes(), where=str(path))
    except (OSError, BadInputError, IntegrityError):
        return False
    return True


def _walk_files(out: Path, owned: frozenset[str]) -> list[str]:
    """Relative paths of the files under the owned top-level names of ``out``."""
    found: list[str] = []
    for name in sorted(owned):
        base = out / name
        if base.is_file() or base.is_symlink():
            found.append(name)
        elif base.is_dir():
            for dirpath, _dirs, names in os.walk(base):
                found.extend((Path(dirpath) / n).relative_to(out).as_posix() for n in names)
    return found


def _unexpected_files(out: Path, owned: frozenset[str], expected: set[str]) -> list[str]:
    return sorted(
        p for p in _walk_files(out, owned) if p not in expected and not p.endswith(PART_SUFFIX)
    )


def _remove_unexpected(out: Path, owned: frozenset[str], expected: set[str]) -> int:
    """Delete files under the owned names that the build does not have, then empty dirs."""
    n = 0
    for rel in _unexpected_files(out, owned, expected):
        (out / rel).unlink(missing_ok=True)
        n += 1
    for name in owned:
        base = out / name
        if not base.is_dir() or base.is_symlink():
            continue
        for dirpath, _dirs, _names in sorted(os.walk(base), key=lambda t: -len(t[0])):
            d = Path(dirpath)
            if not any(d.iterdir()):
                d.rmdir()
    return n


def _remove_parts(out: Path, owned: frozenset[str]) -> None:
    """Delete partial downloads left by a killed sync (ours and boto3's temporary names)."""
    for rel in _walk_files(out, owned):
        if PART_SUFFIX in rel.rsplit("/", 1)[-1]:
            (out / rel).unlink(missing_ok=True)
    for entry in out.iterdir():
        if PART_SUFFIX in entry.name and entry.is_file():
            entry.unlink(missing_ok=True)


def _make_parents(out: Path, final: Path) -> None:
    """Create the directories above ``final``; a file of another build in the way goes."""
    d = out
    for seg in final.relative_to(out).parts[:-1]:
        d = d / seg
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            d.unlink()
    final.parent.mkdir(parents=True, exist_ok=True)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)
