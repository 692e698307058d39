"""The directory files at a release root: ``release.json`` and ``mirrors.json``.

Both use exactly the formats the official ``cellxgene_census`` client parses, so they carry no
``format_version`` of ours (a top-level key would show up in the client as a bogus release or
mirror): :data:`FORMAT_VERSION` is ``None``. Unknown keys in an entry are kept on rewrite. The
release machinery writes them (:mod:`cellcensus.release`); the client reads them through the
same models (:mod:`cellcensus.client._directory`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict, cast

from cellcensus._formats._json import malformed, parse
from cellcensus.errors import CellCensusError, NotFoundError

__all__ = [
    "AUTO_ALIASES",
    "FORMAT_VERSION",
    "FlagsDict",
    "Locator",
    "LocatorDict",
    "Mirror",
    "MirrorDict",
    "MirrorDirectory",
    "ReleaseDirectory",
    "ReleaseEntry",
    "ReleaseEntryDict",
    "Retraction",
    "RetractionDict",
]

AUTO_ALIASES = ("latest", "stable")
#: The official client's formats carry no version field of ours.
FORMAT_VERSION = None

Provider = Literal["S3", "file"]


# ---------------------------------------------------------------------------- JSON shapes
class LocatorDict(TypedDict):
    """``soma`` / ``h5ads`` locator of a release entry."""

    uri: str
    relative_uri: str
    s3_region: str | None


class FlagsDict(TypedDict):
    """Release flags."""

    lts: bool
    retracted: bool


class RetractionDict(TypedDict):
    """Details of a retraction."""

    date: str
    reason: str | None
    info_url: str | None
    replaced_by: str | None


class ReleaseEntryDict(TypedDict):
    """One build in ``release.json``."""

    release_date: str | None
    release_build: str
    soma: LocatorDict
    h5ads: LocatorDict
    flags: FlagsDict
    retraction: NotRequired[RetractionDict]
    do_not_delete: bool


class MirrorDict(TypedDict):
    """One mirror in ``mirrors.json``."""

    provider: str
    base_uri: str
    region: str | None
    embeddings_base_uri: str


_ADVICE = "the file is malformed (was it edited by hand?)"


def _bad(where: str, what: str) -> CellCensusError:
    return malformed(where, what, _ADVICE)


def _str_or_none(v: object, where: str, key: str) -> str | None:
    if v is None or isinstance(v, str):
        return v
    raise _bad(where, f"{key!r} must be a string or null, got {type(v).__name__}")


# ---------------------------------------------------------------------------- release.json
@dataclass(frozen=True, kw_only=True)
class Locator:
    """Where one part (``soma`` or ``h5ads``) of a build lives."""

    uri: str
    relative_uri: str
    s3_region: str | None = None

    def to_dict(self) -> LocatorDict:
        """JSON form."""
        return {"uri": self.uri, "relative_uri": self.relative_uri, "s3_region": self.s3_region}

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> Locator:
        """Parse; accepts ``relative_uri`` with or without a leading ``/`` (kept as written)."""
        if not isinstance(d, Mapping):
            raise _bad(where, "a locator must be an object")
        uri = d.get("uri")
        rel = d.get("relative_uri")
        if not isinstance(uri, str) and not isinstance(rel, str):
            raise _bad(where, "a locator needs 'uri' or 'relative_uri'")
        return cls(
            uri=uri if isinstance(uri, str) else "",
            relative_uri=rel if isinstance(rel, str) else "",
            s3_region=_str_or_none(d.get("s3_region"), where, "s3_region"),
        )


@dataclass(frozen=True, kw_only=True)
class Retraction:
    """Why and when a build was retracted, and what replaces it."""

    date: str
    reason: str | None = None
    info_url: str | None = None
    replaced_by: str | None = None

    def to_dict(self) -> RetractionDict:
        """JSON form."""
        return {
            "date": self.date,
            "reason": self.reason,
            "info_url": self.info_url,
            "replaced_by": self.replaced_by,
        }

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> Retraction:
        """Parse."""
        if not isinstance(d, Mapping):
            raise _bad(where, "'retraction' must be an object")
        return cls(
            date=str(d.get("date") or ""),
            reason=_str_or_none(d.get("reason"), where, "reason"),
            info_url=_str_or_none(d.get("info_url"), where, "info_url"),
            replaced_by=_str_or_none(d.get("replaced_by"), where, "replaced_by"),
        )


_ENTRY_KEYS = frozenset(
    {"release_date", "release_build", "soma", "h5ads", "flags", "retraction", "do_not_delete"}
)


@dataclass(frozen=True, kw_only=True)
class ReleaseEntry:
    """One published build (a non-alias value of ``release.json``)."""

    release_build: str
    soma: Locator
    h5ads: Locator
    release_date: str | None = None
    lts: bool = False
    retracted: bool = False
    retraction: Retraction | None = None
    do_not_delete: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """The build tag (``release_build``)."""
        return self.release_build

    def sort_key(self) -> tuple[dt.date, str]:
        """Order of builds: by the tag's date, else by ``release_date``, then by tag."""
        from cellcensus.release._validate import tag_date

        d = tag_date(self.release_build)
        if d is None and self.release_date:
            d = tag_date(self.release_date)
        return (d or dt.date.min, self.release_build)

    def to_dict(self) -> ReleaseEntryDict:
        """JSON form, in the layout the official client parses."""
        out: dict[str, Any] = dict(self.extra)
        out.update(
            {
                "release_date": self.release_date,
                "release_build": self.release_build,
                "soma": self.soma.to_dict(),
                "h5ads": self.h5ads.to_dict(),
                "flags": {"lts": self.lts, "retracted": self.retracted},
                "do_not_delete": self.do_not_delete,
            }
        )
        if self.retraction is not None:
            out["retraction"] = self.retraction.to_dict()
        return cast("ReleaseEntryDict", out)

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any], *, where: str) -> ReleaseEntry:
        """Parse one entry; ``name`` is its key in the directory."""
        w = f"{where}, entry {name!r}"
        build = d.get("release_build")
        if not isinstance(build, str) or not build:
            raise _bad(w, "'release_build' is missing or not a string")
        if build != name:
            raise _bad(w, f"'release_build' is {build!r} but the entry is named {name!r}")
        for key in ("soma", "h5ads"):
            if key not in d:
                raise _bad(w, f"{key!r} is missing")
        flags = d.get("flags") or {}
        if not isinstance(flags, Mapping):
            raise _bad(w, "'flags' must be an object")
        retraction = d.get("retraction")
        return cls(
            release_build=build,
            release_date=_str_or_none(d.get("release_date"), w, "release_date"),
            soma=Locator.from_dict(d["soma"], where=w + ".soma"),
            h5ads=Locator.from_dict(d["h5ads"], where=w + ".h5ads"),
            lts=bool(flags.get("lts", False)),
            retracted=bool(flags.get("retracted", False)),
            retraction=None if retraction is None else Retraction.from_dict(retraction, where=w),
            do_not_delete=bool(d.get("do_not_delete") or False),
            extra={k: v for k, v in d.items() if k not in _ENTRY_KEYS},
        )


