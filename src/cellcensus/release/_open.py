"""Open a release root from a URI or path."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from cellcensus.errors import (
    BadInputError,
)
from cellcensus.release._local import LocalRoot
from cellcensus.release._root import ReleaseRoot
from cellcensus.release._s3 import S3Root

if TYPE_CHECKING:
    from cellcensus.settings import Settings

__all__ = ["open_root"]


def open_root(root: str | Path | ReleaseRoot, settings: Settings | None = None) -> ReleaseRoot:
    """Open a release root from a URI or path.

    Parameters
    ----------
    root
        ``s3://bucket/prefix/``, ``file:///abs/dir``, or a local path (created on first write).
    settings
        Storage settings for S3 (resolved from the environment when omitted).

    Returns
    -------
    ReleaseRoot
        A :class:`S3Root` or :class:`LocalRoot`.

    Raises
    ------
    BadInputError
        For an unsupported scheme or a malformed URI.
    """
    if isinstance(root, ReleaseRoot):
        return root
    s = str(root)
    parsed = urllib.parse.urlparse(s)
    if parsed.scheme == "s3":
        return S3Root(s, settings)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            msg = f"file URI {s!r} names a host; use file:///absolute/path"
            raise BadInputError(msg)
        path = urllib.parse.unquote(parsed.path)
        if ".." in Path(path).parts:
            msg = f"release root {s!r} contains '..'; give a plain absolute path"
            raise BadInputError(msg)
        return LocalRoot(Path(path), settings)
    if parsed.scheme and len(parsed.scheme) > 1:
        msg = (
            f"release root {s!r} has unsupported scheme {parsed.scheme!r}; use a local "
            "directory, file:///path or s3://bucket/prefix/"
        )
        raise BadInputError(msg)
    return LocalRoot(Path(s), settings)
