"""Reading objects from local paths, ``file://``, ``s3://`` and ``http(s)://``.

:func:`read_bytes` (a whole small object), :func:`stat` (size and version), :func:`iter_bytes`
(a stream from an offset, for resumable downloads). S3 goes through the shared client of
:mod:`cellcensus._storage.s3`, HTTP through the shared session of :mod:`cellcensus._storage.http`;
every failure is mapped to :mod:`cellcensus.errors` with the URI in the message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cellcensus._storage.errors import map_s3_error
from cellcensus._storage.http import http_request
from cellcensus._storage.s3 import READ, Role, s3_client
from cellcensus._storage.uri import is_http, is_local, is_s3, local_path, split_s3, unsupported
from cellcensus.errors import (
    BadInputError,
    CellCensusError,
    NotFoundError,
    PermissionDeniedError,
)
from cellcensus.settings import ENV_PREFIX, Settings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["BLOCK", "ObjectStat", "iter_bytes", "read_bytes", "read_settings", "stat"]

#: Bytes per block of a stream.
BLOCK = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class ObjectStat:
    """Size and version of an object: the ETag (S3, HTTP) or the modification time (local)."""

    size: int
    etag: str | None = None
    mtime_ns: int | None = None


def read_settings(settings: Settings | None) -> Settings:
    """Storage settings for *reading*: the given ones, else resolved from the environment.

    When nothing in the environment gives credentials (no keys, no profile) and
    ``CELLCENSUS_S3_NO_SIGN_REQUEST`` is not set, reads are anonymous — as the official client's
    are — instead of signing with an empty credential chain.
    """
    if settings is not None:
        return settings
    resolved = Settings.resolve()
    if (
        not resolved.anonymous
        and resolved.access_key_id is None
        and resolved.profile is None
        and ENV_PREFIX + "NO_SIGN_REQUEST" not in os.environ
    ):
        resolved = resolved.replace(anonymous=True)
    return resolved


def _local_error(e: OSError, path: Path) -> CellCensusError:
    if isinstance(e, FileNotFoundError | NotADirectoryError):
        return NotFoundError(f"{path} does not exist")
    if isinstance(e, IsADirectoryError):
        return BadInputError(f"{path} is a directory, not a file")
    if isinstance(e, PermissionError):
        return PermissionDeniedError(f"cannot read {path}: permission denied")
    from cellcensus._fs import fs_error

    return fs_error(e, action=f"reading {path}", path=path)


def read_bytes(uri: str, settings: Settings | None = None, *, role: Role = READ) -> bytes:
    """The whole content of a (small) object.

    Raises
    ------
    NotFoundError
        When the object does not exist.
    PermissionDeniedError
        When access is refused.
    ReleaseRootUnreachableError
        When the server cannot be reached (after retries).
    """
    if is_local(uri):
        path = local_path(uri)
        try:
            return path.read_bytes()
        except OSError as e:
            raise _local_error(e, path) from e
    if is_http(uri):
        with http_request("GET", uri) as r:
            return r.content
    if is_s3(uri):
        s = read_settings(settings)
        bucket, key = split_s3(uri)
        try:
            body = s3_client(s, role).get_object(Bucket=bucket, Key=key)["Body"]
            data: bytes = body.read()
        except Exception as e:
            raise map_s3_error(e, action="reading", uri=uri, settings=s, role=role) from e
        return data
    raise unsupported(uri)


def stat(uri: str, settings: Settings | None = None, *, role: Role = READ) -> ObjectStat:
    """Size and version of an object.

    Raises
    ------
    NotFoundError
        When the object does not exist.
    """
    if is_local(uri):
        path = local_path(uri)
        try:
            st = path.stat()
        except OSError as e:
            raise _local_error(e, path) from e
        if not path.is_file():
            msg = f"{path} is not a file"
            raise BadInputError(msg)
        return ObjectStat(size=st.st_size, mtime_ns=st.st_mtime_ns)
    if is_http(uri):
        with http_request("HEAD", uri) as r:
            return ObjectStat(
                size=int(r.headers.get("Content-Length", "-1")), etag=r.headers.get("ETag")
            )
    if is_s3(uri):
        s = read_settings(settings)
        bucket, key = split_s3(uri)
        try:
            head = s3_client(s, role).head_object(Bucket=bucket, Key=key)
        except Exception as e:
            raise map_s3_error(e, action="reading", uri=uri, settings=s, role=role) from e
        return ObjectStat(size=int(head["ContentLength"]), etag=head.get("ETag"))
    raise unsupported(uri)


def size_of(uri: str, settings: Settings | None = None, *, role: Role = READ) -> int:
    """Size in bytes of an object (see :func:`stat`)."""
    return stat(uri, settings, role=role).size


def iter_bytes(
    uri: str,
    *,
    start: int = 0,
    settings: Settings | None = None,
    role: Role = READ,
    if_match: str | None = None,
    block: int = BLOCK,
) -> Iterator[bytes]:
    """Stream an object's bytes from offset ``start`` (for resumable downloads).

    Parameters
    ----------
    uri
        The object.
    start
        First byte to read (a ranged request for S3 and HTTP).
    settings, role
        S3 settings and client role.
    if_match
        S3 only: read only if the object still has this ETag (else a
        :class:`~cellcensus.errors.PreconditionFailedError`).
    block
        Bytes per chunk.

    Raises
    ------
    NotFoundError
        When the object does not exist.
    CellCensusError
        When an HTTP server ignores the byte range.
    """
    if is_local(uri):
        path = local_path(uri)
        try:
            f = path.open("rb")
        except OSError as e:
            raise _local_error(e, path) from e
        with f:
            f.seek(start)
            while chunk := f.read(block):
                yield chunk
        return
    rng = f"bytes={start}-"
    if is_http(uri):
        with http_request("GET", uri, headers={"Range": rng} if start else None, stream=True) as r:
            if start and r.status_code != 206:
                msg = f"{uri}: the server ignored the byte range; cannot resume from {start}"
                raise CellCensusError(msg)
            yield from r.iter_content(block)
        return
    if is_s3(uri):
        s = read_settings(settings)
        bucket, key = split_s3(uri)
        kwargs: dict[str, Any] = {"Range": rng} if start else {}
        if if_match:
            kwargs["IfMatch"] = if_match
        try:
            body = s3_client(s, role).get_object(Bucket=bucket, Key=key, **kwargs)["Body"]
            with body:
                yield from body.iter_chunks(block)
        except Exception as e:
            raise map_s3_error(e, action="reading", uri=uri, settings=s, role=role) from e
        return
    raise unsupported(uri)
