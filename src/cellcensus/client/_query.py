"""``get_anndata``, ``get_obs``, ``get_var``, ``get_presence_matrix``: the official functions,
with clear errors for unknown organisms and bad filters, and a memory check before
``get_anndata`` reads anything large."""

from __future__ import annotations

import logging
import re
import warnings
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import cellxgene_census
import psutil
import tiledbsoma as soma

from cellcensus.client._args import (
    check_axis_column_names,
    check_columns,
    check_coords,
    check_layers,
    check_organism,
    last_joinid,
)
from cellcensus.client._estimate import (
    QueryEstimate,
    estimate_query,
    format_bytes,
    layer_peak_bound,
)
from cellcensus.client._filters import (
    check_value_filter,
    checked_filter_messages,
    log_unknown_values,
)
from cellcensus.client._genemajor import (
    Layout,
    check_layout,
    gene_major_copies,
    get_anndata_routed,
)
from cellcensus.client._routecache import release_key, remember
from cellcensus.errors import (
    BadInputError,
    CensusNotFoundError,
    MemoryEstimateWarning,
    QueryArgumentError,
    QueryTooLargeError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence

    import anndata
    import pandas as pd
    from scipy import sparse
    from somacore.options import SparseDFCoord

__all__ = [
    "MemoryCheck",
    "check_memory",
    "experiment",
    "get_anndata",
    "get_obs",
    "get_presence_matrix",
    "get_var",
]

logger = logging.getLogger(__name__)

MemoryCheck = Literal["auto", "warn", "off"]
#: ``get_anndata`` warns when its estimated peak exceeds this share of the available memory.
WARN_FRACTION = 0.5


def experiment_name(organism: str) -> str:
    """The experiment name of an organism (``"Homo sapiens"`` -> ``"homo_sapiens"``)."""
    return re.sub(r"[ ]+", "_", organism.strip()).lower()


def experiment(
    census: soma.Collection[Any], organism: str, modality: str = "census_data"
) -> soma.Experiment:
    """The organism's experiment, with a message listing what exists when it does not.

    Raises
    ------
    CensusNotFoundError
        (a ``ValueError``) for an unknown modality or organism.
    QueryArgumentTypeError
        (a ``TypeError``) when ``organism`` is not a string.
    """
    check_organism(organism)
    if modality not in census:
        msg = (
            f"Unknown modality {modality!r}: the census at {census.uri} holds "
            f"{', '.join(sorted(census)) or 'nothing'}"
        )
        raise CensusNotFoundError(msg)
    coll = census[modality]
    name = experiment_name(organism)
    if name not in coll:
        known = ", ".join(sorted(coll)) or "none"
        msg = f"Unknown organism {organism} - does not exist in {modality} (organisms: {known})"
        raise CensusNotFoundError(msg)
    exp = coll[name]
    if not isinstance(exp, soma.Experiment):
        msg = f"Unknown organism {organism} - not a SOMA Experiment"
        raise CensusNotFoundError(msg)
    return exp


def _measurement(exp: soma.Experiment, measurement_name: str, organism: str) -> soma.Measurement:
    if measurement_name not in exp.ms:
        msg = (
            f"{organism}: no measurement {measurement_name!r} "
            f"(measurements: {', '.join(sorted(exp.ms)) or 'none'})"
        )
        raise CensusNotFoundError(msg)
    return exp.ms[measurement_name]


def _has_measurement(exp: soma.Experiment, measurement_name: str, organism: str) -> bool:
    _measurement(exp, measurement_name, organism)  # raises when there is none
    return True


def _checked_filter(
    exp: soma.Experiment, measurement_name: str, axis: str, value_filter: str, *, where: str
) -> list[str]:
    df = exp.obs if axis == "obs" else exp.ms[measurement_name].var
    return checked_filter_messages(df, value_filter, where=where)


def _check_query_args(
    exp: soma.Experiment,
    measurement_name: str,
    *,
    obs_coords: object,
    var_coords: object,
    obs_column_names: object,
    var_column_names: object,
    column_names: object,
    layers: Sequence[str],
    key: Hashable | None = None,
) -> None:
    """Coordinates, column lists and X layers of a query, before anything is read.

    obs, var and X are opened only when there is something to check against them; a column
    list or the layers found valid are kept for the release ``key`` (checked once).
    """
    if obs_coords is not None:
        check_coords(obs_coords, where="obs_coords", last=last_joinid(exp.obs))
    if var_coords is not None:
        check_coords(var_coords, where="var_coords", last=last_joinid(exp.ms[measurement_name].var))
    axis = check_axis_column_names(column_names) or {}
    if column_names is not None and (obs_column_names is not None or var_column_names is not None):
        msg = (
            "column_names (deprecated) and obs_column_names / var_column_names were both given; "
            "use obs_column_names and var_column_names only"
        )
        raise QueryArgumentError(msg, field="column_names")
    for side, names, where in (
        ("obs", obs_column_names, "obs_column_names"),
        ("obs", axis.get("obs"), "column_names['obs']"),
        ("var", var_column_names, "var_column_names"),
        ("var", axis.get("var"), "column_names['var']"),
    ):
        if names is None:
            continue
        check = partial(_check_columns, exp, measurement_name, side, names, where)
        _checked_once(key, ("columns", measurement_name, side), names, check)
    check = partial(_check_layers, exp, measurement_name, layers)
    _checked_once(key, ("layers", measurement_name), layers, check)


def _checked_once(
    key: Hashable | None, what: tuple[str, ...], names: object, check: Callable[[], None]
) -> None:
    """``check()``, once per release ``key`` for a list of names (every time for anything
    else: it is what reports a wrong type)."""
    if isinstance(names, list | tuple) and all(isinstance(n, str) for n in names):
        remember(key, (*what, tuple(names)), check)
    else:
        check()


def _check_layers(exp: soma.Experiment, measurement_name: str, layers: Sequence[str]) -> None:
    check_layers(exp.ms[measurement_name], layers, where="X_name/X_layers")


def _check_columns(
    exp: soma.Experiment, measurement_name: str, side: str, names: object, where: str
) -> None:
    check_columns(exp.obs if side == "obs" else exp.ms[measurement_name].var, names, where=where)


def _check_memory_mode(memory_check: str) -> None:
    if memory_check not in ("auto", "warn", "off"):
        msg = f"memory_check must be 'auto', 'warn' or 'off', got {memory_check!r}"
        raise BadInputError(msg, field="memory_check")


def check_memory(est: QueryEstimate, memory_check: MemoryCheck, *, stacklevel: int = 3) -> None:
    """Warn about, or refuse, a query whose estimated peak memory is too large.

    ``"auto"``: refuse above the available memory, warn above half of it; ``"warn"``: only
    warn; ``"off"``: nothing.

    Raises
    ------
    QueryTooLargeError
        ``memory_check="auto"`` and the estimate exceeds the available memory.
    """
    _check_memory_mode(memory_check)
    if memory_check == "off":
        return
    available = int(psutil.virtual_memory().available)
    advice = (
        "stream it to disk with cellcensus.export(..., to='out.h5ad', memory_budget='2GiB') "
        "(or `cellcensus export`), or narrow the filters"
    )
    if est.peak_bytes > available and memory_check == "auto":
        msg = (
            f"get_anndata would need ~{format_bytes(est.peak_bytes)} but "
            f"{format_bytes(available)} is available ({est.describe()}); {advice}. Pass "
            "memory_check='warn' to try anyway"
        )
        raise QueryTooLargeError(msg)
    if est.peak_bytes > WARN_FRACTION * available:
        msg = (
            f"get_anndata will need ~{format_bytes(est.peak_bytes)} of the "
            f"{format_bytes(available)} available ({est.describe()}); consider: {advice}"
        )
        warnings.warn(msg, MemoryEstimateWarning, stacklevel=stacklevel)


def get_anndata(  # noqa: PLR0917 - the official positional signature
    census: soma.Collection[Any],
    organism: str,
    measurement_name: str = "RNA",
    X_name: str = "raw",
    X_layers: Sequence[str] | None = (),
    obsm_layers: Sequence[str] | None = (),
    obsp_layers: Sequence[str] | None = (),
    varm_layers: Sequence[str] | None = (),
    varp_layers: Sequence[str] | None = (),
    obs_value_filter: str | None = None,
    obs_coords: SparseDFCoord | None = None,
    var_value_filter: str | None = None,
    var_coords: SparseDFCoord | None = None,
    column_names: soma.AxisColumnNames | None = None,
    obs_embeddings: Sequence[str] | None = (),
    var_embeddings: Sequence[str] | None = (),
    obs_column_names: Sequence[str] | None = None,
    var_column_names: Sequence[str] | None = None,
    modality: str = "census_data",
    *,
    memory_check: MemoryCheck = "auto",
    x_layout: Layout = "auto",
) -> anndata.AnnData:
    """A slice of the census as an :class:`anndata.AnnData` (``cellxgene_census.get_anndata``).

    Lifecycle: maturing.

    Same arguments, defaults and result as the official function, which does the reading.
    Before it runs, the organism and both filters are checked (clear errors) and the result's
    size is estimated from ``obs``/``var`` (see :func:`estimate`): a query whose estimated peak
    exceeds the available memory is refused, one above half of it warned about.

    On a cellcensus build with gene-major copies of X (``cellcensus_genes``), a query of few
    genes across many cells reads X from the copies instead (a cost rule decides, see
    ``docs/client.md``): the same AnnData, often many times faster.

    Parameters
    ----------
    census
        The census, from :func:`open_soma`.
    organism
        ``"Homo sapiens"``, ``"mus_musculus"``, ...
    measurement_name, X_name, X_layers, obsm_layers, obsp_layers, varm_layers, varp_layers
        As in ``cellxgene_census.get_anndata``.
    obs_value_filter, obs_coords, var_value_filter, var_coords
        The query: value filters (see ``docs/client.md``) and ``soma_joinid`` coordinates.
    column_names
        Deprecated ``{"obs": [...], "var": [...]}`` (as in the official client).
    obs_embeddings, var_embeddings
        Embeddings by name, added as ``obsm`` / ``varm`` (NaN for cells without a vector),
        looked up in the ``contributions.json`` of the release root the census was opened
        from (else the configured root, else the official directory); see
        ``docs/embeddings.md``.
    obs_column_names, var_column_names
        Columns of ``obs`` / ``var`` to return.
    modality
        ``"census_data"`` (default) or another top-level collection.
    memory_check
        ``"auto"`` (refuse above available memory, warn above half), ``"warn"`` (warn only)
        or ``"off"`` (no estimate).
    x_layout
        Which copy of X to read: ``"auto"`` (the cost rule), ``"cell-major"`` (always
        ``census_data``'s X, as the official client) or ``"gene-major"`` (the copies; an error
        when the build has none for these layers).

    Returns
    -------
    anndata.AnnData
        The slice.

    Raises
    ------
    CensusNotFoundError
        Unknown organism or measurement (a ``ValueError``).
    FilterError
        Bad filter (a ``BadInputError`` and ``tiledbsoma.SOMAError``).
    QueryTooLargeError
        The estimate exceeds the available memory (``memory_check="auto"``).
    """
    exp = experiment(census, organism, modality)
    key = release_key(census, exp)  # a release's answers are kept for its next queries
    remember(
        key,
        ("measurement", measurement_name),
        partial(_has_measurement, exp, measurement_name, organism),
    )
    for axis, value_filter, name in (
        ("obs", obs_value_filter, "obs_value_filter"),
        ("var", var_value_filter, "var_value_filter"),
    ):
        if value_filter is None:
            continue
        # checked once per release (obs / var are not even opened again); the values it
        # compares that a categorical column never holds are logged at every query
        messages = remember(
            key,
            ("filter", measurement_name, axis, value_filter),
            partial(
                _checked_filter,
                exp,
                measurement_name,
                axis,
                value_filter,
                where=f"{name} ({exp.uri})",
            ),
        )
        log_unknown_values(messages)
    _check_query_args(
        exp,
        measurement_name,
        obs_coords=obs_coords,
        var_coords=var_coords,
        obs_column_names=obs_column_names,
        var_column_names=var_column_names,
        column_names=column_names,
        layers=[X_name, *(X_layers or ())],
        key=key,
    )
    _check_memory_mode(memory_check)
    check_layout(x_layout)
    bound = (
        remember(
            key,
            ("peak bound", measurement_name, X_name),
            partial(layer_peak_bound, exp, measurement_name, X_name),
        )
        if memory_check != "off"
        else None
    )
    if bound is not None and bound <= WARN_FRACTION * psutil.virtual_memory().available:
        logger.debug("get_anndata: the whole layer fits in memory (~%s); no estimate", bound)
    elif memory_check != "off":
        obs_cols = obs_column_names or (column_names or {}).get("obs")
        var_cols = var_column_names or (column_names or {}).get("var")
        est = estimate_query(
            exp,
            organism,
            measurement_name=measurement_name,
            X_name=X_name,
            obs_value_filter=obs_value_filter,
            obs_coords=obs_coords,
            var_value_filter=var_value_filter,
            var_coords=var_coords,
            obs_column_names=obs_cols,
            var_column_names=var_cols,
        )
        logger.debug("get_anndata estimate: %s", est.describe())
        check_memory(est, memory_check)
    copies = _routable_copies(
        census,
        organism,
        key=key,
        x_layout=x_layout,
        modality=modality,
        measurement_name=measurement_name,
        layers=[X_name, *(X_layers or ())],
        other_layers=[
            *(obsm_layers or ()),
            *(obsp_layers or ()),
            *(varm_layers or ()),
            *(varp_layers or ()),
            *(obs_embeddings or ()),
            *(var_embeddings or ()),
        ],
    )
    if copies:
        adata, _ = get_anndata_routed(
            census,
            exp,
            copies,
            x_layout=x_layout,
            measurement_name=measurement_name,
            X_name=X_name,
            X_layers=list(X_layers or ()),
            obs_value_filter=obs_value_filter,
            obs_coords=obs_coords,
            var_value_filter=var_value_filter,
            var_coords=var_coords,
            column_names=column_names,
            obs_column_names=obs_column_names,
            var_column_names=var_column_names,
            key=key,
        )
        return adata
    if not obs_embeddings and not var_embeddings:
        return cellxgene_census.get_anndata(
            census,
            organism,
            measurement_name=measurement_name,
            X_name=X_name,
            X_layers=X_layers,
            obsm_layers=obsm_layers,
            obsp_layers=obsp_layers,
            varm_layers=varm_layers,
            varp_layers=varp_layers,
            obs_value_filter=obs_value_filter,
            obs_coords=obs_coords,
            var_value_filter=var_value_filter,
            var_coords=var_coords,
            column_names=column_names,
            obs_column_names=obs_column_names,
            var_column_names=var_column_names,
            modality=modality,
        )
    from cellcensus.client._embedding_query import get_anndata_with_embeddings

    return get_anndata_with_embeddings(
        census,
        organism,
        measurement_name=measurement_name,
        X_name=X_name,
        X_layers=X_layers,
        obsm_layers=obsm_layers,
        obsp_layers=obsp_layers,
        varm_layers=varm_layers,
        varp_layers=varp_layers,
        obs_value_filter=obs_value_filter,
        obs_coords=obs_coords,
        var_value_filter=var_value_filter,
        var_coords=var_coords,
        column_names=column_names,
        obs_embeddings=obs_embeddings or (),
        var_embeddings=var_embeddings or (),
        obs_column_names=obs_column_names,
        var_column_names=var_column_names,
        modality=modality,
    )


def _routable_copies(
    census: soma.Collection[Any],
    organism: str,
    *,
    key: Hashable | None,
    x_layout: Layout,
    modality: str,
    measurement_name: str,
    layers: list[str],
    other_layers: list[str],
) -> dict[str, Any]:
    """The gene-major copies a ``get_anndata`` may read from (empty: read X as the official
    client does)."""
    if x_layout == "cell-major":
        return {}
    supported = modality == "census_data" and measurement_name == "RNA"
    found = gene_major_copies(census, experiment_name(organism), key) if supported else {}
    missing = [layer for layer in layers if layer not in found]
    usable = bool(found) and not missing and not other_layers
    if x_layout == "gene-major" and not usable:
        if not supported:
            why = "gene-major copies exist only for census_data and measurement RNA"
        elif missing:
            why = f"it has no gene-major copy of X layer(s) {', '.join(missing)}"
        else:
            why = "obsm/obsp/varm/varp layers and embeddings are read with the cell-major X only"
        msg = (
            f"x_layout='gene-major' cannot be used for this query on {census.uri}: {why}; "
            "use x_layout='auto' or 'cell-major'"
        )
        raise BadInputError(msg, field="x_layout")
    return found if usable else {}


def get_obs(
    census: soma.Collection[Any],
    organism: str,
    *,
    value_filter: str | None = None,
    coords: SparseDFCoord | None = slice(None),
    column_names: Sequence[str] | None = None,
    modality: str = "census_data",
) -> pd.DataFrame:
    """The ``obs`` rows of a query as a :class:`pandas.DataFrame` (``cellxgene_census.get_obs``).

    Lifecycle: maturing.

    Parameters
    ----------
    census
        The census, from :func:`open_soma`.
    organism
        ``"Homo sapiens"``, ``"mus_musculus"``, ...
    value_filter
        ``obs`` value filter.
    coords
        ``soma_joinid`` coordinates (int, list or slice).
    column_names
        Columns to return (all by default).
    modality
        Top-level collection.

    Returns
    -------
    pandas.DataFrame
        One row per selected cell.
    """
    exp = experiment(census, organism, modality)
    check_value_filter(exp.obs, value_filter, where=f"obs value_filter ({exp.uri})")
    check_coords(coords, where="coords", last=last_joinid(exp.obs))
    check_columns(exp.obs, column_names, where="column_names")
    return cellxgene_census.get_obs(
        census,
        organism,
        value_filter=value_filter,
        coords=coords,
        column_names=column_names,
        modality=modality,
    )


def get_var(
    census: soma.Collection[Any],
    organism: str,
    *,
    value_filter: str | None = None,
    coords: SparseDFCoord | None = slice(None),
    column_names: Sequence[str] | None = None,
    modality: str = "census_data",
) -> pd.DataFrame:
    """The ``var`` rows of a query as a :class:`pandas.DataFrame` (``cellxgene_census.get_var``).

    Lifecycle: maturing.

    Parameters
    ----------
    census
        The census, from :func:`open_soma`.
    organism
        ``"Homo sapiens"``, ``"mus_musculus"``, ...
    value_filter
        ``var`` value filter (e.g. ``"feature_name in ['CD4', 'CD8A']"``).
    coords
        ``soma_joinid`` coordinates (int, list or slice).
    column_names
        Columns to return (all by default).
    modality
        Top-level collection.

    Returns
    -------
    pandas.DataFrame
        One row per selected gene.
    """
    exp = experiment(census, organism, modality)
    var = _measurement(exp, "RNA", organism).var
    check_value_filter(var, value_filter, where=f"var value_filter ({exp.uri})")
    check_coords(coords, where="coords", last=last_joinid(var))
    check_columns(var, column_names, where="column_names")
    return cellxgene_census.get_var(
        census,
        organism,
        value_filter=value_filter,
        coords=coords,
        column_names=column_names,
        modality=modality,
    )


def get_presence_matrix(
    census: soma.Collection[Any],
    organism: str,
    measurement_name: str = "RNA",
    modality: str = "census_data",
) -> sparse.csr_matrix:
    """Which dataset measured which gene (``cellxgene_census.get_presence_matrix``).

    Lifecycle: maturing.

    Parameters
    ----------
    census
        The census, from :func:`open_soma`.
    organism
        ``"Homo sapiens"``, ``"mus_musculus"``, ...
    measurement_name
        Measurement (``"RNA"``).
    modality
        Top-level collection.

    Returns
    -------
    scipy.sparse.csr_matrix
        Rows: dataset ``soma_joinid`` (``census_info/datasets``); columns: ``var`` ``soma_joinid``.

    Raises
    ------
    CensusNotFoundError
        Unknown organism or measurement, or no presence matrix (a ``ValueError``).
    """
    exp = experiment(census, organism, modality)
    ms = _measurement(exp, measurement_name, organism)
    if "feature_dataset_presence_matrix" not in ms:
        msg = f"{organism}: {ms.uri} has no feature_dataset_presence_matrix (no cells?)"
        raise CensusNotFoundError(msg)
    result: sparse.csr_matrix = cellxgene_census.get_presence_matrix(
        census, organism, measurement_name=measurement_name, modality=modality
    )
    return result


def estimate(
    census: soma.Collection[Any],
    organism: str,
    *,
    measurement_name: str = "RNA",
    X_name: str = "raw",
    obs_value_filter: str | None = None,
    obs_coords: SparseDFCoord | None = None,
    var_value_filter: str | None = None,
    var_coords: SparseDFCoord | None = None,
    obs_column_names: Sequence[str] | None = None,
    var_column_names: Sequence[str] | None = None,
    modality: str = "census_data",
) -> QueryEstimate:
    """Size of a query before running it: cells, genes, stored values and bytes in memory.

    Lifecycle: experimental.

    Reads only ``obs``/``var`` columns (``soma_joinid``, ``nnz``), never X.

    Parameters
    ----------
    census
        The census, from :func:`open_soma`.
    organism
        ``"Homo sapiens"``, ``"mus_musculus"``, ...
    measurement_name, X_name
        Measurement and X layer.
    obs_value_filter, obs_coords, var_value_filter, var_coords
        The query.
    obs_column_names, var_column_names
        Columns the result would hold.
    modality
        Top-level collection.

    Returns
    -------
    QueryEstimate
        ``n_obs``, ``n_vars``, ``nnz`` (exact without a gene selection), byte sizes.
    """
    exp = experiment(census, organism, modality)
    ms = _measurement(exp, measurement_name, organism)
    check_value_filter(exp.obs, obs_value_filter, where=f"obs_value_filter ({exp.uri})")
    check_value_filter(ms.var, var_value_filter, where=f"var_value_filter ({exp.uri})")
    _check_query_args(
        exp,
        measurement_name,
        obs_coords=obs_coords,
        var_coords=var_coords,
        obs_column_names=obs_column_names,
        var_column_names=var_column_names,
        column_names=None,
        layers=[X_name],
    )
    return estimate_query(
        exp,
        organism,
        measurement_name=measurement_name,
        X_name=X_name,
        obs_value_filter=obs_value_filter,
        obs_coords=obs_coords,
        var_value_filter=var_value_filter,
        var_coords=var_coords,
        obs_column_names=obs_column_names,
        var_column_names=var_column_names,
    )
