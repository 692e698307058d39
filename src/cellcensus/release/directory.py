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

from cellcensus.errors import BadInputError, NotFoundError
from cellcensus.release._cas import cas_update
from cellcensus.release._manifest import Manifest
from cellcensus.release._models import (
    AUTO_ALIASES,
    ReleaseDirectory,
    ReleaseEntry,
    Retraction,
)
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
    if not reason.strip():
        msg = "a retraction needs a reason (--reason)"
        raise BadInputError(msg, field="reason")
    date = (today or _today()).isoformat()

    def change(d: ReleaseDirectory) -> ReleaseDirectory:
        e = _need_build(d, tag, root)
        if replaced_by is not None:
            target = d.resolve(replaced_by)
            if target == tag:
                msg = f"{tag!r} cannot be replaced by itself"
                raise BadInputError(msg, field="replaced_by")
        r = Retraction(date=date, reason=reason, info_url=info_url, replaced_by=replaced_by)
        return d.with_build(replace(e, retracted=True, retraction=r))

    new = update_directory(root, change)
    left = [a for a in new.aliases_of(tag) if a not in AUTO_ALIASES]
    if left:
        logger.warning(
            "aliases %s still point at retracted build %s; move them with `alias set`", left, tag
        )
    return new


def set_alias(root: ReleaseRoot, name: str, target: str) -> ReleaseDirectory:
    """Point alias ``name`` at a build tag or another alias.

    ``latest`` and ``stable`` are maintained automatically and cannot be set.
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
            raise BadInputError(msg)
        d.resolve(target)  # must exist
        new = d.with_alias(name, target)
        new.resolve(name)  # no loop
        return new

    return update_directory(root, change)


def remove_alias(root: ReleaseRoot, name: str) -> ReleaseDirectory:
    """Remove an alias you set (not ``latest``/``stable``)."""
    if name in AUTO_ALIASES:
        msg = f"{name!r} is maintained automatically and cannot be removed"
        raise BadInputError(msg)

    def change(d: ReleaseDirectory) -> ReleaseDirectory:
        if name not in d.aliases:
            msg = f"alias {name!r} is not in release.json"
            raise NotFoundError(msg)
        return d.with_alias(name, None)

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

    new = update_directory(root, change)
    plan = plans[-1]
    if on_release_json_written is not None:
        on_release_json_written(new)
    deleted = 0
    for tag in plan.delete:
        n = root.delete_prefix(f"{tag}/")
        deleted += n
        logger.info("deleted build %s (%d objects)", tag, n)
    return replace(plan, deleted_objects=deleted)
