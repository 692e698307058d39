"""A query of a spatial experiment written as a SpatialData zarr store (``export_spatialdata``).

It runs TileDB-SOMA's own conversion, ``ExperimentAxisQuery.to_spatialdata`` (the table of the
query's cells and genes, and for every scene that holds one of those cells, per
``obs_spatial_presence``, its spots as circles and its tissue image), then
``SpatialData.write``. Needs the ``spatialdata`` package (the ``[spatial]`` extra), which today
cannot be installed beside cellcensus's ``[synth]`` pins: docs/spatial.md says how to make a
second environment for it (``scripts/setup_spatial.sh``).

Memory: the conversion holds the query's X (as ``get_anndata`` does; checked the same way before
anything is read) and the selected scenes' images. Select one dataset (``dataset_id == '...'``)
for a bounded export.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tiledbsoma as soma

from cellcensus._extras import missing_modules
from cellcensus.client._filters import check_value_filter
from cellcensus.client._query import MemoryCheck, check_memory, estimate, experiment
from cellcensus.errors import BadInputError, CensusNotFoundError, MissingExtraError

if TYPE_CHECKING:
    from somacore.options import SparseDFCoord

__all__ = ["SpatialDataExportResult", "export_spatialdata"]

logger = logging.getLogger(__name__)

_DISCLAIMER = "Support for spatial types is experimental"


@dataclass(frozen=True, kw_only=True)
class SpatialDataExportResult:
    """What :func:`export_spatialdata` wrote.

    Lifecycle: experimental.

    Attributes
    ----------
    path
        The SpatialData zarr store.
    n_obs, n_vars
        Cells and genes of its table (``tables["RNA"]``).
    scenes
        The scenes exported (dataset ids).
    shapes, images
        Keys of the SpatialData elements (``<scene>_loc``, ``<scene>_<library_id>``).
    seconds
        Wall time.
    """

    path: Path
    n_obs: int
    n_vars: int
    scenes: tuple[str, ...]
    shapes: tuple[str, ...]
    images: tuple[str, ...]
    seconds: float


def _require_spatialdata() -> None:
    missing = missing_modules(("spatialdata",))
    if missing:
        msg = (
            "export to SpatialData needs the optional [spatial] dependencies (the spatialdata "
            "package), which are not installed; they cannot be installed beside "
            "cellcensus[synth] or [all] today: make a second environment with "
            "scripts/setup_spatial.sh (docs/spatial.md, 'Installing spatialdata') or "
            "pip install 'cellcensus[spatial]' into one without [synth]"
        )
        raise MissingExtraError(msg)


def export_spatialdata(
    census: soma.Collection[Any],
    organism: str,
    *,
    to: str | Path,
    obs_value_filter: str | None = None,
    obs_coords: SparseDFCoord | None = None,
    var_value_filter: str | None = None,
    var_coords: SparseDFCoord | None = None,
    X_name: str = "raw",
    measurement_name: str = "RNA",
    modality: str = "census_spatial_sequencing",
    overwrite: bool = False,
    memory_check: MemoryCheck = "auto",
) -> SpatialDataExportResult:
    """Write a query of a spatial experiment as a SpatialData zarr store.

    Lifecycle: experimental.

    Parameters
    ----------
    census
        The census, from :func:`open_soma`.
    organism
        ``"Homo sapiens"``, ``"mus_musculus"``, ...
    to
        The store to write, a path ending in ``.zarr``.
    obs_value_filter, obs_coords, var_value_filter, var_coords
        The query, as for :func:`get_anndata`; e.g. ``"dataset_id == '<id>'"`` for one dataset.
    X_name
        X layer of the table (spatial experiments have ``raw`` only).
    measurement_name, modality
        Measurement and top-level collection (default ``census_spatial_sequencing``).
    overwrite
        Replace an existing store.
    memory_check
        As for :func:`get_anndata`: ``"auto"`` refuses a query whose table would not fit in
        memory.

    Returns
    -------
    SpatialDataExportResult
        The store, its table's size and the exported scenes.

    Raises
    ------
    MissingExtraError
        ``spatialdata`` is not installed.
    CensusNotFoundError
        Unknown organism, modality or layer, or an experiment without spatial data.
    FilterError
        Bad filter.
    BadInputError
        A path that does not end in ``.zarr``, an existing store (without ``overwrite``), or a
        query that selects no cell.
    """
    _require_spatialdata()
    t0 = time.perf_counter()
    path = Path(to).expanduser()
    if path.suffix != ".zarr":
        msg = f"a SpatialData store is a .zarr directory; got {str(path)!r}"
        raise BadInputError(msg, field="to")
    if path.exists() and not overwrite:
        msg = f"{path} exists; choose another path or pass overwrite=True (--overwrite)"
        raise BadInputError(msg, field="to")
    exp = experiment(census, organism, modality)
    if "spatial" not in exp:
        msg = (
            f"{modality}/{exp.uri.rstrip('/').rsplit('/', 1)[-1]} has no spatial data "
            "(no 'spatial' collection); spatial datasets are in census_spatial_sequencing"
        )
        raise CensusNotFoundError(msg)
    check_value_filter(exp.obs, obs_value_filter, where=f"obs_value_filter ({exp.uri})")
    if measurement_name in exp.ms:
        var = exp.ms[measurement_name].var
        check_value_filter(var, var_value_filter, where=f"var_value_filter ({exp.uri})")
    est = estimate(
        census,
        organism,
        measurement_name=measurement_name,
        X_name=X_name,
        obs_value_filter=obs_value_filter,
        obs_coords=obs_coords,
        var_value_filter=var_value_filter,
        var_coords=var_coords,
        modality=modality,
    )
    if est.n_obs == 0:
        msg = f"the query selects no cell of {modality}/{organism}; nothing to export"
        raise BadInputError(msg, field="obs_value_filter")
    check_memory(est, memory_check)
    obs_query = soma.AxisQuery(value_filter=obs_value_filter, coords=_coords(obs_coords))
    var_query = soma.AxisQuery(value_filter=var_value_filter, coords=_coords(var_coords))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DISCLAIMER)
        with exp.axis_query(measurement_name, obs_query=obs_query, var_query=var_query) as query:
            scenes = tuple(str(s) for s in query.obs_scene_ids().to_pylist())
            sdata = query.to_spatialdata(X_name=X_name)
    table = sdata.tables[measurement_name]
    sdata.write(str(path), overwrite=overwrite)
    result = SpatialDataExportResult(
        path=path,
        n_obs=int(table.n_obs),
        n_vars=int(table.n_vars),
        scenes=scenes,
        shapes=tuple(sorted(sdata.shapes)),
        images=tuple(sorted(sdata.images)),
        seconds=time.perf_counter() - t0,
    )
    logger.info(
        "wrote %s: %d cells x %d genes, scenes %s", path, result.n_obs, result.n_vars, scenes
    )
    return result


def _coords(coords: SparseDFCoord | None) -> tuple[Any, ...]:
    return () if coords is None else (coords,)
