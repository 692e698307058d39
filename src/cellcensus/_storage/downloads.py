"""The one resumable, verified download: any location to a local file.

A download writes ``<dest><suffix>`` (``.part`` unless told otherwise), continues an existing
partial file from its size when resuming, checks the result against the expected size and
sha256 when they are known, and only then renames it onto ``dest`` (atomically, on the same
file system). A mismatch removes the partial file and leaves ``dest`` untouched. When resuming
is off, a failed download removes its partial file too; when it is on, the partial file stays
for the next attempt.

Local paths and ``file://`` are copied, ``http(s)://`` is read with ranged GETs through the
shared session, ``s3://`` with ranged GETs through the shared client — or, for a large object
downloaded from the start, with boto3's transfer manager (parallel ranged GETs).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cellcensus._storage.errors import map_s3_error
from cellcensus._storage.hashing import md5_file, sha256_file
from cellcensus._storage.read import iter_bytes, read_settings
from cellcensus._storage.s3 import READ, Role, s3_client
from cellcensus._storage.uri import is_s3, split_s3
from cellcensus.errors import IntegrityError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from cellcensus.settings import Settings

__all__ = ["PART_SUFFIX", "DownloadMismatchError", "Downloaded", "download"]

logger = logging.getLogger(__name__)

PART_SUFFIX = ".part"
#: Objects at least this large, downloaded from the start, use parallel ranged GETs (S3).
PARALLEL_THRESHOLD = 64 * 1024 * 1024
_PARALLEL_CHUNK = 16 * 1024 * 1024
_PARALLEL_JOBS = 4


@dataclass(frozen=True, kw_only=True)
class Downloaded:
    """A finished download: its size, sha256, and the offset it resumed from."""

    size: int
    sha256: str
    resumed_from: int = 0


class DownloadMismatchError(IntegrityError):
    """The downloaded bytes differ from the expected size or sha256 (``dest`` was not touched)."""

    def __init__(
        self,
        msg: str,
        *,
        size: int,
        sha256: str | None,
        expected_size: int | None,
        expected_sha256: str | None,
    ) -> None:
        super().__init__(msg)
        self.size = size
        self.sha256 = sha256
        self.expected_size = expected_size
        self.expected_sha256 = expected_sha256

    def __reduce__(self) -> tuple[object, ...]:  # keep the fields across process boundaries
        return (
            _rebuild,
            (str(self), self.size, self.sha256, self.expected_size, self.expected_sha256),
        )


def _rebuild(
    msg: str, size: int, sha256: str | None, expected_size: int | None, expected: str | None
) -> DownloadMismatchError:
    return DownloadMismatchError(
        msg, size=size, sha256=sha256, expected_size=expected_size, expected_sha256=expected
    )


def _parallel_s3(
    uri: str,
    part: Path,
    *,
    settings: Settings,
    role: Role,
    if_match: str | None,
    progress: Callable[[int], object] | None,
) -> None:
    from boto3.s3.transfer import TransferConfig

    bucket, key = split_s3(uri)
    config = TransferConfig(
        multipart_threshold=_PARALLEL_CHUNK,
        multipart_chunksize=_PARALLEL_CHUNK,
        max_concurrency=_PARALLEL_JOBS,
        use_threads=True,
    )
    try:
        s3_client(settings, role).download_file(
            bucket,
            key,
            str(part),
            ExtraArgs={"IfMatch": if_match} if if_match else None,
            Config=config,
            Callback=progress,
        )
    except Exception as e:
        raise map_s3_error(e, action="downloading", uri=uri, settings=settings, role=role) from e


def _transfer(
    uri: str,
    part: Path,
    offset: int,
    *,
    size: int | None,
    settings: Settings | None,
    role: Role,
    if_match: str | None,
    progress: Callable[[int], object] | None,
) -> str | None:
    """Write the object from ``offset`` into ``part``; the sha256 when it was hashed on the way."""
    if is_s3(uri) and offset == 0 and size is not None and size >= PARALLEL_THRESHOLD:
        s = read_settings(settings)
        _parallel_s3(uri, part, settings=s, role=role, if_match=if_match, progress=progress)
        return None
    h = hashlib.sha256() if offset == 0 else None
    with part.open("ab" if offset else "wb") as f:
        for chunk in iter_bytes(uri, start=offset, settings=settings, role=role, if_match=if_match):
            f.write(chunk)
            if h is not None:
                h.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return h.hexdigest() if h is not None else None


def download(
    uri: str,
    dest: Path,
    *,
    settings: Settings | None = None,
    role: Role = READ,
    size: int | None = None,
    sha256: str | None = None,
    resume: bool = True,
    suffix: str = PART_SUFFIX,
    if_match: str | None = None,
    md5: str | None = None,
    progress: Callable[[int], object] | None = None,
) -> Downloaded:
    """Download ``uri`` to ``dest``: resumable, verified, renamed into place at the end.

    Parameters
    ----------
    uri
        Local path, ``file://``, ``s3://`` or ``http(s)://`` URI of the object.
    dest
        The file to create or replace; its directory must exist.
    settings, role
        S3 settings (default: :func:`~cellcensus._storage.read.read_settings`) and client role.
    size, sha256
        Expected size and hex sha256; checked when given.
    resume
        Continue ``<dest><suffix>`` from its size (else start over, and remove the partial file
        when the download fails).
    suffix
        Suffix of the partial file.
    if_match
        S3 only: the object's ETag; a changed object fails instead of mixing two versions.
    md5
        Expected hex MD5 (an S3 single-part ETag); checked when given.
    progress
        Called with the number of bytes written (including those of a resumed partial file).

    Returns
    -------
    Downloaded
        Size, sha256 and resume offset.

    Raises
    ------
    DownloadMismatchError
        (an :class:`~cellcensus.errors.IntegrityError`) when the size or sha256 differ; the
        partial file is removed and ``dest`` is untouched.
    NotFoundError, PermissionDeniedError, ReleaseRootUnreachableError
        As :func:`~cellcensus._storage.read.iter_bytes` raises them.
    """
    part = dest.with_name(dest.name + suffix)
    offset = part.stat().st_size if (resume and part.exists()) else 0
    if size is not None and offset > size:
        logger.warning("%s is larger than %s; downloading again", part, uri)
        offset = 0
    if offset:
        logger.info("resuming %s at byte %d", uri, offset)
        if progress is not None:
            progress(offset)
    digest: str | None = None
    if size is None or offset < size or not part.exists():
        try:
            digest = _transfer(
                uri,
                part,
                offset,
                size=size,
                settings=settings,
                role=role,
                if_match=if_match,
                progress=progress,
            )
        except BaseException:
            if not resume:
                part.unlink(missing_ok=True)
            raise
    got = part.stat().st_size if part.exists() else 0

    def reject(problem: str, got_sha256: str | None) -> DownloadMismatchError:
        part.unlink(missing_ok=True)
        msg = f"download of {uri}{problem}; the partial file was removed, run again"
        return DownloadMismatchError(
            msg, size=got, sha256=got_sha256, expected_size=size, expected_sha256=sha256
        )

    if size is not None and got != size:
        msg = f" has {got} bytes, expected {size}"
        raise reject(msg, None)
    if digest is None:
        digest = sha256_file(part)
    if sha256 is not None and digest != sha256:
        msg = f" does not match its expected sha256 {sha256} (got {digest})"
        raise reject(msg, digest)
    if md5 is not None and (got_md5 := md5_file(part)) != md5:
        msg = f": its MD5 {got_md5} does not match the ETag {md5}"
        raise reject(msg, digest)
    part.replace(dest)
    return Downloaded(size=got, sha256=digest, resumed_from=offset)
