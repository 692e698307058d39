"""Where a release root's embeddings are: its ``contributions.json``, and the URIs of an
embedding's array and vector index through a mirror.

For a cellcensus root the directory is ``<root>/contributions.json`` and each entry carries
``relative_uri`` (joined with the mirror's ``embeddings_base_uri``) and an absolute ``uri``. For
the official CZ directory the official locations are used, read from the official client's
module constants at call time (so a test may redirect them, as for ``release.json``).
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from cellcensus._storage import is_local, local_path, uri_join
from cellcensus.client._directory import (
    ReleaseSource,
    _fetch,
    _select_mirror,
    release_source,
)
from cellcensus.errors import (
    BadInputError,
    CensusNotFoundError,
    EmbeddingNotFoundError,
    NotFoundError,
)

if TYPE_CHECKING:
    import os

    from cellcensus.client._types import CensusMirror
    from cellcensus.settings import Settings

__all__ = [
    "CONTRIBUTIONS_JSON",
    "EmbeddingNotFoundError",
    "EmbeddingSource",
    "census_tag",
    "contributions",
    "embedding_source",
    "embedding_uri",
    "index_location",
    "root_of_census",
]

logger = logging.getLogger(__name__)

CONTRIBUTIONS_JSON = "contributions.json"


@dataclass(frozen=True)
class EmbeddingSource:
    """A release directory and where its embedding directory is."""

    release: ReleaseSource
    contributions_uri: str
    settings: Settings | None

    @property
    def official(self) -> bool:
        """Whether this is the official CZ directory."""
        return self.release.official


#: The official embedding directory and the base of the embeddings' arrays (the values
#: ``cellxgene_census`` 1.18 uses).
OFFICIAL_CONTRIBUTIONS_URL = (
    "https://contrib.cellxgene.cziscience.com/contrib/cell-census/contributions.json"
)
OFFICIAL_EMBEDDINGS_BASE_URI = "s3://cellxgene-contrib-public/contrib/cell-census/soma/"


def _official_contributions_url() -> str:
    return OFFICIAL_CONTRIBUTIONS_URL


def _official_embeddings_base() -> str:
    return OFFICIAL_EMBEDDINGS_BASE_URI


def embedding_source(
    release_root: str | os.PathLike[str] | None = None, settings: Settings | None = None
) -> EmbeddingSource:
    """The embedding directory of a release root (argument, :func:`configure`, env, official)."""
    from cellcensus.client._directory import _storage

    src = release_source(release_root)
    uri = _official_contributions_url() if src.official else src.root_uri + CONTRIBUTIONS_JSON
    return EmbeddingSource(release=src, contributions_uri=uri, settings=_storage(settings, src))


def contributions(es: EmbeddingSource) -> dict[str, dict[str, Any]]:
    """The raw ``contributions.json`` of a source (empty when a cellcensus root has none).

    Raises
    ------
    BadInputError
        When the file is not a JSON object of objects.
    """
    try:
        data = _fetch(es.contributions_uri, es.settings)
    except NotFoundError:
        if es.official:
            raise
        logger.debug("%s does not exist: no embeddings", es.contributions_uri)
        return {}
    try:
        parsed = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        msg = f"{es.contributions_uri} is not valid JSON ({e}); the embedding directory is damaged"
        raise BadInputError(msg) from e
    if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
        msg = f"{es.contributions_uri}: the embedding directory must map ids to objects"
        raise BadInputError(msg)
    return cast("dict[str, dict[str, Any]]", parsed)


def _mirror(es: EmbeddingSource, mirror: str | None) -> CensusMirror | None:
    return _select_mirror(es.release, es.settings, mirror)[1]


def _local_fallback(uri: str, es: EmbeddingSource, key: str) -> str:
    """For a local root copied elsewhere, the same key inside the root when ``uri`` is gone."""
    if not is_local(uri) or not es.release.is_local or local_path(uri).exists():
        return uri
    candidate = local_path(es.release.root_uri) / key
    if candidate.exists():
        return candidate.as_uri() + "/"
    return uri


def embedding_uri(
    es: EmbeddingSource, entry: dict[str, Any], *, mirror: str | None = None
) -> tuple[str, str | None]:
    """URI and S3 region of an embedding's array.

    A cellcensus entry is found through the mirror (``embeddings_base_uri`` + ``relative_uri``),
    else its absolute ``uri``; an official one at ``<official base>/<census_version>/<id>``.
    """
    rel = entry.get("relative_uri")
    if isinstance(rel, str) and rel:
        m = _mirror(es, mirror)
        if m is not None and m.get("embeddings_base_uri"):
            uri = uri_join(str(m["embeddings_base_uri"]), rel)
            region = m.get("region")
        else:
            uri, region = str(entry.get("uri") or ""), entry.get("s3_region")
        key = f"embeddings/{entry['census_version']}/{entry['id']}"
        return _local_fallback(uri, es, key), region
    base = _official_embeddings_base()
    return uri_join(base, f"{entry['census_version']}/{entry['id']}"), "us-west-2"


def index_location(
    es: EmbeddingSource, entry: dict[str, Any], *, mirror: str | None = None
) -> tuple[str, str | None] | None:
    """URI and region of the embedding's IVFFlat index, or ``None`` when it has none."""
    indexes = entry.get("indexes") or []
    if not indexes:
        return None
    first = indexes[0]
    if first.get("type") != "IVFFlat":
        msg = f"embedding {entry.get('id')!r}: unsupported index type {first.get('type')!r}"
        raise BadInputError(msg)
    m = _mirror(es, mirror)
    rel = str(first["relative_uri"])
    if m is None or not m.get("embeddings_base_uri"):
        if not es.release.is_local:
            msg = f"embedding {entry.get('id')!r}: no mirror to resolve its index {rel!r} against"
            raise CensusNotFoundError(msg)
        uri = uri_join(local_path(es.release.root_uri).parent.as_uri(), rel)
        return uri, None
    uri = uri_join(str(m["embeddings_base_uri"]), rel)
    key = f"embeddings/{entry['census_version']}/{entry['id']}.index"
    return _local_fallback(uri, es, key), m.get("region")


def census_tag(census_uri: str) -> str:
    """The build tag of an opened census: the directory holding ``soma`` (``<root>/<tag>/soma``).

    Raises
    ------
    BadInputError
        When the URI does not end in ``/<tag>/soma``.
    """
    parts = urllib.parse.urlparse(census_uri).path.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-1] == "soma" and parts[-2]:
        return parts[-2]
    msg = (
        f"cannot tell the census version of {census_uri}: census URIs end in /<tag>/soma; "
        "open the census with open_soma(census_version=...)"
    )
    raise BadInputError(msg)


def root_of_census(census_uri: str) -> str | None:
    """The release root a census at ``<root>/<tag>/soma`` was opened from (with a trailing
    ``/``), or ``None`` when the URI has another form."""
    stripped = census_uri.rstrip("/")
    parts = stripped.rsplit("/", 2)
    if len(parts) != 3 or parts[2] != "soma":
        return None
    return parts[0] + "/"
