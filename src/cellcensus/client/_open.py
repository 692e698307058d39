"""``open_soma`` and SOMA contexts: the official client's behaviour over any release root."""

from __future__ import annotations

import functools
import logging
import os
from typing import TYPE_CHECKING, Any

import cellxgene_census
import tiledbsoma as soma

from cellcensus._compat import storage_failure, tiledb_error_types
from cellcensus._storage import is_local, is_s3, local_path, read_settings
from cellcensus.client._directory import ResolvedRelease, default_settings, resolve_release
from cellcensus.errors import (
    AccessDeniedError,
    BadInputError,
    CollectionNotFoundError,
    ConfigError,
    ReleaseRootUnreachableError,
)
from cellcensus.settings import DEFAULT_REGION, ENV_PREFIX

if TYPE_CHECKING:
    from cellcensus.settings import Settings

__all__ = [
    "DEFAULT_CENSUS_VERSION",
    "get_default_soma_context",
    "open_resolved",
    "open_soma",
    "storage_config",
]

logger = logging.getLogger(__name__)

DEFAULT_CENSUS_VERSION = "stable"
_REGION_ENV = (ENV_PREFIX + "REGION", "AWS_REGION", "AWS_DEFAULT_REGION")


def get_default_soma_context(tiledb_config: dict[str, Any] | None = None) -> soma.SOMATileDBContext:
    """A :class:`tiledbsoma.SOMATileDBContext` with the official client's defaults.

    Lifecycle: maturing.

    Identical to ``cellxgene_census.get_default_soma_context``: 1 GiB initial read buffers,
    unsigned S3 requests, region ``us-west-2``; ``tiledb_config`` entries override those.

    Parameters
    ----------
    tiledb_config
        TileDB configuration parameters overriding the defaults.

    Returns
    -------
    tiledbsoma.SOMATileDBContext
        The context (customise further with ``.replace(tiledb_config=...)``).
    """
    return cellxgene_census.get_default_soma_context(tiledb_config=tiledb_config)


def storage_config(settings: Settings | None) -> dict[str, str]:
    """TileDB ``vfs.s3.*`` keys for reading S3 locations with ``settings`` (or the environment).

    Without explicit settings, the region is only set when the environment names one, so that
    the official default (``us-west-2``) and mirror regions keep applying.
    """
    explicit = default_settings(settings)
    s = read_settings(explicit)
    cfg = s.tiledb_config()
    if (
        explicit is None
        and s.region == DEFAULT_REGION
        and not any(os.environ.get(k) for k in _REGION_ENV)
    ):
        cfg.pop("vfs.s3.region", None)
    return cfg


def _context(
    uri: str,
    *,
    provider: str,
    region: str | None,
    tiledb_config: dict[str, Any] | None,
    context: soma.SOMATileDBContext | None,
    settings: Settings | None,
) -> soma.SOMATileDBContext:
    if context is None:
        cfg: dict[str, Any] = {}
        if is_s3(uri):
            cfg.update(storage_config(settings))
        cfg.update(tiledb_config or {})
        context = _shared_context(tuple(sorted((str(k), str(v)) for k, v in cfg.items())))
    if provider == "S3" and region:
        # a bucket and its region go together: the mirror's region wins (official behaviour)
        context = context.replace(tiledb_config={"vfs.s3.region": region})
    return context


@functools.lru_cache(maxsize=16)
def _shared_context(config: tuple[tuple[str, str], ...]) -> soma.SOMATileDBContext:
    """The official client's default context with ``config``, one per configuration in a
    process (as ``tiledbsoma`` intends contexts to be shared): a census opened again reuses
    its TileDB context (thread pools, caches) instead of starting a new one. Its timestamp is
    unset, so every open still reads the census as of that open."""
    return get_default_soma_context(tiledb_config=dict(config))


def _open(uri: str, context: soma.SOMATileDBContext, what: str) -> soma.Collection[Any]:
    if is_local(uri) and not local_path(uri).exists():
        msg = f"{what}: {local_path(uri)} does not exist"
        raise CollectionNotFoundError(msg)
    try:
        return soma.open(uri, mode="r", soma_type=soma.Collection, context=context)
    except soma.DoesNotExistError as e:
        hint = (
            "for S3 this is also what a refused request (wrong keys, private bucket) looks like: "
            "check the storage settings (endpoint, credentials, CELLCENSUS_S3_*)"
            if is_s3(uri)
            else "check the path"
        )
        msg = f"{what}: no SOMA collection at {uri} ({hint})"
        raise CollectionNotFoundError(msg) from e
    except tiledb_error_types() as e:
        kind = storage_failure(e)
        if kind == "denied":
            msg = (
                f"{what}: access to {uri} was denied (HTTP 403): check the storage credentials "
                "(settings=, CELLCENSUS_S3_* / AWS_* keys or profile)"
            )
            raise AccessDeniedError(msg) from e
        if kind == "unreachable":
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            msg = f"{what}: cannot reach the storage holding {uri}: {first}"
            raise ReleaseRootUnreachableError(msg) from e
        raise


