"""``build.json``: the provenance of a build, beside its ``soma/`` and ``h5ads/``.

Written by the builder (:func:`cellcensus.builder.build_census`), extended by
``add_obsm_layer`` (``post_build_steps``), read by ``publish``, ``validate`` and reports.

Version 1 is the only version so far; its documents grew over time (``warnings`` and
``collection`` per input, ``spatial`` and ``timing`` in the summary, ``post_build_steps``), so
every field added after the first builds is optional when read. Unknown keys are kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict, cast

from cellcensus._formats._json import check_version, load_object, malformed

__all__ = [
    "BUILD_FORMAT_VERSIONS",
    "FORMAT_VERSION",
    "BuildDict",
    "BuildInfo",
    "BuildInput",
    "BuildInputDict",
]

FORMAT_VERSION = 1
#: Every version the readers accept.
BUILD_FORMAT_VERSIONS = frozenset({1})
_ADVICE = "the build directory is damaged or was not written by cellcensus: rebuild the census"


class BuildInputDict(TypedDict):
    """One manifest entry of the build, in ``build.json``'s ``inputs``."""

    dataset_id: str
    uri: str
    sha256: str | None
    size: int | None
    status: str
    reason: str | None
    warnings: list[str]
    organism_ontology_term_id: str | None
    n_obs_source: int | None
    n_obs_census: int
    soma_joinid: int | None
    collection: str | None


class BuildDict(TypedDict):
    """``build.json``."""

    format_version: int
    build_tag: str
    created_on: str
    census_schema_version: str
    dataset_schema_version: str
    cellcensus_version: str
    versions: dict[str, str | None]
    settings: dict[str, Any]
    inputs: list[BuildInputDict]
    summary: dict[str, Any]
    post_build_steps: NotRequired[list[dict[str, Any]]]


_INPUT_KEYS = tuple(BuildInputDict.__annotations__)
_BUILD_KEYS = tuple(BuildDict.__annotations__)


def _opt(d: Mapping[str, Any], key: str, kind: type, where: str) -> Any:  # noqa: ANN401
    v = d.get(key)
    if v is None or (isinstance(v, kind) and not (kind is int and isinstance(v, bool))):
        return v
    what = f"{key!r} must be a {kind.__name__} or null, got {type(v).__name__}"
    raise malformed(where, what, _ADVICE)


@dataclass(frozen=True, kw_only=True)
class BuildInput:
    """What the build did with one manifest entry."""

    dataset_id: str
    uri: str
    status: str
    sha256: str | None = None
    size: int | None = None
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    organism_ontology_term_id: str | None = None
    n_obs_source: int | None = None
    n_obs_census: int = 0
    soma_joinid: int | None = None
    collection: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> BuildInputDict:
        """JSON form."""
        out: dict[str, Any] = {
            "dataset_id": self.dataset_id,
            "uri": self.uri,
            "sha256": self.sha256,
            "size": self.size,
            "status": self.status,
            "reason": self.reason,
            "warnings": list(self.warnings),
            "organism_ontology_term_id": self.organism_ontology_term_id,
            "n_obs_source": self.n_obs_source,
            "n_obs_census": self.n_obs_census,
            "soma_joinid": self.soma_joinid,
            "collection": self.collection,
        }
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return cast("BuildInputDict", out)

    @classmethod
    def from_dict(cls, d: object, *, where: str) -> BuildInput:
        """Parse one entry of ``inputs``."""
        if not isinstance(d, Mapping):
            raise malformed(where, "an input must be an object", _ADVICE)
        dataset_id = d.get("dataset_id")
        if not isinstance(dataset_id, str) or not dataset_id:
            raise malformed(where, "an input has no 'dataset_id'", _ADVICE)
        w = f"{where}, input {dataset_id!r}"
        warnings = d.get("warnings") or []
        if not isinstance(warnings, list) or not all(isinstance(x, str) for x in warnings):
            raise malformed(w, "'warnings' must be a list of strings", _ADVICE)
        return cls(
            dataset_id=dataset_id,
            uri=str(d.get("uri") or ""),
            status=str(d.get("status") or ""),
            sha256=_opt(d, "sha256", str, w),
            size=_opt(d, "size", int, w),
            reason=_opt(d, "reason", str, w),
            warnings=tuple(warnings),
            organism_ontology_term_id=_opt(d, "organism_ontology_term_id", str, w),
            n_obs_source=_opt(d, "n_obs_source", int, w),
            n_obs_census=_opt(d, "n_obs_census", int, w) or 0,
            soma_joinid=_opt(d, "soma_joinid", int, w),
            collection=_opt(d, "collection", str, w),
            extra={k: v for k, v in d.items() if k not in _INPUT_KEYS},
        )


