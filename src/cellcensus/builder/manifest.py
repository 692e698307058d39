"""The build manifest: which H5AD datasets go into a census, with their descriptive fields.

Accepts the official Census builder's CSV format (``dataset_id, dataset_asset_h5ad_uri`` plus
optional
``dataset_version_id, dataset_title, collection_id, collection_name, collection_doi,
collection_doi_label, citation``; ``h5ad_uri`` is an alias of ``dataset_asset_h5ad_uri``) or a
directory
of ``.h5ad`` files (dataset id = file stem).
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import unquote, urlparse

from cellcensus.errors import BadInputError

__all__ = ["ManifestEntry", "load_manifest", "validate_dataset_id"]

logger = logging.getLogger(__name__)

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_URI_ALIASES = ("dataset_asset_h5ad_uri", "h5ad_uri")
_IGNORED_COLUMNS = frozenset({"cell_count", "mean_genes_per_cell", "schema_version"})


@dataclass(frozen=True, kw_only=True)
class ManifestEntry:
    """One source dataset of a build.

    ``uri`` is a local path, a ``file://`` URI or an ``s3://`` URI; relative paths are resolved
    against the manifest's directory.
    """

    dataset_id: str
    uri: str
    dataset_version_id: str = ""
    dataset_title: str = ""
    collection_id: str = ""
    collection_name: str = ""
    collection_doi: str = ""
    collection_doi_label: str = ""
    citation: str = ""
    asset_h5ad_filesize: int = -1  # optional; when given, the build order and a size check

    @property
    def is_s3(self) -> bool:
        """True when the source is read from S3 (and must be staged by download)."""
        return self.uri.startswith("s3://")

    def local_path(self) -> Path:
        """The local file of a local or ``file://`` source."""
        if self.uri.startswith("file://"):
            return Path(unquote(urlparse(self.uri).path))
        return Path(self.uri)


_OPTIONAL = tuple(
    f.name
    for f in fields(ManifestEntry)
    if f.name not in ("dataset_id", "uri", "asset_h5ad_filesize")
)


def validate_dataset_id(dataset_id: str) -> str:
    """Return ``dataset_id`` if it is safe to use as a file name, else raise BadInputError.

    Ids name ``h5ads/<dataset_id>.h5ad`` in a release, so they may hold only letters, digits,
    ``.``, ``_`` and ``-``, must start with a letter or digit, and must not contain ``..``.
    """
    if not _ID_RE.fullmatch(dataset_id) or ".." in dataset_id:
        msg = (
            "dataset_id must be 1-200 characters of letters, digits, '.', '_' or '-', start with a "
            "letter or digit and contain no '..' (it names a file in the release)"
        )
        raise BadInputError(
            msg,
            dataset_id=dataset_id,
            field="dataset_id",
        )
    return dataset_id


def _resolve_uri(uri: str, base: Path) -> str:
    uri = uri.strip()
    if not uri:
        msg = "empty URI"
        raise BadInputError(msg, field="dataset_asset_h5ad_uri")
    scheme = urlparse(uri).scheme
    if scheme in {"s3", "file"}:
        return uri
    if scheme and len(scheme) > 1:
        msg = f"unsupported URI scheme {scheme!r} in {uri!r}: use a local path, file:// or s3://"
        raise BadInputError(
            msg,
            field="dataset_asset_h5ad_uri",
        )
    path = Path(uri).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _from_csv(path: Path) -> list[ManifestEntry]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        msg = f"cannot read manifest {path}: {e.strerror or e}"
        raise BadInputError(msg) from e
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    if "dataset_id" not in header:
        msg = (
            f"manifest {path} has no 'dataset_id' column (header: {header}); expected the official "
            "format 'dataset_id,dataset_asset_h5ad_uri,...'"
        )
        raise BadInputError(
            msg,
            field="dataset_id",
        )
    uri_col = next((c for c in _URI_ALIASES if c in header), None)
    if uri_col is None:
        msg = f"manifest {path} has no 'dataset_asset_h5ad_uri' (or 'h5ad_uri') column"
        raise BadInputError(
            msg,
            field="dataset_asset_h5ad_uri",
        )
    unknown = set(header) - {"dataset_id", *_URI_ALIASES, *_OPTIONAL, *_IGNORED_COLUMNS}
    if unknown:
        logger.warning("manifest %s: ignoring unknown columns %s", path, sorted(unknown))
    entries = []
    for lineno, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        if not any(row.values()):
            continue
        dataset_id = validate_dataset_id(row["dataset_id"])
        try:
            uri = _resolve_uri(row[uri_col], path.parent)
        except BadInputError as e:
            msg = f"manifest line {lineno}: {e}"
            raise BadInputError(msg, dataset_id=dataset_id) from e
        size_text = row.get("asset_h5ad_filesize", "")
        try:
            size = int(size_text) if size_text else -1
        except ValueError as e:
            msg = f"manifest line {lineno}: asset_h5ad_filesize {size_text!r} is not an integer"
            raise BadInputError(
                msg,
                dataset_id=dataset_id,
                field="asset_h5ad_filesize",
            ) from e
        entries.append(
            ManifestEntry(
                dataset_id=dataset_id,
                uri=uri,
                asset_h5ad_filesize=size,
                **{k: row.get(k, "") for k in _OPTIONAL},
            )
        )
    return entries


def _from_directory(path: Path) -> list[ManifestEntry]:
    files = sorted(p for p in path.iterdir() if p.suffix == ".h5ad" and p.is_file())
    return [
        ManifestEntry(dataset_id=validate_dataset_id(p.stem), uri=str(p.resolve())) for p in files
    ]


def load_manifest(source: str | Path) -> list[ManifestEntry]:
    """Read a manifest CSV, or list a directory of ``.h5ad`` files, into manifest entries.

    Parameters
    ----------
    source
        Path of a CSV manifest in the official Census builder format, or of a directory whose
        ``*.h5ad`` files are the datasets (sorted by name; the id is the file stem).

    Returns
    -------
    list[ManifestEntry]
        Entries in build order: manifest order, stably sorted by ``asset_h5ad_filesize`` when
        the manifest gives sizes (as the official builder orders them).

    Raises
    ------
    BadInputError
        Missing columns, unsafe or duplicate dataset ids, unsupported URIs, or no datasets.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        entries = _from_directory(path)
    elif path.is_file():
        entries = _from_csv(path)
    else:
        msg = f"manifest {path} does not exist (give a CSV file or a directory)"
        raise BadInputError(msg)
    seen: set[str] = set()
    for e in entries:
        if e.dataset_id in seen:
            msg = "duplicate dataset_id in manifest; each dataset may appear once"
            raise BadInputError(
                msg,
                dataset_id=e.dataset_id,
                field="dataset_id",
            )
        seen.add(e.dataset_id)
    if not entries:
        msg = f"manifest {path} lists no datasets"
        raise BadInputError(msg)
    return sorted(entries, key=lambda e: e.asset_h5ad_filesize)