def open_soma(
    *,
    census_version: str | None = DEFAULT_CENSUS_VERSION,
    mirror: str | None = None,
    uri: str | None = None,
    tiledb_config: dict[str, Any] | None = None,
    context: soma.SOMATileDBContext | None = None,
    release_root: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> soma.Collection[Any]:
    """Open a census by version (from a release root) or by URI.

    Lifecycle: maturing.

    Same behaviour as ``cellxgene_census.open_soma``, over any release root, with these
    differences: ``uri`` together with a non-default ``census_version`` (or a ``mirror``) is an
    error instead of silently ignoring the version; unknown versions and mirrors are reported
    with the names that exist; S3 locations use the storage ``settings`` (endpoint, keys).

    Parameters
    ----------
    census_version
        Version name (``"stable"``, ``"latest"``, a tag or another alias).
    mirror
        Mirror name from ``mirrors.json``; default: the directory's default mirror.
    uri
        Open this SOMA collection directly (path, ``file://`` or ``s3://``) instead.
    tiledb_config
        TileDB parameters overriding :func:`get_default_soma_context`'s (and the storage
        settings'). Not together with ``context``.
    context
        A complete :class:`tiledbsoma.SOMATileDBContext`. Not together with ``tiledb_config``.
    release_root
        Release root to resolve ``census_version`` in (default: :func:`configure`,
        ``CELLCENSUS_RELEASE_ROOT``, then the official directory).
    settings
        Storage settings for S3 roots, mirrors and URIs (default: from the environment).

    Returns
    -------
    tiledbsoma.Collection
        The census root collection (use it as a context manager).

    Raises
    ------
    ConfigError
        ``tiledb_config`` and ``context`` both given (a ``ValueError``).
    BadInputError
        ``uri`` with a non-default ``census_version``, a ``mirror`` or a ``release_root``;
        neither a version nor a URI (``ValueError``).
    CensusNotFoundError
        Unknown version or mirror (a ``ValueError``).
    CollectionNotFoundError
        Nothing to open at the resolved location (also ``tiledbsoma.DoesNotExistError``).
    AccessDeniedError
        The storage refused access (also ``tiledbsoma.SOMAError``).
    ReleaseRootUnreachableError
        The release root or storage cannot be reached.
    """
    if tiledb_config is not None and context is not None:
        msg = (
            "Only one of tiledb_config and context can be specified: pass the TileDB settings "
            "in tiledb_config, or build a context with get_default_soma_context(tiledb_config)"
        )
        raise ConfigError(msg)
    if uri is not None:
        if census_version not in (None, DEFAULT_CENSUS_VERSION):
            msg = (
                f"uri={uri!r} and census_version={census_version!r} were both given; a uri opens "
                "exactly that collection, so drop census_version (or drop uri to resolve the "
                "version in the release directory)"
            )
            raise BadInputError(msg, field="census_version")
        if mirror is not None:
            msg = f"uri={uri!r} and mirror={mirror!r} were both given; drop one of them"
            raise BadInputError(msg, field="mirror")
        if release_root is not None:
            msg = (
                f"uri={uri!r} and release_root={str(release_root)!r} were both given; a uri "
                "opens one collection without a release directory: drop one of them"
            )
            raise BadInputError(msg, field="release_root")
        ctx = _context(
            uri,
            provider="unknown",
            region=None,
            tiledb_config=tiledb_config,
            context=context,
            settings=settings,
        )
        return _open(uri, ctx, f"open_soma(uri={uri!r})")
    if census_version is None:
        msg = "Must specify either a census version or an explicit URI."
        raise BadInputError(msg, field="census_version")
    r = resolve_release(census_version, mirror=mirror, release_root=release_root, settings=settings)
    return open_resolved(r, tiledb_config=tiledb_config, context=context, settings=settings)


def open_resolved(
    r: ResolvedRelease,
    *,
    tiledb_config: dict[str, Any] | None = None,
    context: soma.SOMATileDBContext | None = None,
    settings: Settings | None = None,
) -> soma.Collection[Any]:
    """Open the SOMA collection of a resolved release."""
    census_version = r.census_version
    if census_version == DEFAULT_CENSUS_VERSION:
        logger.info(
            'The "%s" release is currently %s. Specify census_version="%s" in future calls to '
            "open_soma() to ensure data consistency.",
            census_version,
            r.tag,
            r.tag,
        )
    ctx = _context(
        r.soma_uri,
        provider=r.provider,
        region=r.region,
        tiledb_config=tiledb_config,
        context=context,
        settings=settings,
    )
    where = f"census version {census_version!r} ({r.tag}, mirror {r.mirror_name or 'none'})"
    return _open(r.soma_uri, ctx, where)
