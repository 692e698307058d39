"""Release roots: a local directory or an S3 prefix, behind one small object-store interface.

Keys are ``/``-separated paths relative to the root (``release.json``, ``2024-07-01/soma/...``).

Conditional writes (the compare-and-swap that keeps concurrent publishers from losing each
other's ``release.json`` entries):

- **S3**: ``PutObject`` with ``IfNoneMatch="*"`` (create only) or ``IfMatch=<etag>`` (replace only
  the version that was read); the server answers 412 when the condition fails.
- **Local directory**: create-only is ``os.link`` of a fully written temporary file onto the final
  name (atomic; fails if the name exists). Replace-if-unchanged takes an exclusive ``fcntl.flock``
  on ``<root>/.cellcensus.lock``, compares the current content's sha256 (the local "etag") with the
  expected one, and ``os.replace``-s a fully written temporary file. The kernel drops the lock when
  the holder dies, so a killed publisher never leaves a stale lock. The lock needs a file system
  with working ``flock`` (local disks; NFS only with lockd): use S3 for multi-host publishing.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from cellcensus._storage.uploads import MULTIPART_CHUNKSIZE as _UPLOAD_CHUNKSIZE
from cellcensus.errors import (
    BadInputError,
    NotFoundError,
    PreconditionFailedError,
)

if TYPE_CHECKING:
    from pathlib import Path

    from cellcensus.settings import Settings

__all__ = [
    "LOCK_NAME",
    "MULTIPART_CHUNKSIZE",
    "TMP_MARK",
    "ObjectInfo",
    "PreconditionFailedError",
    "ReleaseRoot",
]

logger = logging.getLogger(__name__)

TMP_MARK = ".cellcensus-tmp-"
LOCK_NAME = ".cellcensus.lock"
#: Multipart threshold and part size for S3 uploads (also used to predict multipart ETags).
MULTIPART_CHUNKSIZE = _UPLOAD_CHUNKSIZE

Callback = Callable[[int], None]


@dataclass(frozen=True)
class ObjectInfo:
    """An object under a root: key relative to the root, size, and ETag (S3 only)."""

    key: str
    size: int
    etag: str | None = None


def _check_key(key: str) -> str:
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or any(seg in ("", ".", "..") for seg in key.rstrip("/").split("/"))
    ):
        msg = f"invalid object key {key!r}: must be a relative '/'-separated path"
        raise BadInputError(msg)
    return key


class ReleaseRoot(ABC):
    """A place releases are published to: a local directory or an S3 prefix."""

    #: Canonical URI of the root, with a trailing ``/`` (``s3://bucket/prefix/`` or ``file:///``).
    uri: str
    settings: Settings

    @property
    @abstractmethod
    def is_s3(self) -> bool:
        """Whether the root is on S3."""

    @abstractmethod
    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (recursive)."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Size (and ETag) of one object, or ``None`` if it does not exist."""

    @abstractmethod
    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """Content and version token (ETag) of an object, or ``None`` if missing."""

    @abstractmethod
    def write_bytes(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> None:
        """Write an object atomically.

        Parameters
        ----------
        key
            Object key.
        data
            Content.
        if_match
            Only replace the version with this token (from :meth:`read_versioned`).
        if_none_match
            Only create: fail if the object exists.

        Raises
        ------
        PreconditionFailedError
            When a condition does not hold.
        """

    @abstractmethod
    def upload_file(
        self, path: Path, key: str, *, sha256: str, callback: Callback | None = None
    ) -> None:
        """Copy a local file to ``key`` (multipart and parallel for large files on S3)."""

    def download_file(self, key: str, path: Path, *, callback: Callback | None = None) -> None:
        """Copy ``key`` to a local file (overwritten), with :func:`cellcensus._storage.download`."""
        from cellcensus._storage import TRANSFER, download

        download(
            self.location(key),
            path,
            settings=self.settings,
            role=TRANSFER,
            resume=False,
            progress=callback,
        )

    @abstractmethod
    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        """A binary stream of an object's content."""

    @abstractmethod
    def delete_keys(self, keys: list[str]) -> None:
        """Delete objects (missing ones are ignored)."""

    @abstractmethod
    def object_uri(self, key: str) -> str:
        """Absolute URI of a key (``s3://...`` or ``file:///...``)."""

    def location(self, key: str) -> str:
        """Where :mod:`cellcensus._storage` reads a key: its URI (a local root: its path)."""
        return self.object_uri(key)

    @property
    @abstractmethod
    def mirror_base_uri(self) -> str:
        """Base URI of this root's origin mirror (``relative_uri`` values are relative to it)."""

    @abstractmethod
    def relative_uri(self, key: str) -> str:
        """``key`` relative to :attr:`mirror_base_uri` (no leading ``/``)."""

    # ------------------------------------------------------------------ shared helpers
    def read_bytes(self, key: str) -> bytes:
        """Content of an object.

        Raises
        ------
        NotFoundError
            When it does not exist.
        """
        got = self.read_versioned(key)
        if got is None:
            msg = f"{self.object_uri(key)} does not exist"
            raise NotFoundError(msg)
        return got[0]

    def exists(self, key: str) -> bool:
        """Whether an object exists."""
        return self.stat(key) is not None

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (which must end with ``/``); returns the count."""
        if not prefix.endswith("/"):
            msg = f"delete_prefix needs a prefix ending with '/', got {prefix!r}"
            raise BadInputError(msg)
        _check_key(prefix)
        keys = [o.key for o in self.list_objects(prefix)]
        self.delete_keys(keys)
        return len(keys)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"
