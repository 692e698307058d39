"""The ``cellcensus`` command line: one typer app; commands only call library functions."""

from __future__ import annotations

# Each module below registers its commands on ``app`` when imported.
from cellcensus._cli import build as _build  # noqa: F401
from cellcensus._cli import compare as _compare  # noqa: F401
from cellcensus._cli import embeddings as _embeddings  # noqa: F401
from cellcensus._cli import query as _query  # noqa: F401
from cellcensus._cli import release as _release  # noqa: F401
from cellcensus._cli import report as _report  # noqa: F401
from cellcensus._cli import synth as _synth  # noqa: F401
from cellcensus._cli._app import app, main

__all__ = ["app", "main"]
