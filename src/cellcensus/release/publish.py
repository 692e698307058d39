"""Publish a build directory to a release root.

Steps (the commit point is the last one):

1. check the build directory (``soma/`` collection, ``h5ads/``, ``build.json``) and the tag; refuse
   a tag that ``release.json`` already lists (published tags are immutable);
2. write the release report (``report.html``, ``report.json``: the build's numbers and its diff
   against the previous build, see :mod:`cellcensus.report`) beside the build's files;
   hash every file (sha256, and the ETag S3 will compute) and *claim* the tag by creating
   ``<tag>/manifest.json`` with a create-only write. If a manifest is already there (an
   interrupted publish), it must list exactly the same objects, otherwise publishing is refused
   (``discard_partial`` deletes the unpublished leftovers first);
3. upload, in parallel, only objects that are missing or different (size and ETag, or the
   ``sha256`` metadata of earlier uploads); delete leftovers not in the manifest;
4. verify what landed against the manifest (server ETags, else download and sha256);
5. create ``mirrors.json`` with the ``origin`` mirror if missing;
6. add the entry to ``release.json`` by compare-and-swap, recomputing ``latest``/``stable``.

A publish killed at any point before step 6 leaves ``release.json`` unchanged; re-running it
uploads only what is missing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cellcensus._formats.build import BuildInfo
from cellcensus._formats.directory import Locator, ReleaseDirectory, ReleaseEntry
from cellcensus._formats.manifest import Manifest, ManifestObject
from cellcensus._fs import mapped_fs_errors
from cellcensus._storage.hashing import FileDigest, hash_file
from cellcensus.errors import (
    BadInputError,
    CellCensusError,
    IntegrityError,
    PermissionDeniedError,
)
from cellcensus.release._local import LocalRoot
from cellcensus.release._open import open_root
from cellcensus.release._root import MULTIPART_CHUNKSIZE, PreconditionFailedError, ReleaseRoot
from cellcensus.release._s3 import S3Root
from cellcensus.release._transfer import DEFAULT_JOBS, UPLOAD_HOOK, KillSwitch, Stage, run_parallel
from cellcensus.release._validate import validate_tag
from cellcensus.release.directory import (
    RELEASE_JSON,
    finish_pending_cleanups,
    read_directory,
    read_manifest,
    update_directory,
)
from cellcensus.release.mirrors import ensure_origin_mirror
from cellcensus.release.verify import MANIFEST_KEY, check_build

if TYPE_CHECKING:
    from cellcensus._progress import Progress
    from cellcensus.report import StagedReport
    from cellcensus.settings import Settings

__all__ = ["PublishResult", "publish"]

logger = logging.getLogger(__name__)

BUILD_JSON = "build.json"


@dataclass(frozen=True, kw_only=True)
class PublishResult:
    """What a publish did."""

    tag: str
    soma_uri: str
    entry: ReleaseEntry
    total_objects: int
    total_bytes: int
    uploaded: int
    skipped: int
    bytes_uploaded: int
    stale_deleted: int
    seconds: float


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


#: Secrets shorter than this are not searched for in build.json: a short (test) secret such as
#: ``"1"`` or ``"2026"`` would match ordinary content and refuse every publish.
MIN_SECRET_CHARS = 8


def _contains_secret(data: bytes, secrets: tuple[str, ...]) -> bool:
    """Whether ``build.json`` holds one of ``secrets`` (raw, or inside a JSON string)."""
    needles = [s for s in secrets if len(s) >= MIN_SECRET_CHARS]
    if not needles:
        return False
    if any(s.encode() in data for s in needles):
        return True
    try:
        text = json.dumps(json.loads(data), ensure_ascii=False)  # JSON escapes undone
    except (UnicodeDecodeError, ValueError):
        return False
    return any(s in text for s in needles)


def _check_build_dir(build_dir: Path, settings: Settings) -> BuildInfo:
    if not build_dir.is_dir():
        msg = f"build directory {build_dir} does not exist or is not a directory"
        raise BadInputError(msg)
    soma = build_dir / "soma"
    if not (soma / "__tiledb_group.tdb").is_file():
        msg = (
            f"{soma} is not a TileDB-SOMA collection (no __tiledb_group.tdb); give the "
            "directory the builder wrote (it holds soma/, h5ads/ and build.json)"
        )
        raise BadInputError(msg)
    if not (build_dir / "h5ads").is_dir():
        msg = f"{build_dir / 'h5ads'} is missing; the build is incomplete"
        raise BadInputError(msg)
    bj = build_dir / BUILD_JSON
    if not bj.is_file():
        msg = f"{bj} is missing; the build is incomplete"
        raise BadInputError(msg)
    data = bj.read_bytes()
    if _contains_secret(data, settings.secrets()):
        msg = (
            f"{bj} contains the S3 secret key or session token; refusing to publish it. "
            "Rebuild without credentials in the build configuration"
        )
        raise BadInputError(msg)
    return BuildInfo.from_json(data, where=str(bj))


def _build_files(build_dir: Path) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = [(BUILD_JSON, build_dir / BUILD_JSON)]
    for part in ("soma", "h5ads"):
        base = build_dir / part
        for dirpath, _dirs, names in os.walk(base):
            for name in names:
                full = Path(dirpath) / name
                files.append((full.relative_to(build_dir).as_posix(), full))
    return sorted(files)


def _entry(root: ReleaseRoot, tag: str, lts: bool, today: dt.date) -> ReleaseEntry:
    region = root.settings.region if root.is_s3 else None

    def loc(part: str) -> Locator:
        key = f"{tag}/{part}/"
        return Locator(
            uri=root.object_uri(key), relative_uri=root.relative_uri(key), s3_region=region
        )

    return ReleaseEntry(
        release_build=tag,
        release_date=today.isoformat(),
        soma=loc("soma"),
        h5ads=loc("h5ads"),
        lts=lts,
    )


def _claim(root: ReleaseRoot, tag: str, manifest: Manifest, discard_partial: bool) -> None:
    """Create ``<tag>/manifest.json`` create-only; accept an identical one (resume)."""
    key = f"{tag}/{MANIFEST_KEY}"
    for _ in range(2):
        try:
            root.write_bytes(key, manifest.to_json(), if_none_match=True)
        except PreconditionFailedError:
            pass
        else:
            return
        got = root.read_versioned(key)
        if got is None:
            continue  # deleted meanwhile: try again
        try:
            existing: Manifest | None = Manifest.from_json(got[0], where=root.object_uri(key))
        except (BadInputError, IntegrityError):
            existing = None
        if existing is not None and existing.same_objects(manifest):
            logger.info("resuming the interrupted publish of %s", root.object_uri(f"{tag}/"))
            return
        if not discard_partial:
            msg = (
                f"{root.object_uri(f'{tag}/')} holds an unpublished, different build (left by an "
                "interrupted publish of other data, or being published right now). Re-run with "
                "--discard-partial to delete it, or publish under another tag"
            )
            raise BadInputError(msg, field="tag")
        _discard(root, tag, got[0])
        discard_partial = False
    msg = f"could not claim {root.object_uri(key)}; retry"
    raise BadInputError(msg, field="tag")


def _discard(root: ReleaseRoot, tag: str, claim: bytes) -> None:
    """Delete an unpublished build under ``tag/`` whose claim (manifest bytes) is ``claim``.

    The claim goes first, then ``release.json`` is read again: a publish of that build that
    committed meanwhile gets its claim back and nothing else is touched. A publisher whose
    claim disappears notices it before (or right after) it commits and does not keep the entry
    (see :func:`_commit`), so a discarded build is never left in ``release.json``.
    """
    key = f"{tag}/{MANIFEST_KEY}"
    if tag in read_directory(root).builds:
        msg = f"{tag!r} was published meanwhile; it is immutable"
        raise BadInputError(msg, field="tag")
    root.delete_keys([key])
    if tag in read_directory(root).builds:
        with contextlib.suppress(PreconditionFailedError):
            root.write_bytes(key, claim, if_none_match=True)
        msg = f"{tag!r} was published meanwhile; it is immutable"
        raise BadInputError(msg, field="tag")
    try:
        n = root.delete_prefix(f"{tag}/")
    except CellCensusError as e:
        msg = (
            f"could not discard the unpublished build under {root.object_uri(f'{tag}/')}: "
            f"another publish is writing there right now ({e}). Wait for it to finish, or "
            "publish under another tag"
        )
        raise BadInputError(msg, field="tag") from e
    logger.warning("deleted %d objects of an unpublished build under %s/", n, tag)


def _claim_is_ours(root: ReleaseRoot, tag: str, manifest: Manifest) -> bool:
    """Whether ``tag/manifest.json`` still lists exactly our objects."""
    key = f"{tag}/{MANIFEST_KEY}"
    got = root.read_versioned(key)
    if got is None:
        return False
    try:
        return Manifest.from_json(got[0], where=root.object_uri(key)).same_objects(manifest)
    except (BadInputError, IntegrityError):
        return False


def _lost_claim(root: ReleaseRoot, tag: str) -> IntegrityError:
    return IntegrityError(
        f"the unpublished build under {root.object_uri(f'{tag}/')} was discarded or replaced "
        "by a concurrent `publish --discard-partial` of another build; release.json does not "
        "list this one. Re-run this publish (with --discard-partial to take the tag back), or "
        "publish under another tag"
    )


def _hash_files(
    files: list[tuple[str, Path]], jobs: int, progress: Progress | None
) -> dict[str, FileDigest]:
    with Stage(progress, "hashing", sum(p.stat().st_size for _, p in files)) as stage:

        def digest(item: tuple[str, Path]) -> FileDigest:
            d = hash_file(item[1], chunksize=MULTIPART_CHUNKSIZE)
            stage.advance(d.size)
            return d

        results = run_parallel(digest, files, jobs=jobs)
    return dict(zip([rel for rel, _ in files], results, strict=True))


def _plan_uploads(
    r: ReleaseRoot, tag: str, files: list[tuple[str, Path]], digests: dict[str, FileDigest]
) -> tuple[list[tuple[str, Path]], list[str]]:
    """Objects to send (missing or different) and leftovers to delete."""
    if isinstance(r, LocalRoot) and (n := r.remove_temporaries(f"{tag}/")):
        logger.info("removed %d partial copies left by an interrupted publish", n)
    remote = {o.key[len(tag) + 1 :]: o for o in r.list_objects(f"{tag}/")}
    todo: list[tuple[str, Path]] = []
    for rel, path in files:
        d = digests[rel]
        info = remote.get(rel)
        if info is None or info.size != d.size:
            todo.append((rel, path))
        elif isinstance(r, S3Root):
            if info.etag != d.s3_etag and r.head_sha256(f"{tag}/{rel}") != d.sha256:
                todo.append((rel, path))
        elif isinstance(r, LocalRoot):
            existing = r.path / tag / rel
            if hash_file(existing, chunksize=MULTIPART_CHUNKSIZE).sha256 != d.sha256:
                todo.append((rel, path))
    stale = sorted(set(remote) - set(digests) - {MANIFEST_KEY})
    return todo, stale


def _upload(
    r: ReleaseRoot,
    tag: str,
    todo: list[tuple[str, Path]],
    *,
    digests: dict[str, FileDigest],
    jobs: int,
    progress: Progress | None,
) -> None:
    kill = KillSwitch(UPLOAD_HOOK)
    with Stage(progress, "uploading", sum(digests[rel].size for rel, _ in todo)) as stage:

        def upload(item: tuple[str, Path]) -> None:
            rel, path = item
            r.upload_file(path, f"{tag}/{rel}", sha256=digests[rel].sha256, callback=stage.advance)

        run_parallel(upload, todo, jobs=jobs, on_done=lambda _i, _r: kill.tick())


def _commit(r: ReleaseRoot, entry: ReleaseEntry, manifest: Manifest) -> None:
    """Add ``entry`` to release.json, if our claim on the tag still holds before and after."""
    tag = entry.tag

    def commit(d: ReleaseDirectory) -> ReleaseDirectory:
        if not _claim_is_ours(r, tag, manifest):
            raise _lost_claim(r, tag)
        if tag in d.aliases:
            msg = f"{tag!r} became an alias meanwhile; not publishing"
            raise BadInputError(msg, field="tag")
        if tag in d.builds:
            old = d.builds[tag]
            if (old.soma, old.h5ads, old.lts) == (entry.soma, entry.h5ads, entry.lts):
                return d  # our own write (a lost response) or an identical concurrent publish
            msg = f"{tag!r} was published meanwhile; it is immutable"
            raise BadInputError(msg, field="tag")
        return d.with_build(entry)

    update_directory(r, commit)
    if not _claim_is_ours(r, tag, manifest):
        # discarded between our check and our write: take the entry back out

        def rollback(d: ReleaseDirectory) -> ReleaseDirectory:
            mine = d.builds.get(tag)
            if mine is not None and (mine.soma, mine.h5ads) == (entry.soma, entry.h5ads):
                return d.without_builds({tag})
            return d

        update_directory(r, rollback)
        raise _lost_claim(r, tag)


def _stage_report(r: ReleaseRoot, tag: str, bdir: Path, day: dt.date) -> StagedReport:
    """The release report of the build (``report.html``, ``report.json``), in a temporary
    directory; deterministic, so a resumed publish claims the same manifest."""
    from cellcensus.report import stage_publish_report

    return stage_publish_report(r, tag, bdir, release_date=day)


def _immutable(r: ReleaseRoot, tag: str) -> BadInputError:
    msg = (
        f"{tag!r} is already in {r.object_uri(RELEASE_JSON)} with other content; published tags "
        "are immutable: publish under a new tag (or retract the old build)"
    )
    return BadInputError(msg, field="tag")


def _published_same(
    r: ReleaseRoot, tag: str, entry: ReleaseEntry, files: list[tuple[str, Path]], lts: bool
) -> Manifest:
    """The published manifest of ``tag``, if it can be this very build (same paths and sizes,
    same LTS flag, not retracted); the caller compares the sha256 digests."""
    try:
        published = read_manifest(r, tag)
    except CellCensusError as e:
        raise _immutable(r, tag) from e
    sizes = {o.path: o.size for o in published.objects}
    local = {rel: path.stat().st_size for rel, path in files}
    if sizes != local or entry.lts != lts or entry.retracted:
        raise _immutable(r, tag)
    return published


def _preflight(r: ReleaseRoot, bdir: Path, tag: str) -> ReleaseEntry | None:
    """Check the build and the tag; the entry when this tag is published already."""
    _check_build_dir(bdir, r.settings)
    if isinstance(r, S3Root) and r.settings.anonymous:
        msg = (
            f"publishing to {r.uri} needs credentials, but requests are unsigned "
            "(--no-sign-request / CELLCENSUS_S3_NO_SIGN_REQUEST): drop that and set "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
        raise PermissionDeniedError(msg)
    directory = read_directory(r)
    if tag in directory.aliases:
        msg = f"{tag!r} is an alias in {r.object_uri(RELEASE_JSON)}; publish under another tag"
        raise BadInputError(msg, field="tag")
    if tag in directory.builds:
        return directory.builds[tag]  # maybe this very build (a re-run): checked by the caller
    # a clean-up that deleted an earlier build of this tag and was killed: finish it first
    finish_pending_cleanups(r, directory, only=tag)
    return None


def publish(
    build_dir: str | Path,
    root: str | Path | ReleaseRoot,
    *,
    tag: str | None = None,
    lts: bool = False,
    allow_custom_tag: bool = False,
    discard_partial: bool = False,
    settings: Settings | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress | None = None,
    today: dt.date | None = None,
) -> PublishResult:
    """Upload a build to ``ROOT/<tag>/``, verify it, then commit it to ``release.json``.

    Parameters
    ----------
    build_dir
        Directory with ``soma/``, ``h5ads/`` and ``build.json`` (the builder's output).
    root
        Release root: local directory, ``file://`` or ``s3://bucket/prefix/``.
    tag
        Build tag; defaults to today's date (UTC), ``YYYY-MM-DD``.
    lts
        Mark the build long-term stable (``stable`` then points to it if it is the newest LTS).
    allow_custom_tag
        Accept a tag that is not a date.
    discard_partial
        Delete an unpublished, different build left under the tag by an interrupted publish.
    settings
        Storage settings (S3 roots); resolved from the environment when omitted.
    jobs
        Parallel transfers.
    progress
        Progress reporting.
    today
        Date used as default tag and ``release_date`` (tests).

    Returns
    -------
    PublishResult
        Counts, sizes and the committed entry.

    Raises
    ------
    BadInputError
        Bad build directory or tag, or the tag is already published.
    PermissionDeniedError
        Missing or insufficient credentials.
    IntegrityError
        What landed does not match the manifest.
    """
    t0 = time.monotonic()
    r = open_root(root, settings)
    bdir = Path(build_dir)
    day = today or _today()
    tag = validate_tag(day.isoformat() if tag is None else tag, allow_custom=allow_custom_tag)
    resume = "release.json was not changed; fix this and re-run the same publish: it resumes"
    with mapped_fs_errors(f"publishing {bdir} to {r.uri}", bdir, hint=resume):
        return _publish(
            r,
            bdir,
            tag,
            day=day,
            lts=lts,
            discard_partial=discard_partial,
            jobs=jobs,
            progress=progress,
            t0=t0,
        )


def _publish(
    r: ReleaseRoot,
    bdir: Path,
    tag: str,
    *,
    day: dt.date,
    lts: bool,
    discard_partial: bool,
    jobs: int,
    progress: Progress | None,
    t0: float,
) -> PublishResult:
    """The steps of :func:`publish` after the arguments are checked."""
    published = _preflight(r, bdir, tag)
    logger.info("publishing %s to %s as %s", bdir, r.uri, tag)

    files = _build_files(bdir)
    staged_report = _stage_report(r, tag, bdir, day)
    try:
        return _publish_files(
            r,
            bdir,
            tag,
            sorted([*files, *staged_report.files]),
            published=published,
            day=day,
            lts=lts,
            discard_partial=discard_partial,
            jobs=jobs,
            progress=progress,
            t0=t0,
        )
    finally:
        staged_report.cleanup()


def _publish_files(
    r: ReleaseRoot,
    bdir: Path,
    tag: str,
    files: list[tuple[str, Path]],
    *,
    published: ReleaseEntry | None,
    day: dt.date,
    lts: bool,
    discard_partial: bool,
    jobs: int,
    progress: Progress | None,
    t0: float,
) -> PublishResult:
    """Upload ``files`` (the build's and its staged report's), verify and commit."""
    remote = None if published is None else _published_same(r, tag, published, files, lts)
    digests = _hash_files(files, jobs, progress)
    manifest = Manifest(
        tag=tag,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        objects=tuple(
            ManifestObject(path=rel, size=d.size, sha256=d.sha256) for rel, d in digests.items()
        ),
    )
    if published is not None and remote is not None:
        if not remote.same_objects(manifest):
            raise _immutable(r, tag)
        # a re-run of a publish that committed (its process was killed after the commit)
        logger.info("%s is already published with this very content; nothing to do", tag)
        return PublishResult(
            tag=tag,
            soma_uri=published.soma.uri,
            entry=published,
            total_objects=len(files),
            total_bytes=manifest.total_size,
            uploaded=0,
            skipped=len(files),
            bytes_uploaded=0,
            stale_deleted=0,
            seconds=time.monotonic() - t0,
        )
    _claim(r, tag, manifest, discard_partial)

    todo, stale = _plan_uploads(r, tag, files, digests)
    if stale:
        logger.warning("deleting %d leftovers not in the manifest under %s/", len(stale), tag)
        r.delete_keys([f"{tag}/{k}" for k in stale])
    upload_bytes = sum(digests[rel].size for rel, _ in todo)
    logger.info(
        "%d of %d objects to upload (%d bytes); %d already there",
        len(todo),
        len(files),
        upload_bytes,
        len(files) - len(todo),
    )
    try:
        _upload(r, tag, todo, digests=digests, jobs=jobs, progress=progress)
        etags = {rel: d.s3_etag for rel, d in digests.items()} if r.is_s3 else None
        report = check_build(r, tag, manifest, trusted_etags=etags, jobs=jobs, progress=progress)
    except CellCensusError as e:
        if not _claim_is_ours(r, tag, manifest):
            raise _lost_claim(r, tag) from e
        raise
    if not report.ok:
        if not _claim_is_ours(r, tag, manifest):
            raise _lost_claim(r, tag)
        msg = (
            f"after upload, {report.summary()} ({report.shown()}); release.json was not "
            "changed. Re-run publish to repair"
        )
        raise IntegrityError(msg)

    ensure_origin_mirror(r)
    entry = _entry(r, tag, lts, day)
    _commit(r, entry, manifest)
    seconds = time.monotonic() - t0
    logger.info("published %s: %s (%.1f s)", tag, entry.soma.uri, seconds)
    return PublishResult(
        tag=tag,
        soma_uri=entry.soma.uri,
        entry=entry,
        total_objects=len(files),
        total_bytes=manifest.total_size,
        uploaded=len(todo),
        skipped=len(files) - len(todo),
        bytes_uploaded=upload_bytes,
        stale_deleted=len(stale),
        seconds=seconds,
    )
