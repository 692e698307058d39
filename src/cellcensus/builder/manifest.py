"""The build manifest: which H5AD datasets go into a census, with their descriptive fields.

Accepts the official Census builder's CSV format (``dataset_id, dataset_asset_h5ad_uri`` plus
optional
``dataset_version_id, dataset_title, collection_id, collection_name, collection_doi,
collection_doi_label, citation``; ``h5ad_uri`` is an alias of ``dataset_asset_h5ad_uri``) or a
directory
of ``.h5ad`` files (dataset id = file stem), and the official builder's dataset blocklist (one
dataset id a line, blank lines and ``#`` comments ignored).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from cellcensus._storage.uri import is_s3, local_path
from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "ManifestEntry",
    "apply_blocklist",
    "load_blocklist",
    "load_manifest",
    "validate_dataset_id",
]

logger = logging.getLogger(__name__)

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_URI_ALIASES = ("dataset_asset_h5ad_uri", "h5ad_uri")
_IGNORED_COLUMNS = frozenset({"cell_count", "mean_genes_per_cell", "schema_version"})
#: Most items of a list (columns, ids) an error or warning shows; the rest are counted.
_SHOWN = 5
#: Longest input value (id, column name) an error or warning repeats; longer ones are cut.
_ECHO = 80


def _echo(value: str) -> str:
    """``value`` for a message: cut to a readable length (input may be arbitrarily long)."""
    return value if len(value) <= _ECHO else f"{value[:_ECHO]}… ({len(value)} characters)"


def _some(values: list[str]) -> str:
    """The first few of ``values`` for a message, and how many more there are."""
    shown = ", ".join(repr(_echo(v)) for v in values[:_SHOWN])
    return shown + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


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
        return is_s3(self.uri)

    def local_path(self) -> Path:
        """The local file of a local or ``file://`` source."""
        return local_path(self.uri)


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
    if not isinstance(dataset_id, str) or not _ID_RE.fullmatch(dataset_id) or ".." in dataset_id:
        msg = (
            "dataset_id must be 1-200 characters of letters, digits, '.', '_' or '-', start with a "
            "letter or digit and contain no '..' (it names a file in the release)"
        )
        raise BadInputError(
            msg,
            dataset_id=_echo(str(dataset_id)),
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


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        msg = f"{what} {path} is not UTF-8 text (byte {e.start}: {e.reason}); save it as UTF-8 CSV"
        raise BadInputError(msg) from e
    except OSError as e:
        msg = f"cannot read {what} {path}: {e.strerror or e}"
        raise BadInputError(msg) from e


def _header(reader: Iterator[list[str]], path: Path) -> list[str]:
    try:
        first = next(reader, None)
    except csv.Error as e:
        msg = f"manifest {path} line 1 is not valid CSV ({e}); expected 'dataset_id,...'"
        raise BadInputError(msg) from e
    header = [h.strip() for h in (first or [])]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        msg = f"manifest {path}: the header names columns {_some(dupes)} more than once"
        raise BadInputError(msg)
    if "dataset_id" not in header:
        msg = (
            f"manifest {path} has no 'dataset_id' column (header: {_some(header) or 'empty'}); "
            "expected the official format 'dataset_id,dataset_asset_h5ad_uri,...'"
        )
        raise BadInputError(
            msg,
            field="dataset_id",
        )
    return header


def _from_csv(path: Path) -> list[ManifestEntry]:
    text = _read_text(path, "manifest")
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        msg = f"manifest {path} line {line} contains a NUL byte; it is not a CSV text file"
        raise BadInputError(msg)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _header(reader, path)
    uri_col = next((c for c in _URI_ALIASES if c in header), None)
    if uri_col is None:
        msg = f"manifest {path} has no 'dataset_asset_h5ad_uri' (or 'h5ad_uri') column"
        raise BadInputError(
            msg,
            field="dataset_asset_h5ad_uri",
        )
    unknown = sorted(set(header) - {"dataset_id", *_URI_ALIASES, *_OPTIONAL, *_IGNORED_COLUMNS})
    if unknown:
        logger.warning("manifest %s: ignoring unknown columns %s", path, _some(unknown))
    entries = []
    while True:
        try:
            fields_ = next(reader, None)
        except csv.Error as e:
            msg = f"manifest {path} line {reader.line_num}: not valid CSV ({e})"
            raise BadInputError(msg) from e
        if fields_ is None:
            break
        lineno = reader.line_num  # the line the row ends on (quoted fields may span lines)
        if not any(f.strip() for f in fields_):
            continue
        if len(fields_) > len(header):
            msg = (
                f"manifest {path} line {lineno} has {len(fields_)} fields but the header has "
                f"{len(header)}; quote fields that contain commas"
            )
            raise BadInputError(msg)
        row = dict(zip(header, (f.strip() for f in fields_), strict=False))
        entries.append(_entry(path, lineno, {k: row.get(k, "") for k in header}, uri_col))
    return entries


def _entry(path: Path, lineno: int, row: dict[str, str], uri_col: str) -> ManifestEntry:
    """The manifest entry of one CSV row (``lineno`` for messages)."""
    dataset_id = row["dataset_id"]
    try:
        validate_dataset_id(dataset_id)
    except BadInputError as e:
        msg = f"manifest {path} line {lineno}: {e.message}"
        raise BadInputError(msg, dataset_id=e.dataset_id, field="dataset_id") from e
    try:
        uri = _resolve_uri(row[uri_col], path.parent)
    except BadInputError as e:
        msg = f"manifest line {lineno}: {e}"
        raise BadInputError(msg, dataset_id=dataset_id) from e
    size_text = row.get("asset_h5ad_filesize", "")
    try:
        size = int(size_text) if size_text else -1
    except ValueError:
        size = -2
    if size < -1 or (size_text and size < 0):
        msg = (
            f"manifest line {lineno}: asset_h5ad_filesize {_echo(size_text)!r} is not a "
            "non-negative integer"
        )
        raise BadInputError(
            msg,
            dataset_id=dataset_id,
            field="asset_h5ad_filesize",
        )
    return ManifestEntry(
        dataset_id=dataset_id,
        uri=uri,
        asset_h5ad_filesize=size,
        **{k: row.get(k, "") for k in _OPTIONAL},
    )


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


def load_blocklist(source: str | Path) -> frozenset[str]:
    """Read a dataset blocklist: one dataset id a line; blank lines and ``#`` comments ignored.

    The official Census builder's format. A comment is a line whose first non-blank character
    is ``#``, or the rest of a line after `` #``.

    Parameters
    ----------
    source
        Path of the blocklist file.

    Returns
    -------
    frozenset[str]
        The blocked dataset ids.

    Raises
    ------
    BadInputError
        When the file cannot be read or a line is not a valid dataset id.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "blocklist.txt"
    >>> _ = p.write_text("# retracted upstream\\nds-1\\n\\nds-2  # duplicate of ds-3\\n")
    >>> sorted(load_blocklist(p))
    ['ds-1', 'ds-2']
    """
    path = Path(source).expanduser()
    if path.is_dir():
        msg = f"blocklist {path} is a directory; give a text file with one dataset id a line"
        raise BadInputError(msg, field="blocklist")
    text = _read_text(path, "blocklist")
    ids: set[str] = set()
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        try:
            ids.add(validate_dataset_id(line))
        except BadInputError as e:
            msg = f"blocklist {path} line {lineno}: {e.message}"
            raise BadInputError(msg, dataset_id=e.dataset_id, field="blocklist") from e
    return frozenset(ids)


def apply_blocklist(
    entries: list[ManifestEntry], blocklist: frozenset[str]
) -> tuple[list[ManifestEntry], list[ManifestEntry]]:
    """Split manifest entries into (kept, blocked) by a blocklist, keeping their order.

    Blocked ids that the manifest does not list are logged (a typo would block nothing).
    """
    kept = [e for e in entries if e.dataset_id not in blocklist]
    blocked = [e for e in entries if e.dataset_id in blocklist]
    unused = sorted(blocklist - {e.dataset_id for e in entries})
    if unused:
        logger.warning(
            "%d blocklisted dataset ids are not in the manifest: %s", len(unused), _some(unused)
        )
    if blocked:
        logger.info("blocklist: leaving out %d datasets", len(blocked))
    return kept, blocked
