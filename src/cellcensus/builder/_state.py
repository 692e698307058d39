"""The build state file and per-step markers that let an interrupted build resume (``--resume``).

Everything lives in the staging directory's ``_work/``: ``state.json`` (a fingerprint of the
inputs and the settings that shape the output), pickled scans, and one marker file per finished X
task or finished step. Markers are written atomically (temporary file + rename) *after* the work
they record, so a marker never claims work that is not on disk. Writes of the census arrays are
idempotent (arrays do not allow duplicate coordinates), so redoing an unfinished step is safe.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from pathlib import Path

STATE_FORMAT_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


@dataclass(frozen=True)
class BuildState:
    """Markers of finished work in a staging directory."""

    work: Path

    @staticmethod
    def fingerprint(entries: list[Any], settings: dict[str, Any]) -> str:
        """A digest of the manifest entries and the output-shaping settings."""
        doc = {"entries": [vars(e) for e in entries], "settings": settings}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def begin(self, fingerprint: str, *, resume: bool) -> bool:
        """Record a new build, or check that a resumed one has the same inputs.

        Returns True when earlier work is reused.
        """
        path = self.work / "state.json"
        if resume and path.exists():
            state = json.loads(path.read_text())
            if state.get("format_version") != STATE_FORMAT_VERSION:
                msg = (
                    f"cannot resume: build state {path} has format "
                    f"{state.get('format_version')!r}; start the build again without --resume"
                )
                raise BadInputError(msg)
            if state.get("fingerprint") != fingerprint:
                msg = (
                    "cannot resume: the manifest or the build settings changed since the "
                    "interrupted build; run again without --resume to start over"
                )
                raise BadInputError(msg)
            return True
        doc = {"format_version": STATE_FORMAT_VERSION, "fingerprint": fingerprint}
        atomic_write_bytes(path, json.dumps(doc).encode())
        return False

    def done(self, step: str) -> bool:
        """Whether ``step`` was marked finished."""
        return (self.work / "done" / step).exists()

    def mark(self, step: str, payload: object = None) -> None:
        """Mark ``step`` finished, with an optional picklable payload."""
        atomic_write_bytes(self.work / "done" / step, pickle.dumps(payload))

    def payload(self, step: str) -> Any:  # noqa: ANN401 - whatever was stored with the step
        """The payload stored with a finished step."""
        return pickle.loads((self.work / "done" / step).read_bytes())  # noqa: S301 - our own file
