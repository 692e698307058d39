"""Spatial scenes of ``census_spatial_sequencing``: checks of a spatial H5AD and the writers of its
Scene (coordinate space, ``obsl/loc`` point cloud, ``img/<library_id>`` multiscale image) and of the
experiment's ``obs_spatial_presence`` table, laid out as the official Census builder lays them out.

The builder decides which cells go where (obs, var, X are not written here); for each spatial
dataset with included spots it calls :func:`write_scene`, then once per experiment
:func:`write_obs_spatial_presence` with the returned rows. ``docs/spatial.md`` describes every
object, column, type and metadata key written.

Images are streamed: whole rows of the H5AD image, at most ``image_block_bytes`` of them at a time,
are read, reordered to (channel, row, column) and written, so memory stays bounded whatever the
image size.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa

from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import h5py
    import numpy.typing as npt
    import tiledbsoma

__all__ = [
    "DEFAULT_IMAGE_BLOCK_BYTES",
    "DEFAULT_POINT_RADIUS",
    "IMAGE_LEVEL",
    "OBS_SPATIAL_PRESENCE",
    "OBS_SPATIAL_PRESENCE_SCHEMA",
    "SLIDE_SEQ_V2",
    "SPATIAL_ASSAYS",
    "VISIUM_V1",
    "SpatialSource",
    "check_assays",
    "read_spatial_source",
    "write_obs_spatial_presence",
    "write_scene",
]

logger = logging.getLogger(__name__)

#: Visium Spatial Gene Expression V1.
VISIUM_V1: Final = "EFO:0022857"
#: Slide-seqV2.
SLIDE_SEQ_V2: Final = "EFO:0030062"
#: The assays of ``census_spatial_sequencing`` (exact term ids, as the official builder).
SPATIAL_ASSAYS: Final = (VISIUM_V1, SLIDE_SEQ_V2)
#: Spot radius (full-resolution pixels) of a dataset without scale factors (Slide-seqV2).
DEFAULT_POINT_RADIUS: Final = 2.0
#: Name of the one level of a scene's multiscale image.
IMAGE_LEVEL: Final = "hires"
#: Upper bound of the image bytes read per block (whole rows; at least one row).
DEFAULT_IMAGE_BLOCK_BYTES: Final = 16 << 20
#: Name of the experiment's obs-to-scene table.
OBS_SPATIAL_PRESENCE: Final = "obs_spatial_presence"
#: Its Arrow schema as the official builder writes it (``scene_id`` reads back as large_string).
OBS_SPATIAL_PRESENCE_SCHEMA: Final = pa.schema(
    [("soma_joinid", pa.int64()), ("scene_id", pa.string()), ("data", pa.bool_())]
)

_AXES: Final = ("y", "x")
_UNIT: Final = "pixels"
_LOCATIONS: Final = "loc"
_ROW_ALIGN: Final = 128  # tiledbsoma's default dense tile extent: blocks start on tile rows


@dataclass(frozen=True, kw_only=True)
class SpatialSource:
    """What the spatial parts of one H5AD hold, read and checked by :func:`read_spatial_source`.

    Attributes
    ----------
    dataset_id
        The dataset.
    assay
        Its (single) spatial assay term id.
    n_obs
        Rows of the H5AD.
    library_id
        The key of ``uns["spatial"]`` other than ``is_single`` (Visium), else None.
    spot_diameter_fullres, tissue_hires_scalef
        The library's scale factors (Visium), else None.
    hires_shape
        Shape of ``images["hires"]`` as stored: (rows, columns, channels) (Visium), else None.
    coordinate_dtype
        dtype of ``obsm["spatial"]`` (the point cloud's ``y``/``x`` columns keep it).
    """

    dataset_id: str
    assay: str
    n_obs: int
    library_id: str | None
    spot_diameter_fullres: float | None
    tissue_hires_scalef: float | None
    hires_shape: tuple[int, int, int] | None
    coordinate_dtype: np.dtype[Any]

    @property
    def point_radius(self) -> float:
        """``soma_geometry`` of the point cloud: half the spot diameter, or 2.0 without one."""
        if self.spot_diameter_fullres is None:
            return DEFAULT_POINT_RADIUS
        return self.spot_diameter_fullres / 2


def check_assays(assay_ids: Iterable[object], *, dataset_id: str) -> bool:
    """Tell whether a dataset's cells are spatial, refusing a mix of spatial and other assays.

    Parameters
    ----------
    assay_ids
        ``obs["assay_ontology_term_id"]`` of the dataset (any iterable of term ids).
    dataset_id
        The dataset, for the error message.

    Returns
    -------
    bool
        True if every cell has a spatial assay (:data:`SPATIAL_ASSAYS`), False if none has.

    Raises
    ------
    BadInputError
        Some cells have a spatial assay and others do not.
    """
    present = {str(a) for a in assay_ids}
    spatial = present & set(SPATIAL_ASSAYS)
    if spatial and present - spatial:
        msg = (
            f"mixes spatial assays {sorted(spatial)} with other assays "
            f"{sorted(present - spatial)}; a dataset is either spatial (census_spatial_sequencing) "
            "or not (census_data): split it into one dataset per kind"
        )
        raise BadInputError(msg, dataset_id=dataset_id, field="assay_ontology_term_id")
    return bool(spatial)


def _bad(dataset_id: str, field: str, message: str) -> BadInputError:
    return BadInputError(message, dataset_id=dataset_id, field=field)


def _read(group: h5py.Group, key: str) -> Any:  # noqa: ANN401 - anndata elements are untyped
    from anndata.io import read_elem

    return read_elem(group[key])


def _positive_float(value: object, dataset_id: str, field: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        msg = f"must be a number, got {type(value).__name__}"
        raise _bad(dataset_id, field, msg)
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        msg = f"must be a finite positive number, got {number!r}"
        raise _bad(dataset_id, field, msg)
    return number


def _obs_assays(h5ad: h5py.Group, dataset_id: str) -> npt.NDArray[np.object_]:
    field = "obs['assay_ontology_term_id']"
    if "obs" not in h5ad or "assay_ontology_term_id" not in h5ad["obs"]:
        raise _bad(dataset_id, field, "is missing; is this a CELLxGENE-schema H5AD?")
    return np.asarray(_read(h5ad["obs"], "assay_ontology_term_id"), dtype=object)


def _library(spatial: h5py.Group, dataset_id: str, assay: str) -> str | None:
    libraries = sorted(k for k in spatial if k != "is_single")
    if len(libraries) > 1:
        msg = f"has {len(libraries)} libraries {libraries}; a census scene holds exactly one"
        raise _bad(dataset_id, "uns['spatial']", msg)
    if assay == VISIUM_V1 and not libraries:
        msg = "has no library (the key holding 'images' and 'scalefactors'), required for Visium"
        raise _bad(dataset_id, "uns['spatial']", msg)
    if assay != VISIUM_V1 and libraries:
        msg = f"has library {libraries[0]!r}, which the dataset schema allows for Visium only"
        raise _bad(dataset_id, "uns['spatial']", msg)
    return libraries[0] if libraries else None


def _hires_shape(library: h5py.Group, dataset_id: str, library_id: str) -> tuple[int, int, int]:
    import h5py

    field = f"uns['spatial'][{library_id!r}]['images']['hires']"
    images = library.get("images")
    if not isinstance(images, h5py.Group) or not isinstance(images.get("hires"), h5py.Dataset):
        raise _bad(dataset_id, field, "is missing; a Visium library needs its hires image")
    image = images["hires"]
    if image.dtype != np.uint8:
        msg = f"must be a uint8 image, got dtype {image.dtype}"
        raise _bad(dataset_id, field, msg)
    shape = tuple(int(n) for n in image.shape)
    if len(shape) != 3 or shape[2] not in (3, 4) or shape[0] < 1 or shape[1] < 1:
        msg = f"must have shape (rows, columns, 3 or 4), got {shape}"
        raise _bad(dataset_id, field, msg)
    return shape[0], shape[1], shape[2]


def _check_is_single(spatial: h5py.Group, dataset_id: str) -> None:
    field = "uns['spatial']['is_single']"
    if "is_single" not in spatial:
        raise _bad(dataset_id, field, "is missing")
    is_single = _read(spatial, "is_single")
    if not isinstance(is_single, bool | np.bool_):
        msg = f"must be a boolean, got {type(is_single).__name__}"
        raise _bad(dataset_id, field, msg)
    if not bool(is_single):
        msg = (
            "is False, yet the dataset has cells for the census; the census holds single-section "
            "(is_single True) spatial datasets only, and with is_single False every cell must have "
            "is_primary_data False"
        )
        raise _bad(dataset_id, field, msg)


def _scale_factors(spatial: h5py.Group, dataset_id: str, library_id: str) -> tuple[float, float]:
    import h5py

    field = f"uns['spatial'][{library_id!r}]['scalefactors']"
    library = spatial[library_id]
    if not isinstance(library, h5py.Group) or "scalefactors" not in library:
        raise _bad(dataset_id, field, "is missing")
    factors = _read(library, "scalefactors")
    if not isinstance(factors, dict):
        raise _bad(dataset_id, field, "must be a dict")
    values = []
    for key in ("spot_diameter_fullres", "tissue_hires_scalef"):
        if key not in factors:
            raise _bad(dataset_id, f"{field}[{key!r}]", "is missing")
        values.append(_positive_float(factors[key], dataset_id, f"{field}[{key!r}]"))
    return values[0], values[1]


def read_spatial_source(h5ad: h5py.Group, *, dataset_id: str) -> SpatialSource:
    """Read and check the spatial parts of a spatial H5AD.

    Parameters
    ----------
    h5ad
        The open H5AD (an ``h5py.File`` in anndata's on-disk layout; elements are read with
        :func:`anndata.io.read_elem`, the image only by its metadata).
    dataset_id
        The dataset, for error messages.

    Returns
    -------
    SpatialSource
        Library, scale factors, image shape and coordinate dtype.

    Raises
    ------
    BadInputError
        The assays are not all one spatial assay; ``uns['spatial']`` is missing, has no boolean
        ``is_single`` or it is not True, has more than one library, a library where the assay allows
        none (or none for Visium), missing or non-positive scale factors, or a hires image that is
        missing, not uint8 or not (rows, columns, 3|4); ``obsm['spatial']`` is missing, not
        (n_obs, 2), not numeric or not finite.
    """
    import h5py

    assays = _obs_assays(h5ad, dataset_id)
    if not check_assays(assays, dataset_id=dataset_id):
        msg = f"no cell has a spatial assay {SPATIAL_ASSAYS}; it belongs in census_data"
        raise _bad(dataset_id, "assay_ontology_term_id", msg)
    present = sorted({str(a) for a in assays})
    if len(present) != 1:
        msg = f"has several spatial assays {present}; a spatial dataset has exactly one"
        raise _bad(dataset_id, "assay_ontology_term_id", msg)
    assay, n_obs = present[0], len(assays)

    spatial = h5ad.get("uns/spatial")
    if not isinstance(spatial, h5py.Group):
        msg = f"is missing; a {assay} dataset must have the dict uns['spatial'] (dataset schema 7)"
        raise _bad(dataset_id, "uns['spatial']", msg)
    _check_is_single(spatial, dataset_id)
    library_id = _library(spatial, dataset_id, assay)
    diameter = scalef = None
    hires_shape = None
    if library_id is not None:
        diameter, scalef = _scale_factors(spatial, dataset_id, library_id)
        hires_shape = _hires_shape(spatial[library_id], dataset_id, library_id)

    obsm = h5ad.get("obsm")
    if not isinstance(obsm, h5py.Group) or "spatial" not in obsm:
        raise _bad(dataset_id, "obsm['spatial']", f"is missing; a {assay} dataset needs locations")
    positions = obsm["spatial"]
    if not isinstance(positions, h5py.Dataset):
        raise _bad(dataset_id, "obsm['spatial']", "must be a dense array")
    if positions.ndim != 2 or positions.shape != (n_obs, 2):
        msg = f"must have shape (n_obs, 2) = ({n_obs}, 2), got {positions.shape}"
        raise _bad(dataset_id, "obsm['spatial']", msg)
    if positions.dtype.kind not in "iuf":
        raise _bad(dataset_id, "obsm['spatial']", f"must be numeric, got dtype {positions.dtype}")
    return SpatialSource(
        dataset_id=dataset_id,
        assay=assay,
        n_obs=n_obs,
        library_id=library_id,
        spot_diameter_fullres=diameter,
        tissue_hires_scalef=scalef,
        hires_shape=hires_shape,
        coordinate_dtype=positions.dtype,
    )


def _locations(
    h5ad: h5py.Group, source: SpatialSource, rows: npt.NDArray[np.int64]
) -> npt.NDArray[Any]:
    values = np.asarray(_read(h5ad["obsm"], "spatial"))[rows]
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        msg = "has NaN or infinite values; every included spot needs a location"
        raise _bad(source.dataset_id, "obsm['spatial']", msg)
    return values


def _check_rows(
    source: SpatialSource, soma_joinids: npt.ArrayLike, rows: npt.ArrayLike | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    joinids = np.asarray(soma_joinids, dtype=np.int64)
    if joinids.ndim != 1 or joinids.size == 0:
        msg = "soma_joinids must be a non-empty 1-D array (a dataset without spots has no scene)"
        raise ValueError(msg)
    if rows is None:
        positions = np.arange(source.n_obs, dtype=np.int64)
    else:
        positions = np.asarray(rows, dtype=np.int64)
    if positions.shape != joinids.shape:
        msg = (
            f"{joinids.size} soma_joinids for {positions.size} H5AD rows of dataset "
            f"{source.dataset_id!r}; give one joinid per included row (rows=...)"
        )
        raise ValueError(msg)
    if positions.size and (
        positions[0] < 0 or positions[-1] >= source.n_obs or np.any(np.diff(positions) <= 0)
    ):
        msg = f"rows must be ascending positions in [0, {source.n_obs})"
        raise ValueError(msg)
    if joinids.min() < 0 or np.unique(joinids).size != joinids.size:
        msg = "soma_joinids must be unique and non-negative"
        raise ValueError(msg)
    return joinids, positions


def _coordinate_space() -> tiledbsoma.CoordinateSpace:
    import tiledbsoma

    axes = tuple(tiledbsoma.Axis(name=name, unit=_UNIT) for name in _AXES)
    # somacore's attrs converter hides the constructor's element type from mypy
    return tiledbsoma.CoordinateSpace(axes)  # type: ignore[arg-type]


def _write_locations(
    scene: tiledbsoma.Scene,
    locations: npt.NDArray[Any],
    joinids: npt.NDArray[np.int64],
    radius: float,
    allows_duplicates: bool,
) -> None:
    import tiledbsoma

    table = pa.table(
        {
            "y": pa.array(np.ascontiguousarray(locations[:, 0])),
            "x": pa.array(np.ascontiguousarray(locations[:, 1])),
            "soma_joinid": pa.array(joinids, type=pa.int64()),
        }
    )
    domain = [
        (locations[:, 0].min().item(), locations[:, 0].max().item()),
        (locations[:, 1].min().item(), locations[:, 1].max().item()),
        (int(joinids.min()), int(joinids.max())),
    ]
    scene.add_new_collection("obsl")
    space = _coordinate_space()
    with scene.add_new_point_cloud_dataframe(
        _LOCATIONS,
        "obsl",
        schema=table.schema,
        coordinate_space=space,
        transform=tiledbsoma.IdentityTransform(_AXES, _AXES),
        domain=domain,
        platform_config={"tiledb": {"create": {"allows_duplicates": allows_duplicates}}},
    ) as points:
        points.write(table)
        points.metadata["soma_geometry"] = float(radius)
        points.metadata["soma_geometry_type"] = "radius"


def _rows_per_block(shape: tuple[int, int, int], block_bytes: int) -> int:
    row_bytes = shape[1] * shape[2]  # uint8
    rows = max(1, block_bytes // row_bytes)
    if rows >= _ROW_ALIGN:
        rows -= rows % _ROW_ALIGN
    return min(rows, shape[0])


def _write_image(
    scene: tiledbsoma.Scene,
    library: h5py.Group,
    source: SpatialSource,
    block_bytes: int,
) -> None:
    import tiledbsoma

    if source.library_id is None or source.hires_shape is None or not source.tissue_hires_scalef:
        msg = "a library with a hires image and scale factors is needed"
        raise ValueError(msg)
    n_rows, n_cols, _ = source.hires_shape
    scale = source.tissue_hires_scalef
    scene.add_new_collection("img")
    image = scene.add_new_multiscale_image(
        source.library_id,
        "img",
        transform=tiledbsoma.ScaleTransform(_AXES, _AXES, (scale, scale)),
        coordinate_space=_coordinate_space(),
        level_key=IMAGE_LEVEL,
        level_shape=(3, n_rows, n_cols),
        type=pa.uint8(),
    )
    # the H5AD image is anndata's dense "array" encoding, an HDF5 dataset: slicing it reads only
    # the requested rows (as anndata's backed mode does)
    pixels = library["images"]["hires"]
    step = _rows_per_block(source.hires_shape, block_bytes)
    with image:
        level = image[IMAGE_LEVEL]
        for start in range(0, n_rows, step):
            stop = min(start + step, n_rows)
            block = pixels[start:stop]  # (rows, columns, channels)
            planar = np.ascontiguousarray(np.transpose(block[:, :, :3], (2, 0, 1)))
            del block
            # SOMA coordinates are closed ranges
            level.write(
                (slice(0, 2), slice(start, stop - 1), slice(0, n_cols - 1)),
                pa.Tensor.from_numpy(planar),
            )
            del planar


def write_scene(
    h5ad: h5py.Group,
    experiment_uri: str,
    *,
    dataset_id: str,
    soma_joinids: npt.ArrayLike,
    rows: npt.ArrayLike | None = None,
    context: tiledbsoma.SOMATileDBContext | None = None,
    image_block_bytes: int = DEFAULT_IMAGE_BLOCK_BYTES,
    allows_duplicates: bool = False,
) -> pa.Table:
    """Write the Scene ``spatial/<dataset_id>`` of one spatial dataset into an experiment.

    The scene gets the coordinate space (``y``, ``x`` in pixels), the point cloud ``obsl/loc``
    (``y``, ``x``, ``soma_joinid``; ``soma_geometry`` = spot radius, ``soma_geometry_type`` =
    ``"radius"``; identity transform) and, for Visium, the multiscale image ``img/<library_id>``
    with the single level ``hires`` (3, rows, columns) uint8 and the transform
    ``ScaleTransform(tissue_hires_scalef)``. See ``docs/spatial.md``.

    Parameters
    ----------
    h5ad
        The open source H5AD (``h5py.File``).
    experiment_uri
        Absolute URI of an existing ``SOMAExperiment`` that has its ``spatial`` collection.
    dataset_id
        Names the scene; must not exist yet in ``spatial``.
    soma_joinids
        obs ``soma_joinid`` of the dataset's included spots, in H5AD row order.
    rows
        H5AD row positions of those spots (ascending, one per joinid); default: every row.
    context
        TileDB-SOMA context for the writes.
    image_block_bytes
        Upper bound of the image bytes read per block (whole rows, at least one).
    allows_duplicates
        ``allows_duplicates`` of the point cloud array (the official builder: True).

    Returns
    -------
    pyarrow.Table
        The dataset's ``obs_spatial_presence`` rows: ``soma_joinid`` (int64), ``scene_id``
        (string, = dataset_id), ``data`` (bool, True).

    Raises
    ------
    BadInputError
        The H5AD's spatial content is refused (see :func:`read_spatial_source`).
    ValueError
        ``soma_joinids``/``rows`` are inconsistent, or the experiment has no ``spatial``
        collection or already has this scene.
    """
    import tiledbsoma

    if image_block_bytes < 1:
        msg = f"image_block_bytes must be positive, got {image_block_bytes}"
        raise ValueError(msg)
    source = read_spatial_source(h5ad, dataset_id=dataset_id)
    joinids, positions = _check_rows(source, soma_joinids, rows)
    locations = _locations(h5ad, source, positions)

    with warnings.catch_warnings():
        # "Support for spatial types is experimental": known, and not the caller's to act on
        warnings.filterwarnings("ignore", message="Support for spatial types is experimental")
        with tiledbsoma.Experiment.open(experiment_uri, "w", context=context) as experiment:
            if "spatial" not in experiment:
                msg = f"experiment {experiment_uri} has no 'spatial' collection; create it first"
                raise ValueError(msg)
            spatial = experiment["spatial"]
            if not isinstance(spatial, tiledbsoma.Collection):
                msg = f"{experiment_uri}/spatial is a {type(spatial).__name__}, not a Collection"
                raise ValueError(msg)  # noqa: TRY004 - a broken experiment, not a wrong argument type
            if dataset_id in spatial:
                msg = f"scene {dataset_id!r} already exists in {experiment_uri}/spatial"
                raise ValueError(msg)
            with spatial.add_new_collection(dataset_id, kind=tiledbsoma.Scene) as scene:
                scene.coordinate_space = _coordinate_space()
                _write_locations(scene, locations, joinids, source.point_radius, allows_duplicates)
                if source.library_id is not None:
                    _write_image(scene, h5ad["uns/spatial"][source.library_id], source,
                                 image_block_bytes)  # fmt: skip
    logger.info(
        "scene %s: %d spots%s",
        dataset_id,
        joinids.size,
        f", image {source.hires_shape}" if source.hires_shape else "",
    )
    return pa.table(
        {
            "soma_joinid": pa.array(joinids, type=pa.int64()),
            "scene_id": pa.array(np.full(joinids.size, dataset_id, dtype=object), pa.string()),
            "data": pa.array(np.ones(joinids.size, dtype=bool)),
        },
        schema=OBS_SPATIAL_PRESENCE_SCHEMA,
    )


def write_obs_spatial_presence(
    experiment_uri: str,
    parts: Sequence[pa.Table],
    *,
    context: tiledbsoma.SOMATileDBContext | None = None,
) -> int:
    """Create and write the experiment's ``obs_spatial_presence`` from the rows of its scenes.

    Parameters
    ----------
    experiment_uri
        Absolute URI of the ``SOMAExperiment``.
    parts
        What :func:`write_scene` returned for each scene of the experiment, in build order.
    context
        TileDB-SOMA context for the writes.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    ValueError
        No parts (an experiment without scenes has no ``obs_spatial_presence``), a part of another
        schema, or a soma_joinid in two rows.
    """
    import tiledbsoma

    if not parts:
        msg = "no scenes: an experiment without spatial data has no obs_spatial_presence"
        raise ValueError(msg)
    for part in parts:
        if not part.schema.equals(OBS_SPATIAL_PRESENCE_SCHEMA):
            msg = f"a part has schema {part.schema}, expected {OBS_SPATIAL_PRESENCE_SCHEMA}"
            raise ValueError(msg)
    table = pa.concat_tables(parts).combine_chunks()
    joinids = table["soma_joinid"].to_numpy()
    if np.unique(joinids).size != joinids.size:
        msg = "a soma_joinid appears in two scenes"
        raise ValueError(msg)
    domain = [(int(joinids.min()), int(joinids.max())), ("", "")]
    with (
        tiledbsoma.Experiment.open(experiment_uri, "w", context=context) as experiment,
        experiment.add_new_dataframe(
            OBS_SPATIAL_PRESENCE,
            schema=OBS_SPATIAL_PRESENCE_SCHEMA,
            index_column_names=["soma_joinid", "scene_id"],
            domain=domain,
        ) as frame,
    ):
        frame.write(table)
    return int(table.num_rows)
