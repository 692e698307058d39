"""The release directory (``release.json``): list, show, promote, retract, alias, pin, clean up.

Every change is a compare-and-swap update (:func:`update_directory`), so concurrent writers never
lose each other's changes. ``latest`` (newest non-retracted build) and ``stable`` (newest
non-retracted LTS build) are recomputed by every change that can move them.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from cellcensus._formats.directory import (
    AUTO_ALIASES,
    ReleaseDirectory,
    ReleaseEntry,
    Retraction,
)
from cellcensus._formats.manifest import Manifest
from cellcensus.errors import BadInputError, NotFoundError
from cellcensus.release._cas import cas_update
from cellcensus.release._open import open_root
from cellcensus.release._validate import tag_date, validate_name

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from cellcensus.release._root import ReleaseRoot
    from cellcensus.settings import Settings

__all__ = [
    "RELEASE_JSON",
    "CleanupPlan",
    "ReleaseDetails",
    "cleanup",
    "pin",
    "promote",
    "read_directory",
    "read_manifest",
    "remove_alias",
    "retract",
    "set_alias",
    "show_release",
    "unpin",
    "update_directory",
]

logger = logging.getLogger(__name__)

RELEASE_JSON = "release.json"
DEFAULT_RETENTION_DAYS = 32
#: Where clean-up records its intent to delete a build (``<prefix>/<tag>``) before it changes
#: release.json; a clean-up killed after that is finished by the next one (or by a publish of
#: the same tag). Not a valid tag, so never mistaken for a build.
CLEANUP_INTENTS = ".cellcensus-cleanup/"
#: Longest retraction reason / info URL accepted (release.json is read by every client).
MAX_REASON_CHARS = 1000
MAX_URL_CHARS = 2000


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def read_directory(
    root: str | Path | ReleaseRoot, settings: Settings | None = None
) -> ReleaseDirectory:
    """Read ``release.json`` (an empty directory when the root has none yet).

    Parameters
    ----------
    root
        Release root (URI, path or :class:`ReleaseRoot`).
    settings
        Storage settings for S3 roots.

    Returns
    -------
    ReleaseDirectory
        The parsed directory.
    """
    r = open_root(root, settings)
    got = r.read_versioned(RELEASE_JSON)
    if got is None:
        return ReleaseDirectory()
    return ReleaseDirectory.from_json(got[0], where=r.object_uri(RELEASE_JSON))


def update_directory(
    root: ReleaseRoot, change: Callable[[ReleaseDirectory], ReleaseDirectory]
) -> ReleaseDirectory:
    """Apply a pure ``change`` to ``release.json`` with compare-and-swap; returns the new state."""
    where = root.object_uri(RELEASE_JSON)
    result, wrote = cas_update(
        root,
        RELEASE_JSON,
        parse=lambda b: ReleaseDirectory.from_json(b, where=where),
        dump=ReleaseDirectory.to_json,
        empty=ReleaseDirectory,
        change=change,
    )
    logger.debug("release.json %s", "updated" if wrote else "unchanged")
    return result


def read_manifest(root: ReleaseRoot, tag: str) -> Manifest:
    """Read and check ``<tag>/manifest.json``.

    Raises
    ------
    NotFoundError
        When the build has no manifest.
    """
    key = f"{tag}/manifest.json"
    got = root.read_versioned(key)
    if got is None:
        msg = f"{root.object_uri(key)} does not exist: {tag!r} is not a (complete) cellcensus build"
        raise NotFoundError(msg)
    return Manifest.from_json(got[0], where=root.object_uri(key))


@dataclass(frozen=True, kw_only=True)
class ReleaseDetails:
    """A resolved release: its tag, entry, aliases and manifest summary."""

    name: str
    tag: str
    entry: ReleaseEntry
    aliases: list[str]
    object_count: int | None
    total_size: int | None


def show_release(root: ReleaseRoot, name: str) -> ReleaseDetails:
    """Resolve a tag or alias and describe it (entry, aliases, manifest totals).

    Raises
    ------
    NotFoundError
        When ``name`` is not in ``release.json``.
    """
    d = read_directory(root)
    tag = d.resolve(name)
    try:
        m: Manifest | None = read_manifest(root, tag)
    except NotFoundError:
        m = None
    return ReleaseDetails(
        name=name,
        tag=tag,
        entry=d.builds[tag],
        aliases=d.aliases_of(tag),
        object_count=None if m is None else len(m.objects),
        total_size=None if m is None else m.total_size,
    )


def _need_build(d: ReleaseDirectory, tag: str, root: ReleaseRoot) -> ReleaseEntry:
    if tag in d.aliases:
        msg = f"{tag!r} is an alias (-> {d.aliases[tag]!r}); give the build tag itself"
        raise BadInputError(msg, field="tag")
    if tag not in d.builds:
        known = ", ".join(e.tag for e in d.ordered_builds()) or "none"
        msg = f"build {tag!r} is not in {root.object_uri(RELEASE_JSON)}; published builds: {known}"
        raise NotFoundError(msg)
    return d.builds[tag]


def promote(root: ReleaseRoot, tag: str, *, lts: bool = True) -> ReleaseDirectory:
    """Mark a build LTS (or remove the mark); ``stable`` follows the newest LTS build."""

    def change(d: ReleaseDirectory) -> ReleaseDirectory:
        e = _need_build(d, tag, root)
        if e.retracted and lts:
            msg = f"build {tag!r} is retracted; it cannot become LTS"
            raise BadInputError(msg, field="tag")
        return d.with_build(replace(e, lts=lts))

    return update_directory(root, change)


def retract(
    root: ReleaseRoot,
    tag: str,
    *,
    reason: str,
    replaced_by: str | None = None,
    info_url: str | None = None,
    today: dt.date | None = None,
) -> ReleaseDirectory:
    """Retract a build: keep its data, set the flag, record reason and replacement.

    ``latest`` and ``stable`` move off a retracted build. Aliases you set yourself are kept; a
    warning names those that still point at it.
    """
    reason = _check_reason(reason)
    if info_url is not None:
        info_url = _check_info_url(info_url)
    date = (today or _today()).isoformat()

    def change(d: ReleaseDirectory) -> ReleaseDirectory:
        e = _need_build(d, tag, root)
        replacement = None
        if replaced_by is not None:
            try:
                replacement = d.resolve(replaced_by)
            except NotFoundError as err:
                msg = f"--replaced-by {replaced_by!r}: {err}"
                raise NotFoundError(msg) from err
            if replacement == tag:
                msg = f"{tag!r} cannot be replaced by itself (--replaced-by {replaced_by!r})"
                raise BadInputError(msg, field="replaced_by")
            if d.builds[replacement].retracted:
                msg = (
                    f"--replaced-by {replaced_by!r} names build {replacement!r}, which is "
                    "retracted itself; name a build readers can use"
                )
                raise BadInputError(msg, field="replaced_by")
        r = Retraction(date=date, reason=reason, info_url=info_url, replaced_by=replacement)
        if e.retracted and e.retraction is not None:
            old = e.retraction
            if (old.reason, old.info_url, old.replaced_by) == (reason, info_url, replacement):
                return d  # the same retraction again (a re-run): nothing changes
            msg = (
                f"build {tag!r} was already retracted on {old.date} (reason: "
                f"{_short(old.reason or '')!r}); a retraction record is not rewritten"
            )
            raise BadInputError(msg, field="tag")
        return d.with_build(replace(e, retracted=True, retraction=r))

    new = update_directory(root, change)
    left = [a for a in new.aliases_of(tag) if a not in AUTO_ALIASES]
    if left:
        logger.warning(
            "aliases %s still point at retracted build %s; move them with `alias set`", left, tag
        )
    return new


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _check_reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        msg = "a retraction needs a reason (--reason)"
        raise BadInputError(msg, field="reason")
    reason = reason.strip()
    if len(reason) > MAX_REASON_CHARS:
        msg = (
            f"the retraction reason has {len(reason)} characters; keep it under "
            f"{MAX_REASON_CHARS} and put details behind --info-url"
        )
        raise BadInputError(msg, field="reason")
    if any(ord(c) < 32 or c == "\x7f" for c in reason):
        msg = "the retraction reason contains control characters (newlines, tabs...); use one line"
        raise BadInputError(msg, field="reason")
    return reason


def _check_info_url(url: str) -> str:
    import urllib.parse

    parsed = urllib.parse.urlparse(url)
    if (
        parsed.scheme not in ("http", "https")
        or not parsed.netloc
        or len(url) > MAX_URL_CHARS
        or any(ord(c) <= 32 or c == "\x7f" for c in url)
    ):
        msg = (
            f"--info-url {_short(url)!r} is not an http(s) URL of at most {MAX_URL_CHARS} "
            "characters without spaces (readers open it)"
        )
        raise BadInputError(msg, field="info_url")
    return url


def set_alias(root: ReleaseRoot, name: str, target: str) -> ReleaseDirectory:
    """Point alias ``name`` at a build tag or another alias.

    ``latest`` and ``stable`` are maintained automatically and cannot be set. A name that looks
    like a date tag is refused (it would block publishing that tag), and so is a target that is
    retracted (the official client refuses to open it).
    """
    validate_name(name, what="alias")
    if name in AUTO_ALIASES:
        msg = (
            f"{name!r} is maintained automatically (newest build / newest LTS build); use "
            "`promote` or `retract` to move it"
        )
        raise BadInputError(
            msg,
            field="alias",
        )

    def change(d: ReleaseDirectory) -> ReleaseDirectory:
        if name in d.builds:
            msg = f"{name!r} is a build tag; an alias needs another name"
            raise BadInputError(msg, field="alias")
        if tag_date(name) is not None:
            msg = (
                f"alias {name!r} looks like a date tag; it would block publishing that tag. "
                "Choose a name such as V2"
            )
            raise BadInputError(msg, field="alias")
        resolved = d.resolve(target)  # must exist
        if d.builds[resolved].retracted:
            msg = (
                f"{target!r} is retracted build {resolved!r}: the official client refuses to "
                "open it, so an alias to it would not work; point the alias at another build"
            )
            raise BadInputError(msg, field="tag")
        new = d.with_alias(name, target)
        try:
            new.resolve(name)
        except NotFoundError as err:
            msg = f"alias {name!r} -> {target!r} would make a loop ({err}); choose another target"
            raise BadInputError(msg, field="tag") from err
        return new

    return update_directory(root, change)


def remove_alias(root: ReleaseRoot, name: str) -> ReleaseDirectory:
    """Remove an alias you set (not ``latest``/``stable``)."""
    if name in AUTO_ALIASES:
        msg = f"{name!r} is maintained automatically and cannot be removed"
        raise BadInputError(msg)

    def change(d: ReleaseDirectory) -> ReleaseDirectory:
        if name not in d.aliases:
            hint = " (it is a build tag: use `retract`)" if name in d.builds else ""
            msg = f"alias {_short(name)!r} is not in release.json{hint}"
            raise NotFoundError(msg)
        remaining = d.with_alias(name, None)
        dependents = [a for a, t in remaining.aliases.items() if t == name]
        if dependents:
            msg = (
                f"aliases {sorted(dependents)} point at {name!r}; removing it would leave them "
                "dangling: move or remove them first"
            )
            raise BadInputError(msg, field="alias")
        return remaining

    return update_directory(root, change)


def _set_pin(root: ReleaseRoot, tag: str, value: bool) -> ReleaseDirectory:
    def change(d: ReleaseDirectory) -> ReleaseDirectory:
        e = _need_build(d, tag, root)
        return d.with_build(replace(e, do_not_delete=value))

    return update_directory(root, change)


def pin(root: ReleaseRoot, tag: str) -> ReleaseDirectory:
    """Set ``do_not_delete`` on a build: clean-up keeps it."""
    return _set_pin(root, tag, True)


def unpin(root: ReleaseRoot, tag: str) -> ReleaseDirectory:
    """Clear ``do_not_delete`` on a build."""
    return _set_pin(root, tag, False)


# ---------------------------------------------------------------------------- clean-up
@dataclass(frozen=True, kw_only=True)
class CleanupPlan:
    """What clean-up deletes and why it keeps the rest."""

    delete: list[str]
    keep: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    deleted_objects: int = 0


def plan_cleanup(d: ReleaseDirectory, *, days: int, today: dt.date) -> CleanupPlan:
    """Decide which builds clean-up deletes (pure).

    A build is deleted when its tag's date is more than ``days`` days before ``today`` and it is
    not LTS, not aliased, not pinned (``do_not_delete``) and not the newest build. Builds whose
    tag has no date are kept.
    """
    if days < 0:
        msg = f"--days must be >= 0, got {days}"
        raise BadInputError(msg, field="days")
    cutoff = today - dt.timedelta(days=days)
    ordered = d.ordered_builds()
    newest = ordered[0].tag if ordered else None
    delete: list[str] = []
    keep: dict[str, str] = {}
    for e in ordered:
        date = tag_date(e.tag)
        aliases = d.aliases_of(e.tag)
        if e.lts:
            keep[e.tag] = "LTS"
        elif aliases:
            keep[e.tag] = "aliased as " + ", ".join(aliases)
        elif e.do_not_delete:
            keep[e.tag] = "pinned (do_not_delete)"
        elif e.tag == newest:
            keep[e.tag] = "newest build"
        elif date is None:
            keep[e.tag] = "tag has no date"
        elif date >= cutoff:
            keep[e.tag] = f"younger than {days} days"
        else:
            delete.append(e.tag)
    return CleanupPlan(delete=delete, keep=keep)


def cleanup(
    root: ReleaseRoot,
    *,
    days: int = DEFAULT_RETENTION_DAYS,
    dry_run: bool = False,
    today: dt.date | None = None,
    on_release_json_written: Callable[[ReleaseDirectory], None] | None = None,
) -> CleanupPlan:
    """Delete weekly builds older than ``days`` (by tag date) that nothing protects.

    ``release.json`` is rewritten first (compare-and-swap, the plan is recomputed on the state
    actually replaced); only then is data deleted, so a reader resolving a tag never reaches a
    half-deleted build. See :func:`plan_cleanup` for the rules.

    Parameters
    ----------
    root
        The release root.
    days
        Retention in days (default 32).
    dry_run
        Only report.
    today
        Reference date (tests); defaults to today in UTC.
    on_release_json_written
        Called after ``release.json`` is rewritten and before any data is deleted.

    Returns
    -------
    CleanupPlan
        The builds deleted and the reasons the others were kept.
    """
    ref = today or _today()
    if dry_run:
        plan = plan_cleanup(read_directory(root), days=days, today=ref)
        return replace(plan, dry_run=True)

    plans: list[CleanupPlan] = []

    def change(d: ReleaseDirectory) -> ReleaseDirectory:
        p = plan_cleanup(d, days=days, today=ref)
        plans.append(p)
        return d.without_builds(frozenset(p.delete))

    intended = plan_cleanup(read_directory(root), days=days, today=ref).delete
    for tag in intended:  # the intent first: a kill after release.json changes leaves a trace
        root.write_bytes(CLEANUP_INTENTS + tag, b"")
    new = update_directory(root, change)
    plan = plans[-1]
    for tag in set(plan.delete) - set(intended):  # the plan changed meanwhile
        root.write_bytes(CLEANUP_INTENTS + tag, b"")
    if on_release_json_written is not None:
        on_release_json_written(new)
    deleted = 0
    for tag in plan.delete:
        n = root.delete_prefix(f"{tag}/")
        root.delete_keys([CLEANUP_INTENTS + tag])
        deleted += n
        logger.info("deleted build %s (%d objects)", tag, n)
    deleted += finish_pending_cleanups(root, new)
    return replace(plan, deleted_objects=deleted)


def finish_pending_cleanups(
    root: ReleaseRoot, directory: ReleaseDirectory, *, only: str | None = None
) -> int:
    """Finish clean-ups that were interrupted after they changed ``release.json``.

    A build whose intent is recorded and that ``release.json`` no longer lists is deleted;
    an intent for a build that is still listed (the clean-up was killed before its commit, or
    its plan changed) is dropped. Returns the number of objects deleted.
    """
    deleted = 0
    for info in list(root.list_objects(CLEANUP_INTENTS)):
        tag = info.key[len(CLEANUP_INTENTS) :]
        if only is not None and tag != only:
            continue
        if "/" in tag or not tag:
            continue
        if tag not in directory.builds and tag not in directory.aliases:
            n = root.delete_prefix(f"{tag}/")
            deleted += n
            logger.info("finished the interrupted clean-up of build %s (%d objects)", tag, n)
        root.delete_keys([info.key])
    return deleted
