"""Locations: local paths, ``file://``, ``s3://`` and ``http(s)://`` URIs."""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

from cellcensus.errors import BadInputError

__all__ = ["is_http", "is_local", "is_s3", "local_path", "split_s3", "unsupported", "uri_join"]


def uri_join(base: str, relative: str) -> str:
    """Join a mirror's base URI and a locator's relative URI.

    Unlike ``urllib.parse.urljoin`` (and the official client), a leading ``/`` in ``relative``
    does not drop the path of ``base``: ``file:///data/mirror/`` + ``/cell-census/x/soma/`` is
    ``file:///data/mirror/cell-census/x/soma/``. An absolute ``relative`` (with a scheme) is
    returned as is.

    Examples
    --------
    >>> uri_join("s3://bucket/", "/cell-census/2024-07-01/soma/")
    's3://bucket/cell-census/2024-07-01/soma/'
    >>> uri_join("file:///data/mirror", "cell-census/2024-07-01/soma/")
    'file:///data/mirror/cell-census/2024-07-01/soma/'
    """
    if urllib.parse.urlparse(relative).scheme:
        return relative
    if not base:
        return relative
    return base.rstrip("/") + "/" + relative.lstrip("/")


def _scheme(uri: str) -> str:
    return urllib.parse.urlparse(uri).scheme


def is_local(uri: str) -> bool:
    """Whether ``uri`` is a local path or a ``file://`` URI."""
    scheme = _scheme(uri)
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def is_s3(uri: str) -> bool:
    """Whether ``uri`` is an ``s3://`` URI."""
    return _scheme(uri) == "s3"


def is_http(uri: str) -> bool:
    """Whether ``uri`` is an ``http://`` or ``https://`` URL."""
    return _scheme(uri) in ("http", "https")


def local_path(uri: str) -> Path:
    """The local path of a path or ``file://`` URI.

    Raises
    ------
    BadInputError
        For a ``file://`` URI that names a host.
    """
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            msg = f"file URI {uri!r} names a host; use file:///absolute/path"
            raise BadInputError(msg)
        return Path(urllib.parse.unquote(parsed.path))
    return Path(uri).expanduser()


def split_s3(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://bucket/key`` URI.

    Raises
    ------
    BadInputError
        When the URI names no bucket.
    """
    parsed = urllib.parse.urlparse(uri)
    if not parsed.netloc:
        msg = f"{uri!r} names no bucket; use s3://bucket/key"
        raise BadInputError(msg)
    return parsed.netloc, parsed.path.lstrip("/")


def unsupported(uri: str) -> BadInputError:
    """The error for a URI whose scheme no storage function handles."""
    msg = (
        f"unsupported URI scheme {_scheme(uri)!r} in {uri!r}; use a path, file://, s3:// or "
        "http(s)://"
    )
    return BadInputError(msg)
