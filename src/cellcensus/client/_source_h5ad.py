"""Source H5ADs of a census: their URI, and resumable, verified downloads.

Unlike the official client (which always reads the absolute ``h5ads.uri`` of the release entry
anonymously from AWS S3), the H5AD is resolved against the same release root and mirror as the
census, and read from wherever that is: a local directory, S3 (with the storage settings) or
HTTP. A download goes to ``<to_path>.part`` first, resumes from it when interrupted, and is
checked against the build's ``manifest.json`` (size and sha256) before it is renamed into place.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellcensus._storage import (
    DownloadMismatchError,
    download,
    read_bytes,
    size_of,
    uri_join,
)
from cellcensus.client._directory import ResolvedRelease, resolve_release
from cellcensus.client._open import DEFAULT_CENSUS_VERSION, open_resolved
from cellcensus.errors import BadInputError, DatasetNotFoundError, IntegrityError, NotFoundError

if TYPE_CHECKING:
    from cellcensus._formats.manifest import ManifestObject
    from cellcensus.client._types import CensusLocator
    from cellcensus.settings import Settings

__all__ = ["download_source_h5ad", "get_source_h5ad_uri"]

logger = logging.getLogger(__name__)


def _check_dataset_id(dataset_id: str) -> str:
    if not isinstance(dataset_id, str) or not dataset_id or any(c in dataset_id for c in "'\"\\\n"):
        msg = f"{dataset_id!r} is not a dataset id (expected e.g. 'cb5efdb0-f91c-4cbd-9ad4-...')"
        raise BadInputError(msg, field="dataset_id")
    return dataset_id


def _h5ad_path(r: ResolvedRelease, dataset_id: str, settings: Settings | None) -> str:
    with open_resolved(r, settings=settings) as census:
        info = census["census_info"]
        if "datasets" not in info:
            msg = f"census {r.tag} has no census_info/datasets table"
            raise NotFoundError(msg)
        tbl = (
            info["datasets"]
            .read(
                value_filter=f"dataset_id == '{dataset_id}'",
                column_names=["dataset_id", "dataset_h5ad_path"],
            )
            .concat()
        )
        if tbl.num_rows == 0:
            count = info["datasets"].count
            msg = (
                f"Unknown dataset_id {dataset_id!r}: census version {r.census_version!r} "
                f"({r.tag}) lists {count} datasets; see census['census_info']['datasets']"
            )
            raise DatasetNotFoundError(msg)
        return str(tbl["dataset_h5ad_path"][0].as_py())


def _locator(r: ResolvedRelease, path: str) -> CensusLocator:
    rel = r.description["h5ads"].get("relative_uri") or ""
    return {
        "uri": uri_join(r.h5ads_uri, path),
        "relative_uri": uri_join(rel, path) if rel else "",
        "s3_region": r.region,
    }


def get_source_h5ad_uri(
    dataset_id: str,
    *,
    census_version: str = DEFAULT_CENSUS_VERSION,
    mirror: str | None = None,
    release_root: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
) -> CensusLocator:
    """Where the source H5AD of a dataset is, in the same root and mirror as its census.

    Lifecycle: maturing.

    Parameters
    ----------
    dataset_id
        The dataset's id (``census_info/datasets`` column ``dataset_id``).
    census_version
        Version name.
    mirror
        Mirror name (default: the directory's default mirror).
    release_root, settings
        As for :func:`open_soma`.

    Returns
    -------
    CensusLocator
        ``uri`` (absolute), ``relative_uri`` (relative to the mirror) and ``s3_region``.

    Raises
    ------
    DatasetNotFoundError
        (a ``KeyError``) when the census does not list ``dataset_id``.
    CensusNotFoundError
        Unknown version or mirror.
    """
    _check_dataset_id(dataset_id)
    r = resolve_release(census_version, mirror=mirror, release_root=release_root, settings=settings)
    return _locator(r, _h5ad_path(r, dataset_id, settings))


def _manifest_entry(
    r: ResolvedRelease, h5ad_path: str, settings: Settings | None
) -> ManifestObject | None:
    from cellcensus.release import Manifest

    tag_base = r.h5ads_uri.rstrip("/").rsplit("/", 1)[0] + "/"
    candidates = [uri_join(tag_base, "manifest.json")]
    if not r.source.official:
        candidates.append(uri_join(r.source.root_uri, f"{r.tag}/manifest.json"))
    for uri in dict.fromkeys(candidates):
        try:
            data = read_bytes(uri, settings)
        except NotFoundError:
            continue
        manifest = Manifest.from_json(data, where=uri)
        entry = manifest.by_path().get(f"h5ads/{h5ad_path}")
        if entry is None:
            msg = f"{uri} does not list h5ads/{h5ad_path}: the build's manifest is incomplete"
            raise IntegrityError(msg)
        return entry
    logger.warning(
        "no manifest.json for build %s (looked at %s); the download is not verified",
        r.tag,
        ", ".join(candidates),
    )
    return None


def _bar(enabled: bool, total: int | None, initial: int) -> Any:  # noqa: ANN401 - tqdm or None
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="Downloading",
    )


def download_source_h5ad(
    dataset_id: str,
    to_path: str,
    *,
    census_version: str = DEFAULT_CENSUS_VERSION,
    progress_bar: bool = True,
    mirror: str | None = None,
    release_root: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    resume: bool = True,
    verify: bool = True,
) -> None:
    """Download a dataset's source H5AD to ``to_path``: resumable, verified against manifest.json.

    Lifecycle: maturing.

    Parameters
    ----------
    dataset_id
        The dataset's id.
    to_path
        File to create; must not exist. The download goes to ``<to_path>.part`` first.
    census_version
        Version name.
    progress_bar
        Show a progress bar (tqdm).
    mirror, release_root, settings
        Where to resolve the census (as for :func:`open_soma`); the H5AD comes from the same
        mirror.
    resume
        Continue an interrupted download from ``<to_path>.part`` (else start over).
    verify
        Check size and sha256 against the build's ``manifest.json`` (skipped, with a logged
        warning, for releases without one, such as the official CZI census).

    Raises
    ------
    BadInputError
        ``to_path`` exists or names a directory (a ``ValueError``, as in the official client).
    DatasetNotFoundError
        Unknown ``dataset_id`` (a ``KeyError``).
    IntegrityError
        The downloaded bytes do not match the manifest (the partial file is removed).
    """
    if os.path.exists(to_path):  # noqa: PTH110 - to_path is a str, as in the official API
        msg = f"Path exists - will not overwrite existing file: {to_path}"
        raise BadInputError(msg, field="to_path")
    if str(to_path).endswith("/"):
        msg = "Specify to_path as a file name, not a directory name."
        raise BadInputError(msg, field="to_path")
    _check_dataset_id(dataset_id)
    r = resolve_release(census_version, mirror=mirror, release_root=release_root, settings=settings)
    h5ad_path = _h5ad_path(r, dataset_id, settings)
    uri = _locator(r, h5ad_path)["uri"]
    entry = _manifest_entry(r, h5ad_path, settings) if verify else None
    expected = entry.size if entry is not None else size_of(uri, settings)
    dest = Path(to_path)
    bar = _bar(progress_bar, expected, 0)
    try:
        done = download(
            uri,
            dest,
            settings=settings,
            size=expected if expected >= 0 else None,  # -1: no Content-Length
            sha256=entry.sha256 if entry is not None else None,
            resume=resume,
            progress=bar.update if bar is not None else None,
        )
    except DownloadMismatchError as e:
        if entry is None:
            raise
        got = f"size {e.size}" if e.size != entry.size else f"sha256 {e.sha256}"
        msg = (
            f"download of {uri} does not match the manifest (expected size {entry.size}, "
            f"sha256 {entry.sha256}; got {got}); the partial file was removed, run again"
        )
        raise IntegrityError(msg) from e
    finally:
        if bar is not None:
            bar.close()
    logger.info("downloaded %s to %s (resumed at byte %d)", uri, dest, done.resumed_from)