@dataclass(frozen=True, kw_only=True)
class ReleaseDirectory:
    """The content of ``release.json``: builds by tag, and aliases (name -> name).

    Instances are immutable; the ``with_*`` methods return changed copies.
    """

    builds: Mapping[str, ReleaseEntry] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ queries
    def resolve(self, name: str) -> str:
        """The build tag a name (tag or alias, chains allowed) points to.

        Raises
        ------
        NotFoundError
            When the name is unknown, dangles, or the alias chain loops.
        """
        seen: list[str] = []
        current = name
        while current in self.aliases:
            if current in seen:
                msg = f"alias loop in release.json: {' -> '.join([*seen, current])}"
                raise NotFoundError(msg)
            seen.append(current)
            current = self.aliases[current]
        if current not in self.builds:
            known = ", ".join(sorted([*self.builds, *self.aliases])) or "none"
            chain = f" (via {' -> '.join(seen)})" if seen else ""
            msg = f"release {name!r}{chain} is not in release.json; known names: {known}"
            raise NotFoundError(msg)
        return current

    def aliases_of(self, tag: str) -> list[str]:
        """Every alias that resolves to ``tag`` (sorted)."""
        out = []
        for alias in self.aliases:
            try:
                if self.resolve(alias) == tag:
                    out.append(alias)
            except LookupError:
                continue
        return sorted(out)

    def ordered_builds(self) -> list[ReleaseEntry]:
        """Builds, newest first."""
        return sorted(self.builds.values(), key=ReleaseEntry.sort_key, reverse=True)

    def newest(self, *, lts_only: bool = False, include_retracted: bool = False) -> str | None:
        """Tag of the newest build (optionally LTS only), skipping retracted ones by default."""
        for e in self.ordered_builds():
            if e.retracted and not include_retracted:
                continue
            if lts_only and not e.lts:
                continue
            return e.tag
        return None

    # ------------------------------------------------------------------ changes
    def with_build(self, entry: ReleaseEntry) -> ReleaseDirectory:
        """Copy with ``entry`` added or replaced, automatic aliases recomputed."""
        builds = dict(self.builds)
        builds[entry.tag] = entry
        return ReleaseDirectory(builds=builds, aliases=self.aliases).with_auto_aliases()

    def without_builds(self, tags: set[str] | frozenset[str]) -> ReleaseDirectory:
        """Copy without the given builds, automatic aliases recomputed."""
        builds = {k: v for k, v in self.builds.items() if k not in tags}
        return ReleaseDirectory(builds=builds, aliases=self.aliases).with_auto_aliases()

    def with_alias(self, name: str, target: str | None) -> ReleaseDirectory:
        """Copy with alias ``name`` set to ``target`` (removed when ``target`` is None)."""
        aliases = dict(self.aliases)
        if target is None:
            aliases.pop(name, None)
        else:
            aliases[name] = target
        return ReleaseDirectory(builds=self.builds, aliases=aliases)

    def with_auto_aliases(self) -> ReleaseDirectory:
        """Copy with ``latest`` (newest non-retracted build) and ``stable`` (newest non-retracted
        LTS build) recomputed; an alias with no candidate is removed."""
        aliases = dict(self.aliases)
        for name, target in (("latest", self.newest()), ("stable", self.newest(lts_only=True))):
            if target is None:
                aliases.pop(name, None)
            else:
                aliases[name] = target
        return ReleaseDirectory(builds=self.builds, aliases=aliases)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, str | ReleaseEntryDict]:
        """JSON form: aliases first (``stable``, ``latest``, then others), builds newest first."""
        out: dict[str, str | ReleaseEntryDict] = {}
        for name in sorted(self.aliases, key=lambda a: (a not in AUTO_ALIASES, a), reverse=False):
            out[name] = self.aliases[name]
        for entry in self.ordered_builds():
            out[entry.tag] = entry.to_dict()
        return out

    def to_json(self) -> bytes:
        """Serialised ``release.json``."""
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode()

    @classmethod
    def from_dict(cls, d: object, *, where: str = "release.json") -> ReleaseDirectory:
        """Parse ``release.json`` content.

        Raises
        ------
        BadInputError
            When the content is not a release directory.
        """
        if not isinstance(d, Mapping):
            raise _bad(where, "the top level must be an object mapping names to entries")
        builds: dict[str, ReleaseEntry] = {}
        aliases: dict[str, str] = {}
        for name, value in d.items():
            if isinstance(value, str):
                aliases[str(name)] = value
            elif isinstance(value, Mapping):
                builds[str(name)] = ReleaseEntry.from_dict(str(name), value, where=where)
            else:
                raise _bad(where, f"entry {name!r} must be an alias (string) or an object")
        return cls(builds=builds, aliases=aliases)

    @classmethod
    def from_json(cls, data: bytes, *, where: str = "release.json") -> ReleaseDirectory:
        """Parse serialised ``release.json``."""
        return cls.from_dict(parse(data, where=where, advice=_ADVICE), where=where)


