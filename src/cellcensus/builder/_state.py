"""The build state and per-step markers that let an interrupted build resume (``--resume``).

Everything lives in the staging directory's ``_work/``: ``state.json`` (a fingerprint of the
manifest and the settings that shape the output), one JSON marker per finished step, the staged
sources' records (``staged/``) and the datasets' scans (``scan/<key>/``, keyed by dataset id and
source checksum, so a replaced source is scanned again). Markers are written atomically
(temporary file + rename) *after* the work they record, so a marker never claims work that is not
on disk. Steps after the scans belong to one plan: when a resumed build's plan differs (a source
was replaced), they are all started again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cellcensus._formats.state import FORMAT_VERSION, PlanMarker, ResumeState
from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from pathlib import Path

STATE_FORMAT_VERSION = FORMAT_VERSION


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def digest(doc: Any) -> str:  # noqa: ANN401 - any JSON-serializable document
    """sha256 of a JSON document in canonical form."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class BuildState:
    """Markers of finished work in a staging directory."""

    work: Path

    @staticmethod
    def fingerprint(entries: list[Any], settings: dict[str, Any]) -> str:
        """A digest of the manifest entries and the output-shaping settings."""
        return digest({"entries": [vars(e) for e in entries], "settings": settings})

    def begin(self, fingerprint: str, *, resume: bool) -> bool:
        """Record a new build, or check that a resumed one has the same inputs.

        Returns True when earlier work is reused.
        """
        path = self.work / "state.json"
        if resume and path.exists():
            state = ResumeState.from_json(path.read_bytes(), where=str(path))
            if state.fingerprint != fingerprint:
                msg = (
                    "cannot resume: the manifest or the build settings changed since the "
                    "interrupted build; run again without --resume to start over"
                )
                raise BadInputError(msg)
            return True
        atomic_write_bytes(path, ResumeState(fingerprint=fingerprint).to_json())
        return False

    def begin_plan(self, plan_fingerprint: str) -> bool:
        """Enter the steps of one plan; forget every step of another plan. True when resumed."""
        path = self.work / "plan.json"
        if path.exists() and PlanMarker.from_json(path.read_bytes()).plan == plan_fingerprint:
            return True
        shutil.rmtree(self.work / "done", ignore_errors=True)
        atomic_write_bytes(path, PlanMarker(plan=plan_fingerprint).to_json())
        return False

    def done(self, step: str) -> bool:
        """Whether ``step`` was marked finished."""
        return (self.work / "done" / f"{step}.json").exists()

    def mark(self, step: str, payload: Any = None) -> None:  # noqa: ANN401 - JSON payload
        """Mark ``step`` finished, with an optional JSON-serializable payload."""
        atomic_write_bytes(self.work / "done" / f"{step}.json", json.dumps(payload).encode())

    def payload(self, step: str) -> Any:  # noqa: ANN401 - whatever was stored with the step
        """The payload stored with a finished step."""
        return json.loads((self.work / "done" / f"{step}.json").read_text())
