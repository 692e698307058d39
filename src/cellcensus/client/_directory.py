"""Which release directory to read, and reading it: ``release.json`` and ``mirrors.json``.

The release root is chosen, first match wins, by

1. the ``release_root=`` argument of a call,
2. :func:`configure` (process-wide),
3. the ``CELLCENSUS_RELEASE_ROOT`` environment variable,
4. the official CZ CELLxGENE Discover directory (the URLs ``cellxgene_census`` uses).

A root is a local directory, ``file://``, ``s3://bucket/prefix/`` or ``http(s)://host/prefix/``
holding ``release.json`` and ``mirrors.json``; a value ending in ``.json`` names the release
directory file itself (its ``mirrors.json`` is looked for beside it). Remote directory files are
cached for a short time (:data:`DEFAULT_CACHE_TTL`, see :func:`configure`).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from cellcensus import settings as _settings
from cellcensus._formats.directory import (
    Locator,
    Mirror,
    MirrorDirectory,
    ReleaseDirectory,
    ReleaseEntry,
)
from cellcensus._storage import (
    is_local,
    is_s3,
    local_path,
    read_bytes,
    read_settings,
    uri_join,
)
from cellcensus.client._types import CensusMirror, CensusVersionDescription
from cellcensus.errors import BadInputError, CensusNotFoundError, ConfigError, NotFoundError
from cellcensus.settings import (
    DEFAULT_CACHE_TTL,
    ENV_RELEASE_ROOT,
    client_config,
)

if TYPE_CHECKING:
    import os

    from cellcensus.settings import ClientConfig, Settings

__all__ = [
    "DEFAULT_CACHE_TTL",
    "ENV_RELEASE_ROOT",
    "ReleaseSource",
    "ResolvedRelease",
    "clear_cache",
    "configure",
    "get_census_mirror_directory",
    "get_census_version_description",
    "get_census_version_directory",
    "release_source",
    "resolve_release",
]

logger = logging.getLogger(__name__)

#: The official CZ CELLxGENE Discover release directory (the URLs ``cellxgene_census`` 1.18 reads).
OFFICIAL_RELEASE_DIRECTORY_URL = (
    "https://census.cellxgene.cziscience.com/cellxgene-census/v1/release.json"
)
OFFICIAL_MIRRORS_DIRECTORY_URL = (
    "https://census.cellxgene.cziscience.com/cellxgene-census/v1/mirrors.json"
)
_PROVIDERS = ("S3", "file", "unknown")
_DESCRIPTION_KEYS = tuple(CensusVersionDescription.__annotations__)


_lock = threading.Lock()
_cache: dict[tuple[str, Settings | None], tuple[float, bytes]] = {}


def configure(
    *,
    release_root: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    cache_ttl: float | None = None,
) -> ClientConfig:
    """Set process-wide defaults for the client (arguments of a call still win).

    Lifecycle: maturing.

    Parameters
    ----------
    release_root
        Default release root (path, ``file://``, ``s3://``, ``http(s)://``, or a
        ``release.json`` URL). ``None`` leaves the current value; pass ``""`` to unset it.
    settings
        Default storage settings for S3 locations (endpoint, region, credentials).
    cache_ttl
        Seconds to reuse a fetched remote directory file; ``0`` disables the cache.

    Returns
    -------
    ClientConfig
        The configuration now in effect.
    """
    with _lock:
        config = _settings.configure(
            release_root=release_root, settings=settings, cache_ttl=cache_ttl
        )
        _cache.clear()
    return config


def default_settings(settings: Settings | None) -> Settings | None:
    """``settings`` if given, else the configured default (may be ``None``)."""
    return settings if settings is not None else client_config().settings


def clear_cache() -> None:
    """Forget cached directory files (the next call fetches them again), and what gene queries
    keep per release (obs frames, var selections, open copies: read again by the next one)."""
    from cellcensus.client._routecache import clear

    with _lock:
        _cache.clear()
    clear()


@dataclass(frozen=True)
class ReleaseSource:
    """Where a release directory lives."""

    #: The root (with a trailing ``/``), as given or as a ``file://`` URI for a path.
    root_uri: str
    #: ``release.json``.
    directory_uri: str
    #: ``mirrors.json``.
    mirrors_uri: str
    #: Whether this is the official CZ CELLxGENE Discover directory.
    official: bool = False

    @property
    def is_local(self) -> bool:
        """Whether the root is on the local file system."""
        return is_local(self.root_uri)


def _normalise_root(root: str) -> str:
    parsed = urllib.parse.urlparse(root)
    if parsed.scheme in ("s3", "http", "https", "file"):
        if parsed.scheme == "s3" and not parsed.netloc:
            msg = f"release root {root!r} names no bucket; use s3://bucket/prefix/"
            raise ConfigError(msg)
        return root
    if parsed.scheme and len(parsed.scheme) > 1:
        msg = (
            f"release root {root!r} has unsupported scheme {parsed.scheme!r}; use a directory, "
            "file:///path, s3://bucket/prefix/ or http(s)://host/prefix/"
        )
        raise ConfigError(msg)
    return Path(root).expanduser().resolve().as_uri()


def release_source(release_root: str | os.PathLike[str] | None = None) -> ReleaseSource:
    """Resolve which release directory to use (argument, :func:`configure`, env, official).

    Raises
    ------
    ConfigError
        For an unsupported scheme.
    """
    given = (
        str(release_root)
        if release_root is not None and str(release_root)
        else client_config().release_root
    )
    if given is None:
        directory = OFFICIAL_RELEASE_DIRECTORY_URL
        mirrors = OFFICIAL_MIRRORS_DIRECTORY_URL
        return ReleaseSource(
            root_uri=directory.rsplit("/", 1)[0] + "/",
            directory_uri=directory,
            mirrors_uri=mirrors,
            official=True,
        )
    uri = _normalise_root(given)
    if uri.endswith(".json"):
        base = uri.rsplit("/", 1)[0] + "/"
        return ReleaseSource(root_uri=base, directory_uri=uri, mirrors_uri=base + "mirrors.json")
    base = uri.rstrip("/") + "/"
    return ReleaseSource(
        root_uri=base, directory_uri=base + "release.json", mirrors_uri=base + "mirrors.json"
    )


def _fetch(uri: str, settings: Settings | None) -> bytes:
    """Read a directory file, through the short cache for remote ones."""
    if is_local(uri):
        return read_bytes(uri, settings)
    key = (uri, settings)  # the credentials are part of the key
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
        ttl = client_config().cache_ttl
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    data = read_bytes(uri, settings)
    if ttl > 0:
        with _lock:
            _cache[key] = (now, data)
    return data


def _fetch_file(uri: str, settings: Settings | None, what: str) -> bytes:
    try:
        return _fetch(uri, settings)
    except NotFoundError as e:
        msg = (
            f"no {what} at {uri}: is this a cellcensus release root? Publish a build there "
            f"(`cellcensus publish`) or point release_root / {ENV_RELEASE_ROOT} at another root"
        )
        raise NotFoundError(msg) from e


def _storage(settings: Settings | None, source: ReleaseSource) -> Settings | None:
    if is_s3(source.root_uri):
        return read_settings(default_settings(settings))
    return default_settings(settings)


def _read_directory(source: ReleaseSource, settings: Settings | None) -> ReleaseDirectory:
    """``release.json`` through its one model (clear errors for malformed entries)."""
    data = _fetch_file(source.directory_uri, _storage(settings, source), "release directory")
    return ReleaseDirectory.from_json(data, where=source.directory_uri)


def _read_mirrors(source: ReleaseSource, settings: Settings | None) -> MirrorDirectory:
    """``mirrors.json`` through its one model."""
    data = _fetch_file(source.mirrors_uri, _storage(settings, source), "mirror directory")
    return MirrorDirectory.from_json(data, where=source.mirrors_uri)


def _description(entry: ReleaseEntry) -> CensusVersionDescription:
    """The official client's description of a build: its entry's fields, in its layout."""
    d: dict[str, Any] = dict(entry.to_dict())
    return cast("CensusVersionDescription", {k: d[k] for k in _DESCRIPTION_KEYS if k in d})


def _versions(
    directory: ReleaseDirectory, *, lts: bool | None, retracted: bool | None
) -> dict[str, CensusVersionDescription]:
    """The official client's view of ``release.json``: aliases resolved (dangling and looping
    ones dropped), fields limited to the description's, filtered by flags, ordered aliases
    first then builds, each by name descending."""
    targets: dict[str, ReleaseEntry] = dict(directory.builds)
    aliases: list[str] = []
    for name in directory.aliases:
        try:
            targets[name] = directory.builds[directory.resolve(name)]
        except NotFoundError:
            logger.warning("release directory: alias %r dangles or loops; ignored", name)
            continue
        aliases.append(name)
    wanted = {"lts": lts, "retracted": retracted}
    out: OrderedDict[str, CensusVersionDescription] = OrderedDict()
    for names in (sorted(aliases, reverse=True), sorted(directory.builds, reverse=True)):
        for name in names:
            e = targets[name]
            flags = {"lts": e.lts, "retracted": e.retracted}
            if any(v is not None and flags[k] != v for k, v in wanted.items()):
                continue
            out[name] = _description(e)
    return out


def get_census_version_directory(
    *,
    lts: bool | None = None,
    retracted: bool | None = False,
    release_root: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> dict[str, CensusVersionDescription]:
    """The census versions of a release directory, optionally filtered by flags.

    Lifecycle: maturing.

    Same result as ``cellxgene_census.get_census_version_directory`` for the same directory:
    aliases (``stable``, ``latest``, ``V#``) appear as copies of their build's description,
    aliases first, then builds, each ordered by name descending; retracted builds are excluded
    unless ``retracted`` is ``True`` or ``None``.

    Parameters
    ----------
    lts
        Keep only LTS (``True``) or only non-LTS (``False``) versions; ``None`` keeps both.
    retracted
        Keep only retracted (``True``) or only non-retracted (``False``, the default) versions;
        ``None`` keeps both.
    release_root
        Release root to read (default: :func:`configure`, ``CELLCENSUS_RELEASE_ROOT``, then the
        official directory).
    settings
        Storage settings for an ``s3://`` root.

    Returns
    -------
    dict[str, CensusVersionDescription]
        Version name to description.
    """
    source = release_source(release_root)
    return _versions(_read_directory(source, settings), lts=lts, retracted=retracted)


def _not_found(
    census_version: str, source: ReleaseSource, directory: ReleaseDirectory
) -> Exception:
    hidden = _versions(directory, lts=None, retracted=True)
    if census_version in hidden:
        d = hidden[census_version]
        r: dict[str, Any] = dict(d.get("retraction") or {})
        replaced = r.get("replaced_by")
        extra = f" and replaced by {replaced!r}" if replaced else ""
        return CensusNotFoundError(
            f'The "{census_version}" Census version ({d["release_build"]}) was retracted'
            f"{extra}; reason: {r.get('reason')}. "
            "Use get_census_version_directory() to see the valid versions."
        )
    known = list(_versions(directory, lts=None, retracted=False))
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "") if known else "none"
    return CensusNotFoundError(
        f'The "{census_version}" Census version is not valid: it is not in {source.directory_uri} '
        f"(known versions: {shown}). Use get_census_version_directory() to retrieve the "
        "available versions."
    )


def get_census_version_description(
    census_version: str,
    *,
    release_root: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> CensusVersionDescription:
    """The description of one census version (a build tag or an alias).

    Lifecycle: maturing.

    Parameters
    ----------
    census_version
        Version name, e.g. ``"stable"``, ``"latest"`` or a build tag.
    release_root, settings
        As for :func:`get_census_version_directory`.

    Returns
    -------
    CensusVersionDescription
        The release entry (``release_build``, ``soma``, ``h5ads``, ``flags``, ...).

    Raises
    ------
    CensusNotFoundError
        (a ``ValueError``) when the version is unknown or retracted.
    """
    return _find_version(release_source(release_root), settings, census_version)[0]


def _find_version(
    source: ReleaseSource, settings: Settings | None, census_version: str
) -> tuple[CensusVersionDescription, ReleaseEntry]:
    directory = _read_directory(source, settings)
    versions = _versions(directory, lts=None, retracted=False)
    if census_version not in versions:
        raise _not_found(census_version, source, directory)
    tag = directory.resolve(census_version)
    return versions[census_version], directory.builds[tag]


def get_census_mirror_directory(
    *,
    release_root: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> dict[str, CensusMirror]:
    """The mirrors of a release directory (``mirrors.json`` without its ``default`` key).

    Lifecycle: maturing.

    Parameters
    ----------
    release_root, settings
        As for :func:`get_census_version_directory`.

    Returns
    -------
    dict[str, CensusMirror]
        Mirror name to ``provider``, ``base_uri``, ``region``, ``embeddings_base_uri``.
    """
    mirrors = _read_mirrors(release_source(release_root), settings).mirrors
    return {k: _census_mirror(m) for k, m in mirrors.items()}


def _census_mirror(m: Mirror) -> CensusMirror:
    """The official client's shape of a mirror."""
    return cast("CensusMirror", m.to_dict())


@dataclass(frozen=True)
class ResolvedRelease:
    """A census version resolved against a mirror: where its SOMA collection and H5ADs are."""

    census_version: str
    description: CensusVersionDescription
    source: ReleaseSource
    mirror_name: str | None
    soma_uri: str
    h5ads_uri: str
    region: str | None
    provider: str

    @property
    def tag(self) -> str:
        """The build tag (``release_build``)."""
        return self.description["release_build"]


def _select_mirror(
    source: ReleaseSource, settings: Settings | None, mirror: str | None
) -> tuple[str | None, CensusMirror | None]:
    try:
        directory = _read_mirrors(source, settings)
    except NotFoundError:
        if mirror is not None:
            raise
        logger.info("%s has no mirrors.json; using the absolute locators", source.root_uri)
        return None, None
    name = mirror if mirror is not None else directory.default
    m = directory.mirrors.get(name) if name is not None else None
    if m is None:
        if mirror is None:
            msg = f"{source.mirrors_uri}: the default mirror {name!r} is not defined"
            raise BadInputError(msg)
        msg = (
            f"Mirror not found: {mirror!r} is not in {source.mirrors_uri} "
            f"(known mirrors: {', '.join(sorted(directory.mirrors)) or 'none'})"
        )
        raise CensusNotFoundError(msg)
    if m.provider not in _PROVIDERS:
        msg = (
            f"Unsupported mirror provider: {m.provider!r} (mirror {name!r} in "
            f"{source.mirrors_uri}); supported providers: {', '.join(_PROVIDERS)}"
        )
        raise BadInputError(msg)
    return name, _census_mirror(m)


def _locate(locator: Locator, mirror: CensusMirror | None) -> tuple[str, str | None]:
    if locator.relative_uri and mirror is not None:
        return uri_join(mirror["base_uri"], locator.relative_uri), mirror.get("region")
    if not locator.uri:
        msg = "a release entry has neither a usable relative_uri (with a mirror) nor a uri"
        raise BadInputError(msg)
    return locator.uri, locator.s3_region


def _local_fallback(uri: str, source: ReleaseSource, tag: str, part: str) -> str:
    """For a local root copied elsewhere, find ``<root>/<tag>/<part>/`` when ``uri`` is gone."""
    if not is_local(uri) or not source.is_local or local_path(uri).exists():
        return uri
    candidate = local_path(source.root_uri) / tag / part
    if candidate.exists():
        logger.info("%s is missing; using %s inside the release root", uri, candidate)
        return candidate.as_uri() + "/"
    return uri


def resolve_release(
    census_version: str,
    *,
    mirror: str | None = None,
    release_root: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> ResolvedRelease:
    """Resolve a version name and a mirror to the URIs of the build's SOMA collection and H5ADs.

    Raises
    ------
    CensusNotFoundError
        Unknown version or mirror (a ``ValueError``, as in the official client).
    """
    source = release_source(release_root)
    description, entry = _find_version(source, settings, census_version)
    name, m = _select_mirror(source, settings, mirror)
    soma_uri, region = _locate(entry.soma, m)
    h5ads_uri, _ = _locate(entry.h5ads, m)
    tag = entry.release_build
    provider = m["provider"] if m is not None else "unknown"
    return ResolvedRelease(
        census_version=census_version,
        description=description,
        source=source,
        mirror_name=name,
        soma_uri=_local_fallback(soma_uri, source, tag, "soma"),
        h5ads_uri=_local_fallback(h5ads_uri, source, tag, "h5ads"),
        region=region,
        provider=provider,
    )