@dataclass(frozen=True, kw_only=True)
class BuildInfo:
    """``build.json``: what was built, from what, with which versions and settings.

    ``settings``, ``versions`` and ``summary`` are kept as written (their keys follow the build
    options and the census); ``extra`` holds top-level keys this version does not know.
    """

    build_tag: str
    created_on: str = ""
    census_schema_version: str = ""
    dataset_schema_version: str = ""
    cellcensus_version: str = ""
    versions: Mapping[str, str | None] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[BuildInput, ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)
    post_build_steps: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def data(self) -> dict[str, Any]:
        """The JSON form as a plain dict (for readers that walk it)."""
        return cast("dict[str, Any]", self.to_dict())

    def to_dict(self) -> BuildDict:
        """JSON form (always written as the current :data:`FORMAT_VERSION`)."""
        out: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "build_tag": self.build_tag,
            "created_on": self.created_on,
            "census_schema_version": self.census_schema_version,
            "dataset_schema_version": self.dataset_schema_version,
            "cellcensus_version": self.cellcensus_version,
            "versions": dict(self.versions),
            "settings": dict(self.settings),
            "inputs": [i.to_dict() for i in self.inputs],
            "summary": dict(self.summary),
        }
        if self.post_build_steps:
            out["post_build_steps"] = [dict(s) for s in self.post_build_steps]
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return cast("BuildDict", out)

    def to_json(self) -> bytes:
        """Serialised ``build.json``."""
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes | str, *, where: str = "build.json") -> BuildInfo:
        """Parse ``build.json``, dispatching on its ``format_version``.

        Raises
        ------
        UnsupportedFormatError
            For a ``format_version`` this cellcensus does not read.
        BadInputError
            When the file is not JSON, not an object, or a field has the wrong type.
        """
        d = load_object(data, where=where, advice=_ADVICE)
        reader = check_version(d, where=where, readers={1: cls._from_v1}, advice=_ADVICE)
        return reader(d, where=where)

    @classmethod
    def _from_v1(cls, d: Mapping[str, Any], *, where: str) -> BuildInfo:
        inputs = d.get("inputs") or []
        if not isinstance(inputs, list):
            raise malformed(where, "'inputs' must be a list", _ADVICE)
        parts: dict[str, Mapping[str, Any]] = {}
        for key in ("versions", "settings", "summary"):
            v = d.get(key) or {}
            if not isinstance(v, Mapping):
                raise malformed(where, f"{key!r} must be an object", _ADVICE)
            parts[key] = v
        steps = d.get("post_build_steps") or []
        if not isinstance(steps, list) or not all(isinstance(s, Mapping) for s in steps):
            raise malformed(where, "'post_build_steps' must be a list of objects", _ADVICE)
        build_tag = d.get("build_tag")
        if build_tag is not None and not isinstance(build_tag, str):
            raise malformed(where, "'build_tag' must be a string", _ADVICE)
        return cls(
            build_tag=build_tag or "",
            created_on=str(d.get("created_on") or ""),
            census_schema_version=str(d.get("census_schema_version") or ""),
            dataset_schema_version=str(d.get("dataset_schema_version") or ""),
            cellcensus_version=str(d.get("cellcensus_version") or ""),
            versions=dict(parts["versions"]),
            settings=dict(parts["settings"]),
            inputs=tuple(BuildInput.from_dict(i, where=where) for i in inputs),
            summary=dict(parts["summary"]),
            post_build_steps=tuple(dict(s) for s in steps),
            extra={k: v for k, v in d.items() if k not in _BUILD_KEYS},
            format_version=int(d["format_version"]),
        )
