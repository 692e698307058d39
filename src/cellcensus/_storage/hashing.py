"""Hashing of files and streams: sha256 for integrity, and the ETag S3 gives an upload.

:func:`sha256_file` is the one way a file is hashed (``hashlib.file_digest``: large reads,
the GIL released while hashing). :func:`hash_stream` / :func:`hash_file` compute, in one pass,
the sha256 and the ETag an S3 upload with a given multipart chunk size will get, which the
release machinery compares with what a server reports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["FileDigest", "Readable", "hash_file", "hash_stream", "md5_file", "sha256_file"]

#: Bytes read per call by :func:`hash_stream`.
BLOCK = 1024 * 1024


class Readable(Protocol):
    """Anything with ``read(n) -> bytes``."""

    def read(self, n: int = -1, /) -> bytes:
        """Read up to ``n`` bytes."""
        ...


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "f"
    >>> _ = p.write_bytes(b"abc")
    >>> sha256_file(p)[:16]
    'ba7816bf8f01cfea'
    """
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def md5_file(path: Path) -> str:
    """Hex MD5 of a file's content (to compare with a single-part S3 ETag; not for security)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


@dataclass(frozen=True)
class FileDigest:
    """Size, sha256 and the S3 ETag an upload of this content will get."""

    size: int
    sha256: str
    s3_etag: str


def _chunksize_for(size: int, chunksize: int) -> int:
    from s3transfer.utils import ChunksizeAdjuster

    return int(ChunksizeAdjuster().adjust_chunksize(chunksize, size))


def hash_stream(f: Readable, *, size_hint: int | None = None, chunksize: int) -> FileDigest:
    """Hash a stream: sha256, and the S3 ETag of an upload with the given multipart chunk size.

    Single-part uploads (size below ``chunksize``) get the content's MD5 as ETag; multipart ones
    ``md5(concat(md5(part_i)))-<parts>``, with boto3's chunk-size adjustment for huge files.
    """
    part_size = _chunksize_for(size_hint, chunksize) if size_hint else chunksize
    sha = hashlib.sha256()
    md5_all = hashlib.md5(usedforsecurity=False)
    part_md5s: list[bytes] = []
    part = hashlib.md5(usedforsecurity=False)
    in_part = 0
    total = 0
    while True:
        block = f.read(BLOCK)
        if not block:
            break
        sha.update(block)
        md5_all.update(block)
        total += len(block)
        view = memoryview(block)
        while view:
            take = min(len(view), part_size - in_part)
            part.update(view[:take])
            in_part += take
            view = view[take:]
            if in_part == part_size:
                part_md5s.append(part.digest())
                part = hashlib.md5(usedforsecurity=False)
                in_part = 0
    if in_part:
        part_md5s.append(part.digest())
    if total < chunksize:
        etag = md5_all.hexdigest()
    else:
        combined = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
        etag = f"{combined}-{len(part_md5s)}"
    return FileDigest(size=total, sha256=sha.hexdigest(), s3_etag=etag)


def hash_file(path: Path, *, chunksize: int) -> FileDigest:
    """:func:`hash_stream` of a local file."""
    with path.open("rb") as f:
        return hash_stream(f, size_hint=path.stat().st_size, chunksize=chunksize)
