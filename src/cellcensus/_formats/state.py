"""The resume state of a build: ``<staging>/_work/state.json`` and ``_work/plan.json`` (JSON).

``state.json`` says which inputs and settings the interrupted build had (a fingerprint); its
``format_version`` covers the whole ``_work/`` layout (``plan.json``, the step markers
``done/<step>.json`` and the staged sources' records), so ``plan.json`` has no version of its
own. Version 1 (pickled step payloads) is no longer read: such a build must start again;
version 2 (JSON throughout) is current.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from cellcensus._formats._json import check_version, load_object, malformed

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FORMAT_VERSION", "PlanMarker", "PlanMarkerDict", "ResumeState", "ResumeStateDict"]

FORMAT_VERSION = 2
_ADVICE = "the interrupted build cannot resume: start the build again without --resume"


class ResumeStateDict(TypedDict):
    """``state.json``."""

    format_version: int
    fingerprint: str


class PlanMarkerDict(TypedDict):
    """``plan.json``."""

    plan: str


@dataclass(frozen=True, kw_only=True)
class ResumeState:
    """``state.json``: the fingerprint of the manifest and the output-shaping settings."""

    fingerprint: str
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> ResumeStateDict:
        """JSON form."""
        return {"format_version": FORMAT_VERSION, "fingerprint": self.fingerprint}

    def to_json(self) -> bytes:
        """Serialised ``state.json``."""
        return json.dumps(self.to_dict()).encode()

    @classmethod
    def from_json(cls, data: bytes | str, *, where: str = "state.json") -> ResumeState:
        """Parse ``state.json``, dispatching on its ``format_version``.

        Raises
        ------
        UnsupportedFormatError
            For a state written by another cellcensus (version 1 pickled its steps).
        BadInputError
            For malformed content.
        """
        d = load_object(data, where=where, advice=_ADVICE)
        reader = check_version(d, where=where, readers={2: cls._from_v2}, advice=_ADVICE)
        return reader(d, where=where)

    @classmethod
    def _from_v2(cls, d: Mapping[str, Any], *, where: str) -> ResumeState:
        fingerprint = d.get("fingerprint")
        if not isinstance(fingerprint, str):
            raise malformed(where, "'fingerprint' must be a string", _ADVICE)
        return cls(fingerprint=fingerprint, format_version=2)


@dataclass(frozen=True, kw_only=True)
class PlanMarker:
    """``plan.json``: the fingerprint of the plan whose steps ``done/`` records."""

    plan: str

    def to_dict(self) -> PlanMarkerDict:
        """JSON form."""
        return {"plan": self.plan}

    def to_json(self) -> bytes:
        """Serialised ``plan.json``."""
        return json.dumps(self.to_dict()).encode()

    @classmethod
    def from_json(cls, data: bytes | str, *, where: str = "plan.json") -> PlanMarker:
        """Parse ``plan.json`` (versioned by ``state.json``).

        Raises
        ------
        BadInputError
            For malformed content.
        """
        d = load_object(data, where=where, advice=_ADVICE)
        plan = d.get("plan")
        if not isinstance(plan, str):
            raise malformed(where, "'plan' must be a string", _ADVICE)
        return cls(plan=plan)
