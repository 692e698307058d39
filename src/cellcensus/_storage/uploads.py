"""The one verified upload: a local file to a local path, ``file://`` or ``s3://``.

An upload checks that the file's content has the sha256 the caller expects (the digest it
recorded, e.g. in a manifest) and refuses it otherwise, so a file that changed since it was
hashed is never published under the old digest:

- a local destination is written to a temporary file next to it while the bytes are hashed,
  checked, flushed to disk and only then renamed onto the destination (atomically, on the same
  file system); a mismatch or a failure (including an interruption) removes the temporary file
  and leaves the destination untouched;
- an ``s3://`` destination is hashed first (nothing is sent on a mismatch), uploaded with
  boto3's transfer manager (multipart and parallel for large files) with the sha256 stored as
  user metadata, and then checked: the object's size must be the file's, and the file must not
  have changed while it was sent (size and modification time), else the object is deleted.
  The server's ETag is compared with the one the content should get, for the log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellcensus._fs import mapped_fs_errors
from cellcensus._storage.errors import map_s3_error
from cellcensus._storage.hashing import hash_file
from cellcensus._storage.s3 import TRANSFER, s3_client
from cellcensus._storage.uri import is_local, is_s3, local_path, split_s3, unsupported
from cellcensus.errors import IntegrityError

if TYPE_CHECKING:
    from collections.abc import Callable

    from boto3.s3.transfer import TransferConfig
    from mypy_boto3_s3 import S3Client

    from cellcensus.settings import Settings

__all__ = [
    "MULTIPART_CHUNKSIZE",
    "UPLOAD_TMP_MARK",
    "UploadMismatchError",
    "Uploaded",
    "transfer_config",
    "upload_file",
]

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
#: Part size (and multipart threshold) of S3 uploads; ETags are computed with it.
MULTIPART_CHUNKSIZE = 64 * MiB
#: Marks the temporary file of a local upload when the caller names none.
UPLOAD_TMP_MARK = ".cellcensus-upload-"
#: Bytes copied per read of a local upload (the progress callback is called per block).
_BLOCK = 4 * MiB


@dataclass(frozen=True, kw_only=True)
class Uploaded:
    """A finished upload: the size and sha256 of what was written."""

    size: int
    sha256: str


class UploadMismatchError(IntegrityError):
    """The file's content is not the one expected (the destination was not written)."""


