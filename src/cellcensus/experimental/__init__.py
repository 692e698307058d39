"""Parts of the API that may still change (as ``cellxgene_census.experimental``)."""

from __future__ import annotations

from cellcensus.experimental import pp

__all__ = ["pp"]
