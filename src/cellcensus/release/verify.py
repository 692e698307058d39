"""Verify a published build against its ``manifest.json``: every object's size and sha256."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cellcensus._storage.hashing import Readable, hash_stream
from cellcensus.release._open import open_root
from cellcensus.release._root import MULTIPART_CHUNKSIZE, ReleaseRoot
from cellcensus.release._transfer import DEFAULT_JOBS, Stage, run_parallel
from cellcensus.release.directory import RELEASE_JSON, read_directory, read_manifest

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from cellcensus._formats.manifest import Manifest, ManifestObject
    from cellcensus._progress import Progress
    from cellcensus.settings import Settings

__all__ = ["Problem", "VerifyReport", "check_build", "resolve_build", "verify"]

logger = logging.getLogger(__name__)

MANIFEST_KEY = "manifest.json"


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One object that does not match the manifest."""

    path: str
    kind: str  # "missing" | "size" | "sha256" | "unexpected"
    expected: str | None = None
    actual: str | None = None

    def __str__(self) -> str:
        if self.kind == "missing":
            return f"{self.path}: missing"
        if self.kind == "unexpected":
            return f"{self.path}: not in manifest.json"
        return f"{self.path}: {self.kind} is {self.actual}, manifest says {self.expected}"


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """Result of verifying one build."""

    tag: str
    uri: str
    checked: int
    total_bytes: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """Whether every object matched."""
        return not self.problems

    @property
    def mismatched(self) -> int:
        """Objects of the manifest that are missing or differ."""
        return sum(p.kind != "unexpected" for p in self.problems)

    @property
    def unexpected(self) -> int:
        """Objects stored under the build that the manifest does not list."""
        return sum(p.kind == "unexpected" for p in self.problems)

    def summary(self) -> str:
        """The counts, for a message: what is missing or changed, and what is extra."""
        parts = []
        if self.mismatched:
            parts.append(
                f"{self.mismatched} of the {self.checked} objects under {self.uri} do not match "
                "manifest.json (missing or changed)"
            )
        if self.unexpected:
            parts.append(f"{self.unexpected} objects under {self.uri} are not in manifest.json")
        return "; ".join(parts) or f"all {self.checked} objects of {self.uri} match"

    def shown(self, limit: int = 5) -> str:
        """The first problems, for a message (the rest counted)."""
        text = "; ".join(str(p) for p in self.problems[:limit])
        more = len(self.problems) - limit
        return text + (f"; and {more} more" if more > 0 else "")


def resolve_build(root: ReleaseRoot, name: str) -> str:
    """The tag for ``name``: through ``release.json`` (aliases too), or an unpublished build
    that has a ``manifest.json``.

    Raises
    ------
    NotFoundError
        When neither exists.
    """
    d = read_directory(root)
    if name in d.builds or name in d.aliases:
        return d.resolve(name)
    if root.exists(f"{name}/{MANIFEST_KEY}"):
        logger.warning("%s is not in %s (unpublished build)", name, root.object_uri(RELEASE_JSON))
        return name
    return d.resolve(name)  # raises NotFoundError with the known names


def check_build(
    root: ReleaseRoot,
    tag: str,
    manifest: Manifest,
    *,
    trusted_etags: Mapping[str, str] | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress | None = None,
) -> VerifyReport:
    """Compare what is stored under ``<tag>/`` with ``manifest``.

    Parameters
    ----------
    root, tag, manifest
        The build to check.
    trusted_etags
        Path -> S3 ETag computed locally before upload. An object whose server-computed ETag
        equals it is accepted without downloading it (the server hashed the bytes it stored);
        any other object is downloaded and its sha256 compared.
    jobs
        Parallel reads.
    progress
        Progress reporting (bytes read).

    Returns
    -------
    VerifyReport
        Missing, resized, changed and unexpected objects.
    """
    listed = {o.key[len(tag) + 1 :]: o for o in root.list_objects(f"{tag}/")}
    problems: list[Problem] = []
    to_hash: list[ManifestObject] = []
    expected = manifest.by_path()
    for obj in manifest.objects:
        info = listed.get(obj.path)
        if info is None:
            problems.append(Problem(path=obj.path, kind="missing"))
        elif info.size != obj.size:
            problems.append(
                Problem(path=obj.path, kind="size", expected=str(obj.size), actual=str(info.size))
            )
        elif (
            trusted_etags is not None
            and info.etag is not None
            and trusted_etags.get(obj.path) == info.etag
        ):
            continue
        else:
            to_hash.append(obj)
    for path in sorted(set(listed) - set(expected) - {MANIFEST_KEY}):
        problems.append(Problem(path=path, kind="unexpected"))

    with Stage(progress, "verifying", sum(o.size for o in to_hash)) as stage:

        def digest(obj: ManifestObject) -> str:
            with root.open_read(f"{tag}/{obj.path}") as f:
                return hash_stream(_Counting(f, stage), chunksize=MULTIPART_CHUNKSIZE).sha256

        shas = run_parallel(digest, to_hash, jobs=jobs)
    for obj, sha in zip(to_hash, shas, strict=True):
        if sha != obj.sha256:
            problems.append(Problem(path=obj.path, kind="sha256", expected=obj.sha256, actual=sha))
    report = VerifyReport(
        tag=tag,
        uri=root.object_uri(f"{tag}/"),
        checked=len(manifest.objects),
        total_bytes=manifest.total_size,
        problems=tuple(sorted(problems, key=lambda p: p.path)),
    )
    if report.ok:
        logger.info("verified %d objects of %s", report.checked, report.uri)
    else:
        logger.warning("%d problems in %s", len(report.problems), report.uri)
    return report


class _Counting:
    """A read-only stream wrapper that reports bytes read to a progress object."""

    def __init__(self, f: Readable, stage: Stage) -> None:
        self._f = f
        self._p = stage

    def read(self, n: int = -1, /) -> bytes:
        b = self._f.read(n)
        self._p.advance(len(b))
        return b


def verify(
    root: str | Path | ReleaseRoot,
    name: str,
    *,
    settings: Settings | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress | None = None,
) -> VerifyReport:
    """Read every object of a build and compare its sha256 and size with ``manifest.json``.

    Parameters
    ----------
    root
        Release root.
    name
        Build tag or alias.
    settings
        Storage settings for S3 roots.
    jobs
        Parallel reads.
    progress
        Progress reporting.

    Returns
    -------
    VerifyReport
        ``report.ok`` is ``False`` when anything is missing, different or unexpected.

    Raises
    ------
    cellcensus.errors.NotFoundError
        When the build or its manifest does not exist.
    """
    r = open_root(root, settings)
    tag = resolve_build(r, name)
    manifest = read_manifest(r, tag)
    return check_build(r, tag, manifest, jobs=jobs, progress=progress)
