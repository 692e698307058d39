"""Validation of release tags, alias and mirror names, and object paths inside a release."""

from __future__ import annotations

import datetime as dt
import re

from cellcensus.errors import BadInputError

__all__ = [
    "RESERVED_NAMES",
    "tag_date",
    "validate_name",
    "validate_relative_path",
    "validate_tag",
]

#: Names that are never build tags: the automatic aliases, and the files at the root.
RESERVED_NAMES = frozenset(
    {
        "latest",
        "stable",
        "default",
        "release.json",
        "mirrors.json",
        "contributions.json",  # the embedding directory
        "embeddings",  # the embeddings' prefix
    }
)

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DATE_TAG = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATE_PREFIX = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?![0-9])")


def _shown(name: str) -> str:
    """``repr`` of a name for a message, cut to a readable length."""
    return repr(name) if len(name) <= 60 else f"{name[:60]!r}… ({len(name)} characters)"


def _check_safe(name: str, what: str) -> None:
    if not isinstance(name, str):
        msg = f"{what} must be a string, got {type(name).__name__}"
        raise BadInputError(msg, field=what)
    if not name.strip():
        msg = f"{what} {name!r} is empty; give a name such as 2026-11-01 (omit it for the default)"
        raise BadInputError(msg, field=what)
    if "/" in name or "\\" in name:
        msg = (
            f"{what} {_shown(name)} contains a path separator; use letters, digits, '.', '_' "
            "and '-'"
        )
        raise BadInputError(
            msg,
            field=what,
        )
    if ".." in name:
        msg = f"{what} {_shown(name)} contains '..'; it is not allowed"
        raise BadInputError(msg, field=what)
    if not _SAFE_NAME.match(name):
        msg = (
            f"{what} {_shown(name)} is not allowed: use 1-100 characters from letters, digits, "
            "'.', '_' and '-', starting with a letter or digit"
        )
        raise BadInputError(
            msg,
            field=what,
        )


def validate_tag(tag: str, *, allow_custom: bool = False) -> str:
    """Check a build tag and return it.

    By default a tag is a calendar date ``YYYY-MM-DD`` (as the Census uses). With
    ``allow_custom`` any safe name is accepted: 1-100 characters from letters, digits, ``.``,
    ``_`` and ``-``, starting with a letter or digit, without ``..``. The names ``latest``,
    ``stable`` (automatic aliases), ``default``, ``release.json`` and ``mirrors.json`` are reserved.

    Parameters
    ----------
    tag
        The proposed tag.
    allow_custom
        Accept a non-date tag.

    Returns
    -------
    str
        The tag, unchanged.

    Raises
    ------
    BadInputError
        What is wrong with the tag and what to use instead.

    Examples
    --------
    >>> validate_tag("2024-07-01")
    '2024-07-01'
    >>> validate_tag("nightly-1", allow_custom=True)
    'nightly-1'
    """
    _check_safe(tag, "tag")
    if tag.lower() in RESERVED_NAMES:
        msg = (
            f"tag {tag!r} is reserved ('latest' and 'stable' are aliases cellcensus maintains); "
            "publish under a date tag such as 2024-07-01"
        )
        raise BadInputError(
            msg,
            field="tag",
        )
    m = _DATE_TAG.match(tag)
    if m is None:
        if not allow_custom:
            msg = (
                f"tag {tag!r} is not a date of the form YYYY-MM-DD; use a date tag, or pass "
                "--allow-custom-tag (allow_custom=True) for another name"
            )
            raise BadInputError(
                msg,
                field="tag",
            )
        return tag
    try:
        dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        msg = f"tag {tag!r} looks like a date but is not a valid calendar date"
        raise BadInputError(msg, field="tag") from None
    return tag


def validate_name(name: str, *, what: str = "alias") -> str:
    """Check an alias or mirror name (same character rules as tags; not reserved words)."""
    _check_safe(name, what)
    if name.lower() in ("release.json", "mirrors.json", "default"):
        msg = f"{what} {name!r} is reserved; choose another name"
        raise BadInputError(msg, field=what)
    if name.lower() in ("latest", "stable") and name not in ("latest", "stable"):
        msg = f"{what} {name!r} is too easily confused with {name.lower()!r}; choose another name"
        raise BadInputError(msg, field=what)
    return name


def tag_date(tag: str) -> dt.date | None:
    """The calendar date a tag starts with (``2024-07-01`` or ``2024-07-01-rc1``), else ``None``."""
    m = _DATE_PREFIX.match(tag)
    if m is None:
        return None
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def validate_relative_path(path: str, *, where: str) -> str:
    """Check an object path relative to a build (from a manifest) and return it.

    The path must be relative, use ``/`` separators, and contain no empty, ``.`` or ``..``
    segment, no backslash and no NUL: a manifest from a remote root must not be able to make
    ``sync`` write outside its destination.

    Raises
    ------
    BadInputError
        When the path is unsafe; ``where`` names the manifest it came from.
    """
    bad = (
        not isinstance(path, str)
        or not path
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or re.match(r"^[A-Za-z]:", path) is not None
        or any(seg in ("", ".", "..") for seg in path.split("/"))
    )
    if bad:
        msg = (
            f"unsafe object path {path!r} in {where}: paths must be relative, '/'-separated, "
            "without '.', '..' or empty segments; the manifest is corrupt or malicious"
        )
        raise BadInputError(
            msg,
            field="path",
        )
    return path
