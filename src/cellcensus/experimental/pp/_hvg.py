"""Highly variable genes and mean/variance: the official implementations over our census."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from cellxgene_census.experimental import pp as _official

from cellcensus._extras import require_extra
from cellcensus.client._filters import check_value_filter
from cellcensus.client._query import experiment

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pandas as pd
    import tiledbsoma as soma
    from somacore.options import SparseDFCoord

__all__ = ["get_highly_variable_genes", "highly_variable_genes", "mean_variance"]

#: ``cellxgene_census.experimental.pp.mean_variance`` (streams X of an ``ExperimentAxisQuery``).
mean_variance = _official.mean_variance

#: ``cellxgene_census.experimental.pp.highly_variable_genes`` (Seurat v3 over a query), the same
#: function (it needs scikit-misc, the ``[pp]`` extra; :func:`get_highly_variable_genes` checks).
highly_variable_genes = _official.highly_variable_genes


def get_highly_variable_genes(  # noqa: PLR0917 - the official positional signature
    census: soma.Collection[Any],
    organism: str,
    measurement_name: str = "RNA",
    X_name: str = "raw",
    obs_value_filter: str | None = None,
    obs_coords: SparseDFCoord | None = None,
    var_value_filter: str | None = None,
    var_coords: SparseDFCoord | None = None,
    n_top_genes: int = 1_000,
    flavor: Literal["seurat_v3"] = "seurat_v3",
    span: float = 0.3,
    batch_key: str | Sequence[str] | None = None,
    max_loess_jitter: float = 1e-6,
    batch_key_func: Callable[..., Any] | None = None,
) -> pd.DataFrame:
    """Rank the genes of a query by variability (``cellxgene_census``'s function, same arguments).

    The organism and both filters are checked first (clear errors); the computation is the
    official streaming Seurat v3 implementation.

    Parameters
    ----------
    census
        The census, from :func:`cellcensus.open_soma`.
    organism
        ``"Homo sapiens"``, ``"mus_musculus"``, ...
    measurement_name, X_name
        Measurement and X layer.
    obs_value_filter, obs_coords, var_value_filter, var_coords
        The query.
    n_top_genes, flavor, span, batch_key, max_loess_jitter, batch_key_func
        As in ``cellxgene_census.experimental.pp.get_highly_variable_genes``.

    Returns
    -------
    pandas.DataFrame
        One row per selected gene (indexed by ``soma_joinid``) with ``highly_variable``,
        ``highly_variable_rank``, ``means``, ``variances``, ``variances_norm``.
    """
    require_extra("pp", "get_highly_variable_genes")
    exp = experiment(census, organism)
    check_value_filter(exp.obs, obs_value_filter, where=f"obs_value_filter ({exp.uri})")
    if measurement_name in exp.ms:
        var = exp.ms[measurement_name].var
        check_value_filter(var, var_value_filter, where=f"var_value_filter ({exp.uri})")
    result: pd.DataFrame = _official.get_highly_variable_genes(
        census,
        organism,
        measurement_name=measurement_name,
        X_name=X_name,
        obs_value_filter=obs_value_filter,
        obs_coords=obs_coords,
        var_value_filter=var_value_filter,
        var_coords=var_coords,
        n_top_genes=n_top_genes,
        flavor=flavor,
        span=span,
        batch_key=batch_key,
        max_loess_jitter=max_loess_jitter,
        batch_key_func=batch_key_func,
    )
    return result
