"""Spatial scenes of ``census_spatial_sequencing``: checks of a spatial H5AD and the writers of its
Scene (coordinate space, ``obsl/loc`` point cloud, ``img/<library_id>`` multiscale image) and of the
experiment's ``obs_spatial_presence`` table, laid out as the official Census builder lays them out.

The builder decides which cells go where (obs, var, X are not written here); for each spatial
dataset with included spots it calls :func:`write_scene`, then once per experiment
:func:`write_obs_spatial_presence` with the returned rows. ``docs/spatial.md`` describes every
object, column, type and metadata key written.

Everything is streamed, so memory stays bounded whatever the size of the dataset: spot locations
are read and written in blocks of ``SPOT_BLOCK_ROWS`` H5AD rows (:func:`write_scene_streamed` never
holds a dataset-length array; :func:`write_scene` takes the spots' joinids as arrays, for callers
that have them), and whole rows of the H5AD image, at most ``image_block_bytes`` of them at a
time, are read, reordered to (channel, row, column) and written.
"""

from __future__ import annotations

import logging
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cellcensus._leftovers import drop_members
from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import h5py
    import numpy.typing as npt
    import tiledbsoma

    #: A scene's spots in one block of rows: the block's first H5AD row, the spots' row offsets
    #: from it (ascending) and their soma_joinids (ascending).
    _SpotBlock = tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64]]
    #: The spots block by block; called once per pass over them.
    _Spots = Callable[[], Iterator[_SpotBlock]]

