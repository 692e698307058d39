"""Typed models of ``contributions.json`` (the embedding directory at a release root) and of one
embedding's description (the ``CxG_embedding_info`` JSON stored in the embedding array too).

The format is the one the official ``cellxgene_census`` client parses: a JSON object keyed by
embedding id, each value the embedding's metadata (``embedding_name``, ``experiment_name``,
``data_type``, ``census_version``, ``n_features``, ``submission_date``, ``indexes``, ...). A
top-level key of our own would break the official client (it reads every value as an
embedding), so the cellcensus format version lives in each entry (``format_version``); entries
without it (written by other tools) are read as they are. Unknown keys are kept on rewrite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, cast

from cellcensus.errors import BadInputError, IntegrityError

__all__ = [
    "CONTRIBUTIONS_JSON",
    "DATA_TYPES",
    "ENTRY_FORMAT_VERSION",
    "ContributionsDirectory",
    "EmbeddingEntry",
    "IndexInfo",
]

CONTRIBUTIONS_JSON = "contributions.json"
#: Version of the cellcensus fields of an entry (``relative_uri``, ``uri``, ``manifest``).
ENTRY_FORMAT_VERSION = 1
DATA_TYPES = ("obs_embedding", "var_embedding")
DataType = Literal["obs_embedding", "var_embedding"]

_KNOWN = (
    "id",
    "embedding_name",
    "title",
    "description",
    "contact_name",
    "contact_email",
    "contact_affiliation",
    "DOI",
    "additional_information",
    "model_link",
    "data_type",
    "census_version",
    "experiment_name",
    "measurement_name",
    "n_embeddings",
    "n_features",
    "submission_date",
    "indexes",
    "format_version",
    "relative_uri",
    "uri",
    "s3_region",
    "manifest",
)


class IndexDict(TypedDict):
    """One vector index of an embedding."""

    type: str
    relative_uri: str


@dataclass(frozen=True, kw_only=True)
class IndexInfo:
    """A vector index: its type (``IVFFlat``) and URI relative to the mirror's
    ``embeddings_base_uri``."""

    type: str
    relative_uri: str

    def to_dict(self) -> IndexDict:
        """JSON form."""
        return {"type": self.type, "relative_uri": self.relative_uri}


def _bad(where: str, what: str) -> IntegrityError:
    return IntegrityError(f"{where}: {what}; the embedding directory is malformed")


def _str(d: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    v = d.get(key)
    if v is None and not required:
        return ""
    if not isinstance(v, str):
        raise _bad(where, f"{key!r} must be a string, got {type(v).__name__}")
    return v


def _int(d: Mapping[str, Any], key: str, where: str) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise _bad(where, f"{key!r} must be an integer >= 0, got {v!r}")
    return v


@dataclass(frozen=True, kw_only=True)
class EmbeddingEntry:
    """One embedding of a release: what the official client reads, plus where it is stored.

    ``relative_uri`` (relative to a mirror's ``embeddings_base_uri``) and the absolute ``uri``
    locate the ``SparseNDArray``; ``manifest`` is the key, relative to the release root, of the
    checksums of every stored object of the embedding (array and index).
    """

    id: str
    embedding_name: str
    data_type: DataType
    census_version: str
    experiment_name: str
    measurement_name: str
    n_embeddings: int
    n_features: int
    submission_date: str
    title: str = ""
    description: str = ""
    contact_name: str = ""
    contact_email: str = ""
    contact_affiliation: str = ""
    DOI: str = ""
    additional_information: str = ""
    model_link: str = ""
    indexes: tuple[IndexInfo, ...] = ()
    relative_uri: str = ""
    uri: str = ""
    s3_region: str | None = None
    manifest: str = ""
    format_version: int | None = ENTRY_FORMAT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the official fields first, then ours, then unknown keys kept)."""
        out: dict[str, Any] = {
            "id": self.id,
            "embedding_name": self.embedding_name,
            "title": self.title,
            "description": self.description,
            "contact_name": self.contact_name,
            "contact_email": self.contact_email,
            "contact_affiliation": self.contact_affiliation,
            "DOI": self.DOI,
            "additional_information": self.additional_information,
            "model_link": self.model_link,
            "data_type": self.data_type,
            "census_version": self.census_version,
            "experiment_name": self.experiment_name,
            "measurement_name": self.measurement_name,
            "n_embeddings": self.n_embeddings,
            "n_features": self.n_features,
            "submission_date": self.submission_date,
            "indexes": [i.to_dict() for i in self.indexes],
        }
        if self.format_version is not None:
            out.update(
                {
                    "format_version": self.format_version,
                    "relative_uri": self.relative_uri,
                    "uri": self.uri,
                    "s3_region": self.s3_region,
                    "manifest": self.manifest,
                }
            )
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    def to_json(self) -> str:
        """The ``CxG_embedding_info`` string stored in the embedding array's metadata."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> EmbeddingEntry:
        """Parse one entry.

        Raises
        ------
        IntegrityError
            A required field is missing or of the wrong type, or the entry's
            ``format_version`` is newer than this cellcensus reads.
        """
        if not isinstance(d, Mapping):
            raise _bad(where, "an entry must be an object")
        version = d.get("format_version")
        if version is not None and version != ENTRY_FORMAT_VERSION:
            msg = (
                f"{where} has format_version {version!r}; this cellcensus reads version "
                f"{ENTRY_FORMAT_VERSION}: upgrade cellcensus to read these embeddings"
            )
            raise IntegrityError(msg)
        data_type = _str(d, "data_type", where)
        if data_type not in DATA_TYPES:
            raise _bad(where, f"'data_type' must be one of {DATA_TYPES}, got {data_type!r}")
        raw_indexes = d.get("indexes") or []
        if not isinstance(raw_indexes, list):
            raise _bad(where, "'indexes' must be a list")
        indexes = []
        for i, ix in enumerate(raw_indexes):
            if not isinstance(ix, Mapping):
                raise _bad(where, f"indexes[{i}] must be an object")
            indexes.append(
                IndexInfo(
                    type=_str(ix, "type", where), relative_uri=_str(ix, "relative_uri", where)
                )
            )
        region = d.get("s3_region")
        return cls(
            id=_str(d, "id", where),
            embedding_name=_str(d, "embedding_name", where),
            data_type=cast("DataType", data_type),
            census_version=_str(d, "census_version", where),
            experiment_name=_str(d, "experiment_name", where),
            measurement_name=_str(d, "measurement_name", where, required=False) or "RNA",
            n_embeddings=_int(d, "n_embeddings", where) if "n_embeddings" in d else 0,
            n_features=_int(d, "n_features", where),
            submission_date=_str(d, "submission_date", where, required=False),
            title=_str(d, "title", where, required=False),
            description=_str(d, "description", where, required=False),
            contact_name=_str(d, "contact_name", where, required=False),
            contact_email=_str(d, "contact_email", where, required=False),
            contact_affiliation=_str(d, "contact_affiliation", where, required=False),
            DOI=_str(d, "DOI", where, required=False),
            additional_information=_str(d, "additional_information", where, required=False),
            model_link=_str(d, "model_link", where, required=False),
            indexes=tuple(indexes),
            relative_uri=_str(d, "relative_uri", where, required=False),
            uri=_str(d, "uri", where, required=False),
            s3_region=region if isinstance(region, str) else None,
            manifest=_str(d, "manifest", where, required=False),
            format_version=version if isinstance(version, int) else None,
            extra={k: v for k, v in d.items() if k not in _KNOWN},
        )


@dataclass(frozen=True, kw_only=True)
class ContributionsDirectory:
    """The content of ``contributions.json``: embeddings by id.

    Instances are immutable; :meth:`with_entry` and :meth:`without` return changed copies.
    """

    entries: Mapping[str, EmbeddingEntry] = field(default_factory=dict)

    def find(
        self,
        *,
        embedding_name: str | None = None,
        experiment_name: str | None = None,
        data_type: str | None = None,
        census_version: str | None = None,
    ) -> list[EmbeddingEntry]:
        """Entries matching every given field, oldest submission first (then by id)."""
        found = [
            e
            for e in self.entries.values()
            if (embedding_name is None or e.embedding_name == embedding_name)
            and (experiment_name is None or e.experiment_name == experiment_name)
            and (data_type is None or e.data_type == data_type)
            and (census_version is None or e.census_version == census_version)
        ]
        return sorted(found, key=lambda e: (e.submission_date, e.id))

    def with_entry(self, entry: EmbeddingEntry) -> ContributionsDirectory:
        """Copy with ``entry`` added.

        Raises
        ------
        BadInputError
            When the id exists, or an embedding of the same name, organism, type and release
            exists (names are unique per release, organism and type).
        """
        if entry.id in self.entries:
            msg = f"embedding id {entry.id!r} already exists in {CONTRIBUTIONS_JSON}"
            raise BadInputError(msg, field="id")
        same = self.find(
            embedding_name=entry.embedding_name,
            experiment_name=entry.experiment_name,
            data_type=entry.data_type,
            census_version=entry.census_version,
        )
        if same:
            msg = (
                f"an {entry.data_type} named {entry.embedding_name!r} already exists for "
                f"{entry.experiment_name} in release {entry.census_version} (id {same[0].id}); "
                "choose another --name, or remove the old one first "
                "(`cellcensus embeddings remove`)"
            )
            raise BadInputError(msg, field="name")
        entries = dict(self.entries)
        entries[entry.id] = entry
        return ContributionsDirectory(entries=entries)

    def without(self, embedding_id: str) -> ContributionsDirectory:
        """Copy without the entry ``embedding_id`` (unchanged when it is absent)."""
        return ContributionsDirectory(
            entries={k: v for k, v in self.entries.items() if k != embedding_id}
        )

    def to_json(self) -> bytes:
        """Serialised ``contributions.json`` (entries by id)."""
        body = {k: self.entries[k].to_dict() for k in sorted(self.entries)}
        return (json.dumps(body, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, *, where: str = CONTRIBUTIONS_JSON) -> ContributionsDirectory:
        """Parse serialised ``contributions.json``.

        Raises
        ------
        IntegrityError
            When the content is not an embedding directory.
        """
        try:
            d = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            msg = f"{where} is not valid JSON: {e}"
            raise IntegrityError(msg) from e
        if not isinstance(d, Mapping):
            raise _bad(where, "the top level must be an object mapping ids to embeddings")
        entries = {}
        for key, value in d.items():
            entry = EmbeddingEntry.from_dict(value, where=f"{where}, entry {key!r}")
            if entry.id != key:
                raise _bad(where, f"entry {key!r} has id {entry.id!r}")
            entries[str(key)] = entry
        return cls(entries=entries)
