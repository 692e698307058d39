"""Progress reporting from long library operations to a front end (the CLI's rich bars)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives progress of named stages; the library never draws anything itself."""

    def start(self, stage: str, total: float | None, unit: str = "") -> None:
        """A stage begins; ``total`` is None when unknown."""

    def advance(self, stage: str, amount: float = 1) -> None:
        """Some of a stage's work is done."""

    def finish(self, stage: str) -> None:
        """A stage is complete."""


class NoProgress:
    """Discards progress (the default for library calls)."""

    def start(self, stage: str, total: float | None, unit: str = "") -> None:
        """Ignore."""

    def advance(self, stage: str, amount: float = 1) -> None:
        """Ignore."""

    def finish(self, stage: str) -> None:
        """Ignore."""
