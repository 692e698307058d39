"""The mirror directory (``mirrors.json``): where copies of the builds live.

A client resolves a build as ``mirror.base_uri`` + the entry's ``relative_uri``. Publishing to a
root creates ``mirrors.json`` with one mirror, ``origin``, pointing at the root itself (see
:attr:`ReleaseRoot.mirror_base_uri`), unless the file exists.
"""

from __future__ import annotations

import logging
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from cellcensus._formats.directory import Mirror, MirrorDirectory
from cellcensus.errors import BadInputError, NotFoundError
from cellcensus.release._cas import cas_update
from cellcensus.release._root import PreconditionFailedError, ReleaseRoot
from cellcensus.release._validate import validate_name

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "MIRRORS_JSON",
    "ORIGIN_MIRROR",
    "add_mirror",
    "ensure_origin_mirror",
    "origin_mirror",
    "read_mirrors",
    "remove_mirror",
    "set_default_mirror",
]

logger = logging.getLogger(__name__)

MIRRORS_JSON = "mirrors.json"
ORIGIN_MIRROR = "origin"


def read_mirrors(root: ReleaseRoot) -> MirrorDirectory:
    """Read ``mirrors.json`` (empty when missing)."""
    got = root.read_versioned(MIRRORS_JSON)
    if got is None:
        return MirrorDirectory()
    return MirrorDirectory.from_json(got[0], where=root.object_uri(MIRRORS_JSON))


def _update(
    root: ReleaseRoot, change: Callable[[MirrorDirectory], MirrorDirectory]
) -> MirrorDirectory:
    where = root.object_uri(MIRRORS_JSON)
    result, _ = cas_update(
        root,
        MIRRORS_JSON,
        parse=lambda b: MirrorDirectory.from_json(b, where=where),
        dump=MirrorDirectory.to_json,
        empty=MirrorDirectory,
        change=change,
    )
    return result


def normalize_base_uri(base_uri: str) -> tuple[str, str]:
    """Check a mirror base URI; return it with a trailing ``/`` and its provider.

    ``s3://bucket/[prefix/]`` is provider ``S3``; ``file:///abs/dir/`` or an absolute local path is
    provider ``file``.

    Raises
    ------
    BadInputError
        For another scheme, a relative path, or ``..``.
    """
    parsed = urllib.parse.urlparse(base_uri)
    if ".." in parsed.path.split("/"):
        msg = f"mirror base URI {base_uri!r} contains '..'"
        raise BadInputError(msg, field="base_uri")
    if parsed.scheme == "s3":
        if not parsed.netloc:
            msg = f"{base_uri!r} names no bucket"
            raise BadInputError(msg, field="base_uri")
        return base_uri.rstrip("/") + "/", "S3"
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            msg = f"{base_uri!r}: use file:///absolute/path"
            raise BadInputError(msg, field="base_uri")
        return base_uri.rstrip("/") + "/", "file"
    if not parsed.scheme:
        p = Path(base_uri)
        if not p.is_absolute():
            msg = (
                f"mirror base {base_uri!r} is a relative path; give an absolute path or "
                "file:///absolute/path"
            )
            raise BadInputError(
                msg,
                field="base_uri",
            )
        return p.as_uri().rstrip("/") + "/", "file"
    msg = (
        f"mirror base URI {base_uri!r} has unsupported scheme {parsed.scheme!r}; the official "
        "client supports s3:// and file:// mirrors"
    )
    raise BadInputError(
        msg,
        field="base_uri",
    )


def origin_mirror(root: ReleaseRoot) -> Mirror:
    """The mirror describing the root itself."""
    base = root.mirror_base_uri
    return Mirror(
        name=ORIGIN_MIRROR,
        provider="S3" if root.is_s3 else "file",
        base_uri=base,
        region=root.settings.region if root.is_s3 else None,
        embeddings_base_uri=base,
    )


def ensure_origin_mirror(root: ReleaseRoot) -> None:
    """Create ``mirrors.json`` with the ``origin`` mirror (default) if it does not exist."""
    if root.exists(MIRRORS_JSON):
        return
    m = origin_mirror(root)
    content = MirrorDirectory(default=m.name, mirrors={m.name: m})
    try:
        root.write_bytes(MIRRORS_JSON, content.to_json(), if_none_match=True)
        logger.info("created %s with mirror %r", root.object_uri(MIRRORS_JSON), m.name)
    except PreconditionFailedError:
        pass  # someone else created it meanwhile: keep theirs


def add_mirror(
    root: ReleaseRoot,
    name: str,
    base_uri: str,
    *,
    provider: str | None = None,
    region: str | None = None,
    embeddings_base_uri: str | None = None,
    make_default: bool = False,
    replace: bool = False,
) -> MirrorDirectory:
    """Add (or with ``replace`` overwrite) a mirror; the first mirror becomes the default.

    Parameters
    ----------
    root
        The release root holding ``mirrors.json``.
    name
        Mirror name.
    base_uri
        ``s3://bucket/`` or ``file:///dir/`` that holds the builds at their ``relative_uri``.
    provider
        ``S3`` or ``file``; inferred from ``base_uri`` when omitted.
    region
        S3 region of the mirror's bucket.
    embeddings_base_uri
        Base URI for embeddings (defaults to ``base_uri``).
    make_default
        Make it the default mirror.
    replace
        Overwrite an existing mirror of that name.
    """
    validate_name(name, what="mirror name")
    base, inferred = normalize_base_uri(base_uri)
    prov = provider or inferred
    if prov not in ("S3", "file"):
        msg = f"provider must be 'S3' or 'file', got {prov!r}"
        raise BadInputError(msg, field="provider")
    if prov != inferred:
        msg = f"provider {prov!r} does not match base URI {base!r} ({inferred})"
        raise BadInputError(msg, field="provider")
    if prov == "S3" and region is None:
        region = root.settings.region
    mirror = Mirror(
        name=name,
        provider=prov,
        base_uri=base,
        region=region if prov == "S3" else None,
        embeddings_base_uri=embeddings_base_uri or base,
    )

    def change(d: MirrorDirectory) -> MirrorDirectory:
        if name in d.mirrors and not replace and d.mirrors[name] != mirror:
            msg = (
                f"mirror {name!r} exists ({d.mirrors[name].base_uri}); pass --replace to change it"
            )
            raise BadInputError(msg)
        mirrors = dict(d.mirrors)
        mirrors[name] = mirror
        default = name if (make_default or d.default is None) else d.default
        return MirrorDirectory(default=default, mirrors=mirrors)

    return _update(root, change)


def set_default_mirror(root: ReleaseRoot, name: str) -> MirrorDirectory:
    """Make ``name`` the default mirror."""

    def change(d: MirrorDirectory) -> MirrorDirectory:
        if name not in d.mirrors:
            known = ", ".join(sorted(d.mirrors)) or "none"
            msg = f"mirror {name!r} is not in mirrors.json; known: {known}"
            raise NotFoundError(msg)
        return MirrorDirectory(default=name, mirrors=d.mirrors)

    return _update(root, change)


def remove_mirror(root: ReleaseRoot, name: str) -> MirrorDirectory:
    """Remove a mirror (not the default one)."""

    def change(d: MirrorDirectory) -> MirrorDirectory:
        if name not in d.mirrors:
            msg = f"mirror {name!r} is not in mirrors.json"
            raise NotFoundError(msg)
        if d.default == name:
            msg = f"mirror {name!r} is the default; set another default first"
            raise BadInputError(msg)
        return MirrorDirectory(
            default=d.default, mirrors={k: v for k, v in d.mirrors.items() if k != name}
        )

    return _update(root, change)