__all__ = [
    "DEFAULT_IMAGE_BLOCK_BYTES",
    "DEFAULT_POINT_RADIUS",
    "IMAGE_LEVEL",
    "OBS_SPATIAL_PRESENCE",
    "OBS_SPATIAL_PRESENCE_SCHEMA",
    "SLIDE_SEQ_V2",
    "SPATIAL_ASSAYS",
    "SPATIAL_OBS_COLUMNS",
    "SPOT_BLOCK_ROWS",
    "VISIUM_V1",
    "SceneSummary",
    "SpatialSource",
    "check_assays",
    "location_rows",
    "presence_parts",
    "presence_table",
    "quiet_spatial_warnings",
    "read_spatial_source",
    "remove_obs_spatial_presence",
    "remove_scene",
    "write_obs_spatial_presence",
    "write_scene",
    "write_scene_streamed",
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

#: The obs columns a spatial experiment adds (int64), in census order.
SPATIAL_OBS_COLUMNS: Final = ("in_tissue", "array_row", "array_col")
#: H5AD rows whose spots are read at once (locations, and the caller's inclusion rule).
SPOT_BLOCK_ROWS: Final = 32_768
#: Rows of ``obs_spatial_presence`` written at once by :func:`presence_parts`.
PRESENCE_BATCH_ROWS: Final = 1 << 20
_DISCLAIMER: Final = "Support for spatial types is experimental"

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


def _n_obs(h5ad: h5py.Group, dataset_id: str) -> int:
    import h5py

    obs = h5ad.get("obs")
    if not isinstance(obs, h5py.Group):
        raise _bad(dataset_id, "obs", "is missing; is this a CELLxGENE-schema H5AD?")
    index = obs.get(str(obs.attrs.get("_index", "_index")))
    if index is None:
        raise _bad(dataset_id, "obs", "has no index; is this a CELLxGENE-schema H5AD?")
    return int(index.shape[0])


def read_spatial_source(
    h5ad: h5py.Group, *, dataset_id: str, assays: Iterable[object] | None = None
) -> SpatialSource:
    """Read and check the spatial parts of a spatial H5AD.

    Parameters
    ----------
    h5ad
        The open H5AD (an ``h5py.File`` in anndata's on-disk layout; elements are read with
        :func:`anndata.io.read_elem`, the image only by its metadata).
    dataset_id
        The dataset, for error messages.
    assays
        The distinct values of ``obs["assay_ontology_term_id"]`` when the caller already knows
        them (the builder's scan does); default: read the column.

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
        (n_obs, 2) or not numeric.
    """
    import h5py

    if assays is None:
        assays = _obs_assays(h5ad, dataset_id)
    present = sorted({str(a) for a in assays})
    if not check_assays(present, dataset_id=dataset_id):
        msg = f"no cell has a spatial assay {SPATIAL_ASSAYS}; it belongs in census_data"
        raise _bad(dataset_id, "assay_ontology_term_id", msg)
    if len(present) != 1:
        msg = f"has several spatial assays {present}; a spatial dataset has exactly one"
        raise _bad(dataset_id, "assay_ontology_term_id", msg)
    assay, n_obs = present[0], _n_obs(h5ad, dataset_id)

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

    positions = _positions(h5ad, dataset_id, assay)
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


def _positions(h5ad: h5py.Group, dataset_id: str, assay: str = "spatial") -> h5py.Dataset:
    """``obsm["spatial"]`` as an HDF5 dataset (sliced by rows, never read whole)."""
    import h5py

    obsm = h5ad.get("obsm")
    if not isinstance(obsm, h5py.Group) or "spatial" not in obsm:
        raise _bad(dataset_id, "obsm['spatial']", f"is missing; a {assay} dataset needs locations")
    positions = obsm["spatial"]
    if not isinstance(positions, h5py.Dataset):
        raise _bad(dataset_id, "obsm['spatial']", "must be a dense array")
    return positions


def location_rows(
    h5ad: h5py.Group, *, dataset_id: str, start: int, rows: npt.NDArray[np.int64]
) -> npt.NDArray[Any]:
    """Locations (``obsm["spatial"]`` rows) of some spots of one block, checked to be finite.

    Parameters
    ----------
    h5ad
        The open H5AD.
    dataset_id
        The dataset, for error messages.
    start
        First H5AD row of the block; ``rows`` are offsets from it (ascending).
    rows
        The spots wanted.

    Returns
    -------
    numpy.ndarray
        (len(rows), 2) in the dtype of ``obsm["spatial"]``.

    Raises
    ------
    BadInputError
        A location is NaN or infinite.
    """
    if len(rows) == 0:
        return np.empty((0, 2), dtype=_positions(h5ad, dataset_id).dtype)
    block = _positions(h5ad, dataset_id)[start : start + int(rows[-1]) + 1]
    values = np.asarray(block)[rows]
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = start + int(rows[np.flatnonzero(~np.isfinite(values).all(axis=1))[0]])
        msg = f"has NaN or infinite values (row {bad}); every included spot needs a location"
        raise _bad(dataset_id, "obsm['spatial']", msg)
    return values


@dataclass(frozen=True, kw_only=True)
class SceneSummary:
    """What :func:`write_scene_streamed` wrote for one dataset.

    Attributes
    ----------
    dataset_id
        The scene's name.
    n_spots
        Rows of its point cloud (= its rows in ``obs_spatial_presence``).
    joinid_min, joinid_max
        Smallest and largest soma_joinid of its spots.
    library_id
        The image's key under ``img`` (Visium), else None.
    image_shape
        (channels, rows, columns) of the ``hires`` level written (Visium), else None.
    point_radius
        ``soma_geometry`` of the point cloud.
    """

    dataset_id: str
    n_spots: int
    joinid_min: int
    joinid_max: int
    library_id: str | None
    image_shape: tuple[int, int, int] | None
    point_radius: float


@dataclass
class _Extent:
    """Spots seen in a pass: count, and the bounds of locations and joinids."""

    n: int = 0
    lo: npt.NDArray[Any] | None = None
    hi: npt.NDArray[Any] | None = None
    joinid_min: int = -1
    joinid_max: int = -1

    def add(self, locations: npt.NDArray[Any], joinids: npt.NDArray[np.int64]) -> None:
        if len(joinids) == 0:
            return
        if np.any(np.diff(joinids) <= 0) or (self.n and int(joinids[0]) <= self.joinid_max):
            msg = "soma_joinids must be ascending and unique, in H5AD row order"
            raise ValueError(msg)
        if int(joinids[0]) < 0:
            msg = "soma_joinids must be non-negative"
            raise ValueError(msg)
        lo, hi = locations.min(axis=0), locations.max(axis=0)
        self.lo = lo if self.lo is None else np.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else np.maximum(self.hi, hi)
        if not self.n:
            self.joinid_min = int(joinids[0])
        self.joinid_max = int(joinids[-1])
        self.n += len(joinids)


def _coordinate_space() -> tiledbsoma.CoordinateSpace:
    import tiledbsoma

    axes = tuple(tiledbsoma.Axis(name=name, unit=_UNIT) for name in _AXES)
    # somacore's attrs converter hides the constructor's element type from mypy
    return tiledbsoma.CoordinateSpace(axes)  # type: ignore[arg-type]


def _write_locations(
    scene: tiledbsoma.Scene,
    h5ad: h5py.Group,
    source: SpatialSource,
    spots: _Spots,
    extent: _Extent,
    *,
    allows_duplicates: bool,
) -> None:
    import tiledbsoma

    if extent.lo is None or extent.hi is None:
        msg = "no spots: a dataset without included spots has no scene"
        raise ValueError(msg)
    dtype = source.coordinate_dtype
    schema = pa.schema(
        [
            ("y", pa.from_numpy_dtype(dtype)),
            ("x", pa.from_numpy_dtype(dtype)),
            ("soma_joinid", pa.int64()),
        ]
    )
    domain = [
        (extent.lo[0].item(), extent.hi[0].item()),
        (extent.lo[1].item(), extent.hi[1].item()),
        (extent.joinid_min, extent.joinid_max),
    ]
    scene.add_new_collection("obsl")
    with scene.add_new_point_cloud_dataframe(
        _LOCATIONS,
        "obsl",
        schema=schema,
        coordinate_space=_coordinate_space(),
        transform=tiledbsoma.IdentityTransform(_AXES, _AXES),
        domain=domain,
        platform_config={"tiledb": {"create": {"allows_duplicates": allows_duplicates}}},
    ) as points:
        for start, rows, joinids in spots():
            if len(rows) == 0:
                continue
            loc = location_rows(h5ad, dataset_id=source.dataset_id, start=start, rows=rows)
            points.write(
                pa.table(
                    {
                        "y": pa.array(np.ascontiguousarray(loc[:, 0])),
                        "x": pa.array(np.ascontiguousarray(loc[:, 1])),
                        "soma_joinid": pa.array(joinids, type=pa.int64()),
                    },
                    schema=schema,
                )
            )
        points.metadata["soma_geometry"] = float(source.point_radius)
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


@contextmanager
def quiet_spatial_warnings() -> Iterator[None]:
    """Silence tiledbsoma's "Support for spatial types is experimental" on creating objects.

    Known, and not the caller's to act on; tiledbsoma warns on every spatial ``create``.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DISCLAIMER)
        yield


def _measure(
    h5ad: h5py.Group,
    source: SpatialSource,
    spots: _Spots,
) -> _Extent:
    """First pass over the spots: checks, count and bounds (the point cloud's domain)."""
    extent = _Extent()
    for start, rows, joinids in spots():
        if len(rows) != len(joinids):
            msg = f"{len(joinids)} soma_joinids for {len(rows)} H5AD rows"
            raise ValueError(msg)
        if len(rows) and (
            int(rows[0]) < 0 or start + int(rows[-1]) >= source.n_obs or np.any(np.diff(rows) <= 0)
        ):
            msg = f"rows must be ascending positions in [0, {source.n_obs})"
            raise ValueError(msg)
        loc = location_rows(h5ad, dataset_id=source.dataset_id, start=start, rows=rows)
        extent.add(loc, joinids)
    if extent.n == 0:
        msg = "no spots (no soma_joinids): a dataset without included spots has no scene"
        raise ValueError(msg)
    return extent


def _write(
    h5ad: h5py.Group,
    experiment_uri: str,
    source: SpatialSource,
    spots: _Spots,
    *,
    context: tiledbsoma.SOMATileDBContext | None,
    image_block_bytes: int,
    allows_duplicates: bool,
) -> SceneSummary:
    import tiledbsoma

    if image_block_bytes < 1:
        msg = f"image_block_bytes must be positive, got {image_block_bytes}"
        raise ValueError(msg)
    dataset_id = source.dataset_id
    extent = _measure(h5ad, source, spots)
    with (
        quiet_spatial_warnings(),
        tiledbsoma.Experiment.open(experiment_uri, "w", context=context) as experiment,
    ):
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
            _write_locations(
                scene, h5ad, source, spots, extent, allows_duplicates=allows_duplicates
            )
            if source.library_id is not None:
                _write_image(scene, h5ad["uns/spatial"][source.library_id], source,
                             image_block_bytes)  # fmt: skip
    logger.info(
        "scene %s: %d spots%s",
        dataset_id,
        extent.n,
        f", image {source.hires_shape}" if source.hires_shape else "",
    )
    image_shape = None
    if source.hires_shape is not None:
        image_shape = (3, source.hires_shape[0], source.hires_shape[1])
    return SceneSummary(
        dataset_id=dataset_id,
        n_spots=extent.n,
        joinid_min=extent.joinid_min,
        joinid_max=extent.joinid_max,
        library_id=source.library_id,
        image_shape=image_shape,
        point_radius=source.point_radius,
    )


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
    ``ScaleTransform(tissue_hires_scalef)``. See ``docs/spatial.md``. For a dataset too large to
    hold its joinids in memory, use :func:`write_scene_streamed`.

    Parameters
    ----------
    h5ad
        The open source H5AD (``h5py.File``).
    experiment_uri
        Absolute URI of an existing ``SOMAExperiment`` that has its ``spatial`` collection.
    dataset_id
        Names the scene; must not exist yet in ``spatial``.
    soma_joinids
        obs ``soma_joinid`` of the dataset's included spots, in H5AD row order (ascending).
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
    source = read_spatial_source(h5ad, dataset_id=dataset_id)
    joinids = np.asarray(soma_joinids, dtype=np.int64)
    positions = (
        np.arange(source.n_obs, dtype=np.int64)
        if rows is None
        else np.asarray(rows, dtype=np.int64)
    )
    if joinids.ndim != 1 or positions.shape != joinids.shape:
        msg = (
            f"{joinids.size} soma_joinids for {positions.size} H5AD rows of dataset "
            f"{dataset_id!r}; give one joinid per included row (rows=...)"
        )
        raise ValueError(msg)
    if positions.size and (
        positions[0] < 0 or positions[-1] >= source.n_obs or np.any(np.diff(positions) <= 0)
    ):
        msg = f"rows must be ascending positions in [0, {source.n_obs})"
        raise ValueError(msg)

    def spots() -> Iterator[_SpotBlock]:
        for lo in range(0, source.n_obs, SPOT_BLOCK_ROWS):
            a, b = np.searchsorted(positions, [lo, lo + SPOT_BLOCK_ROWS])
            yield lo, positions[a:b] - lo, joinids[a:b]

    _write(
        h5ad,
        experiment_uri,
        source,
        spots,
        context=context,
        image_block_bytes=image_block_bytes,
        allows_duplicates=allows_duplicates,
    )
    return presence_table(dataset_id, joinids)


def write_scene_streamed(
    h5ad: h5py.Group,
    experiment_uri: str,
    *,
    dataset_id: str,
    first_joinid: int,
    include: Callable[[int, int], npt.NDArray[np.bool_]] | None = None,
    assays: Iterable[object] | None = None,
    context: tiledbsoma.SOMATileDBContext | None = None,
    image_block_bytes: int = DEFAULT_IMAGE_BLOCK_BYTES,
    allows_duplicates: bool = False,
) -> SceneSummary:
    """Write a dataset's Scene as :func:`write_scene` does, in memory bounded by blocks of rows.

    The spots are the H5AD rows that ``include`` selects, numbered from ``first_joinid`` in row
    order (as the builder numbers a dataset's cells in obs). Rows are read in blocks of
    :data:`SPOT_BLOCK_ROWS`, twice (bounds, then writes), never as a dataset-length array.

    Parameters
    ----------
    h5ad
        The open source H5AD (``h5py.File``).
    experiment_uri
        Absolute URI of an existing ``SOMAExperiment`` that has its ``spatial`` collection.
    dataset_id
        Names the scene; must not exist yet in ``spatial``.
    first_joinid
        obs ``soma_joinid`` of the first included spot.
    include
        ``include(start, stop)``: which rows of ``[start, stop)`` are spots of the scene (a
        boolean mask); default every row.
    assays
        The dataset's distinct assay term ids, when known (else ``obs`` is read for them).
    context, image_block_bytes, allows_duplicates
        As for :func:`write_scene`.

    Returns
    -------
    SceneSummary
        Spots written and their joinid range; the scene's ``obs_spatial_presence`` rows are
        ``presence_parts(dataset_id, joinid_min, joinid_max + 1)``.

    Raises
    ------
    BadInputError
        The H5AD's spatial content is refused (see :func:`read_spatial_source`).
    ValueError
        No spot, or the experiment has no ``spatial`` collection or already has this scene.
    """
    source = read_spatial_source(h5ad, dataset_id=dataset_id, assays=assays)

    def spots() -> Iterator[_SpotBlock]:
        next_joinid = first_joinid
        for lo in range(0, source.n_obs, SPOT_BLOCK_ROWS):
            hi = min(lo + SPOT_BLOCK_ROWS, source.n_obs)
            mask = np.ones(hi - lo, dtype=bool) if include is None else include(lo, hi)
            rows = np.flatnonzero(mask).astype(np.int64)
            joinids = np.arange(next_joinid, next_joinid + len(rows), dtype=np.int64)
            next_joinid += len(rows)
            yield lo, rows, joinids

    return _write(
        h5ad,
        experiment_uri,
        source,
        spots,
        context=context,
        image_block_bytes=image_block_bytes,
        allows_duplicates=allows_duplicates,
    )


def remove_scene(
    experiment_uri: str, dataset_id: str, *, context: tiledbsoma.SOMATileDBContext | None = None
) -> bool:
    """Drop a (half-written) scene: its member of ``spatial`` and, for a local experiment, its
    directory. Returns whether anything was there.

    A write interrupted inside :func:`write_scene` leaves a scene that readers would take as
    complete; a resumed build calls this before writing the scene again.
    """
    return drop_members(f"{experiment_uri.rstrip('/')}/spatial", (dataset_id,), context)


def remove_obs_spatial_presence(
    experiment_uri: str, *, context: tiledbsoma.SOMATileDBContext | None = None
) -> bool:
    """Drop a (half-written) ``obs_spatial_presence``, as :func:`remove_scene` drops a scene."""
    return drop_members(experiment_uri, (OBS_SPATIAL_PRESENCE,), context)


def presence_table(scene_id: str, joinids: npt.ArrayLike) -> pa.Table:
    """``obs_spatial_presence`` rows of one scene: its spots' joinids, ``scene_id``, True."""
    ids = np.asarray(joinids, dtype=np.int64)
    return pa.table(
        {
            "soma_joinid": pa.array(ids, type=pa.int64()),
            "scene_id": pa.array(np.full(ids.size, scene_id, dtype=object), pa.string()),
            "data": pa.array(np.ones(ids.size, dtype=bool)),
        },
        schema=OBS_SPATIAL_PRESENCE_SCHEMA,
    )


def presence_parts(
    scene_id: str, start: int, stop: int, *, batch_rows: int = PRESENCE_BATCH_ROWS
) -> Iterator[pa.Table]:
    """``obs_spatial_presence`` rows of a scene whose spots are the joinids ``[start, stop)``,
    in tables of at most ``batch_rows`` rows."""
    for lo in range(start, stop, batch_rows):
        yield presence_table(scene_id, np.arange(lo, min(lo + batch_rows, stop), dtype=np.int64))


def write_obs_spatial_presence(
    experiment_uri: str,
    parts: Iterable[pa.Table],
    *,
    joinid_domain: tuple[int, int] | None = None,
    context: tiledbsoma.SOMATileDBContext | None = None,
) -> int:
    """Create and write the experiment's ``obs_spatial_presence`` from the rows of its scenes.

    Parameters
    ----------
    experiment_uri
        Absolute URI of the ``SOMAExperiment``.
    parts
        Rows of the scenes (:func:`write_scene`'s result, or :func:`presence_parts`), in
        ascending ``soma_joinid`` order; each part is one write, so none needs to hold more than
        a bounded number of rows.
    joinid_domain
        (smallest, largest) soma_joinid of all parts; when None the parts are gathered first to
        find it.
    context
        TileDB-SOMA context for the writes.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    ValueError
        No rows (an experiment without scenes has no ``obs_spatial_presence``), a part of another
        schema, joinids not ascending (a soma_joinid in two rows), or outside ``joinid_domain``.
    """
    import tiledbsoma

    if joinid_domain is None:
        parts = list(parts)
        nonempty = [p for p in parts if p.num_rows]
        if not nonempty:
            msg = "no scenes: an experiment without spatial data has no obs_spatial_presence"
            raise ValueError(msg)
        joinid_domain = (
            min(int(pc.min(p["soma_joinid"]).as_py()) for p in nonempty),
            max(int(pc.max(p["soma_joinid"]).as_py()) for p in nonempty),
        )
    lo, hi = joinid_domain
    written = 0
    last = -1
    with (
        tiledbsoma.Experiment.open(experiment_uri, "w", context=context) as experiment,
        experiment.add_new_dataframe(
            OBS_SPATIAL_PRESENCE,
            schema=OBS_SPATIAL_PRESENCE_SCHEMA,
            index_column_names=["soma_joinid", "scene_id"],
            domain=[(lo, hi), ("", "")],
        ) as frame,
    ):
        for part in parts:
            if not part.schema.equals(OBS_SPATIAL_PRESENCE_SCHEMA):
                msg = f"a part has schema {part.schema}, expected {OBS_SPATIAL_PRESENCE_SCHEMA}"
                raise ValueError(msg)
            if part.num_rows == 0:
                continue
            joinids = part["soma_joinid"].to_numpy()
            if int(joinids[0]) <= last or np.any(np.diff(joinids) <= 0):
                msg = "soma_joinids must ascend over all parts (a soma_joinid in two scenes?)"
                raise ValueError(msg)
            if int(joinids[0]) < lo or int(joinids[-1]) > hi:
                msg = f"soma_joinids {joinids[0]}..{joinids[-1]} outside the domain {lo}..{hi}"
                raise ValueError(msg)
            frame.write(part)
            last = int(joinids[-1])
            written += part.num_rows
    if not written:
        msg = "no scenes: an experiment without spatial data has no obs_spatial_presence"
        raise ValueError(msg)
    return written