# ---------------------------------------------------------------------------- mirrors.json
@dataclass(frozen=True, kw_only=True)
class Mirror:
    """A place holding copies of the builds (``base_uri`` + a locator's ``relative_uri``)."""

    name: str
    provider: str
    base_uri: str
    region: str | None = None
    embeddings_base_uri: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> MirrorDict:
        """JSON form."""
        out: dict[str, Any] = dict(self.extra)
        out.update(
            {
                "provider": self.provider,
                "base_uri": self.base_uri,
                "region": self.region,
                "embeddings_base_uri": self.embeddings_base_uri or self.base_uri,
            }
        )
        return cast("MirrorDict", out)

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any], *, where: str) -> Mirror:
        """Parse one mirror."""
        w = f"{where}, mirror {name!r}"
        provider = d.get("provider")
        base = d.get("base_uri")
        if not isinstance(provider, str) or not isinstance(base, str):
            raise _bad(w, "'provider' and 'base_uri' must be strings")
        known = ("provider", "base_uri", "region", "embeddings_base_uri")
        emb = d.get("embeddings_base_uri")
        return cls(
            name=name,
            provider=provider,
            base_uri=base,
            region=_str_or_none(d.get("region"), w, "region"),
            embeddings_base_uri=emb if isinstance(emb, str) else None,
            extra={k: v for k, v in d.items() if k not in known},
        )


@dataclass(frozen=True, kw_only=True)
class MirrorDirectory:
    """The content of ``mirrors.json``: mirrors by name and the name of the default one."""

    default: str | None = None
    mirrors: Mapping[str, Mirror] = field(default_factory=dict)

    def to_dict(self) -> dict[str, str | MirrorDict]:
        """JSON form: ``default`` first, then mirrors by name."""
        out: dict[str, str | MirrorDict] = {}
        if self.default is not None:
            out["default"] = self.default
        for name in sorted(self.mirrors):
            out[name] = self.mirrors[name].to_dict()
        return out

    def to_json(self) -> bytes:
        """Serialised ``mirrors.json``."""
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, *, where: str = "mirrors.json") -> MirrorDirectory:
        """Parse serialised ``mirrors.json``."""
        return cls.from_dict(parse(data, where=where, advice=_ADVICE), where=where)

    @classmethod
    def from_dict(cls, d: object, *, where: str = "mirrors.json") -> MirrorDirectory:
        """Parse ``mirrors.json`` content.

        Raises
        ------
        BadInputError
            When the content is not a mirror directory.
        """
        if not isinstance(d, Mapping):
            raise _bad(where, "the top level must be an object")
        default = d.get("default")
        if default is not None and not isinstance(default, str):
            raise _bad(where, "'default' must name a mirror")
        mirrors = {
            str(k): Mirror.from_dict(str(k), v, where=where)
            for k, v in d.items()
            if k != "default" and isinstance(v, Mapping)
        }
        return cls(default=default, mirrors=mirrors)