def transfer_config() -> TransferConfig:
    """The boto3 ``TransferConfig`` of uploads (64 MiB parts, 4 in parallel)."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_CHUNKSIZE,
        multipart_chunksize=MULTIPART_CHUNKSIZE,
        max_concurrency=4,
        use_threads=True,
    )


def upload_file(
    src: Path,
    dest: str | Path,
    *,
    sha256: str,
    callback: Callable[[int], object] | None = None,
    settings: Settings | None = None,
    client: S3Client | None = None,
    content_type: str | None = None,
    tmp: Path | None = None,
) -> Uploaded:
    """Copy the local file ``src`` to ``dest`` if its content has the given sha256.

    Parameters
    ----------
    src
        The file to upload.
    dest
        A local path, ``file://`` or ``s3://`` URI; an existing object is replaced.
    sha256
        The hex sha256 the content must have.
    callback
        Called with the number of bytes sent, as they are sent.
    settings
        S3 settings (of the client, for error advice; default: from the environment).
    client
        S3 client to use (default: the shared one of ``settings``).
    content_type
        S3 only: the object's ``Content-Type``.
    tmp
        Local only: the temporary file to write (default: ``<dest>.cellcensus-upload-<uuid>``
        next to ``dest``).

    Returns
    -------
    Uploaded
        Size and sha256 of what was written.

    Raises
    ------
    UploadMismatchError
        When the content's sha256 is not ``sha256``, or the file changed while it was sent.
    StorageError, PermissionDeniedError, NotFoundError, ReleaseRootUnreachableError
        When the file cannot be read or the destination cannot be written.
    """
    if isinstance(dest, Path):
        return _upload_local(src, dest, sha256=sha256, callback=callback, tmp=tmp)
    if is_local(dest):
        return _upload_local(src, local_path(dest), sha256=sha256, callback=callback, tmp=tmp)
    if is_s3(dest):
        if settings is None:
            from cellcensus.settings import Settings

            settings = Settings.resolve()
        return _upload_s3(
            src,
            dest,
            sha256=sha256,
            callback=callback,
            settings=settings,
            client=client or s3_client(settings, TRANSFER),
            content_type=content_type,
        )
    raise unsupported(dest)


def _mismatch(src: Path, dest: str | Path, got: str, expected: str) -> UploadMismatchError:
    return UploadMismatchError(
        f"uploading {src} to {dest}: the file's sha256 is {got[:12]}… but {expected[:12]}… "
        "was expected (it changed since it was hashed); nothing was written; check the file "
        "and run again"
    )


def _upload_local(
    src: Path,
    dest: Path,
    *,
    sha256: str,
    callback: Callable[[int], object] | None,
    tmp: Path | None,
) -> Uploaded:
    """Copy through a temporary file, hashed on the way, renamed into place when it matches."""
    tmp = tmp or dest.with_name(f"{dest.name}{UPLOAD_TMP_MARK}{uuid.uuid4().hex}")
    try:
        with mapped_fs_errors(f"copying {src} to {dest}"):
            dest.parent.mkdir(parents=True, exist_ok=True)
            size, got = _copy_hashing(src, tmp, callback)
        if got != sha256:
            raise _mismatch(src, dest, got, sha256)
        with mapped_fs_errors(f"copying {src} to {dest}"):
            tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)  # never leave a partial temporary file
    return Uploaded(size=size, sha256=got)


def _copy_hashing(
    src: Path, dest: Path, callback: Callable[[int], object] | None
) -> tuple[int, str]:
    """Copy ``src`` to ``dest`` (flushed to disk); returns the size and sha256 copied."""
    sha = hashlib.sha256()
    size = 0
    with src.open("rb") as fi, dest.open("wb") as fo:
        while True:
            block = fi.read(_BLOCK)
            if not block:
                break
            sha.update(block)
            fo.write(block)
            size += len(block)
            if callback is not None:
                callback(len(block))
        fo.flush()
        os.fsync(fo.fileno())
    return size, sha.hexdigest()


def _upload_s3(
    src: Path,
    uri: str,
    *,
    sha256: str,
    callback: Callable[[int], object] | None,
    settings: Settings,
    client: S3Client,
    content_type: str | None,
) -> Uploaded:
    """Hash, upload with the transfer manager, check the object; delete it on a mismatch."""
    bucket, key = split_s3(uri)
    with mapped_fs_errors(f"reading {src}"):
        before = src.stat()
        digest = hash_file(src, chunksize=MULTIPART_CHUNKSIZE)
    if digest.sha256 != sha256:
        raise _mismatch(src, uri, digest.sha256, sha256)
    extra: dict[str, Any] = {"Metadata": {"sha256": sha256}}
    if content_type is not None:
        extra["ContentType"] = content_type
    try:
        client.upload_file(
            str(src),
            bucket,
            key,
            ExtraArgs=extra,
            Config=transfer_config(),
            Callback=callback,
        )
    except Exception as e:
        # the transfer manager wraps the client's error; map the original one
        cause = e.__context__ if isinstance(e.__context__, Exception) else e
        raise map_s3_error(cause, action="uploading to", uri=uri, settings=settings) from e
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except Exception as e:
        raise map_s3_error(e, action="reading", uri=uri, settings=settings) from e
    with mapped_fs_errors(f"reading {src}"):
        after = src.stat()
    size = int(head["ContentLength"])
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or (
        size != digest.size
    ):
        try:
            client.delete_object(Bucket=bucket, Key=key)
        except Exception as e:
            raise map_s3_error(e, action="deleting", uri=uri, settings=settings) from e
        msg = (
            f"uploading {src} to {uri}: the file changed while it was uploaded ({size} B sent, "
            f"{digest.size} B hashed); the object was deleted; run again when nothing writes it"
        )
        raise UploadMismatchError(msg)
    etag = str(head.get("ETag", "")).strip('"')
    if etag != digest.s3_etag:
        logger.debug("%s: ETag %s, not %s (server-side encryption?)", uri, etag, digest.s3_etag)
    return Uploaded(size=digest.size, sha256=sha256)
