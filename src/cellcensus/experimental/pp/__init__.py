"""Pre-processing over a census query: ``cellxgene_census.experimental.pp`` for our releases.

Our builds are plain Census-schema SOMA collections, so the official functions run on them
unchanged: :func:`mean_variance` and :func:`highly_variable_genes` are re-exported as they are;
:func:`get_highly_variable_genes` adds the client's organism and filter checks before
delegating. ``highly_variable_genes`` needs ``scikit-misc`` (LOESS, the ``[pp]`` extra), as the
official one does.

Lifecycle: experimental.
"""

from __future__ import annotations

from cellcensus.experimental.pp._hvg import (
    get_highly_variable_genes,
    highly_variable_genes,
    mean_variance,
)

__all__ = ["get_highly_variable_genes", "highly_variable_genes", "mean_variance"]
