"""Utilities of the experimental API (``cellxgene_census.experimental.util``).

The official module has no public names in ``cellxgene_census`` 1.18 (its eager iterator is
private); this module exists so that code importing ``experimental.util`` works unchanged.

Lifecycle: experimental.
"""

from __future__ import annotations

__all__: list[str] = []
