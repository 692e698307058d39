"""Validation of census_spatial_sequencing's scenes against their sources (part of ``validate``).

Per dataset (:func:`check_scene`): its scene exists with the (y, x) pixel coordinate space; the
point cloud has one row per cell of the dataset, with the dataset's joinid range, and the sampled
cells' locations equal the source's ``obsm["spatial"]`` rows; the spot radius; for Visium the
image's shape (3, rows, columns), a few of its pixel rows and its scale factor, for Slide-seqV2 no
image. Per experiment (:func:`check_presence`): one scene per dataset of obs, and
``obs_spatial_presence`` has exactly the obs rows, each with its dataset's scene.

Memory: point clouds and ``obs_spatial_presence`` are streamed in batches; only the sampled
cells' locations and a few pixel rows are held.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cellcensus import _spatial
from cellcensus.builder import _schema as S
from cellcensus.builder._source import H5ADSource

if TYPE_CHECKING:
    import numpy.typing as npt
    import tiledbsoma as soma

    from cellcensus.builder.validate import _Experiment

#: Pixel rows of each image compared with the source (first, middle, last).
_PIXEL_ROWS = 3


def spatial_columns(ctx: _Experiment, dataset_ids: list[str]) -> tuple[str, ...]:
    """The spatial obs columns (in_tissue, ...) that some source of the experiment has."""
    present: set[str] = set()
    for dataset_id in dataset_ids:
        with H5ADSource(ctx.h5ads / f"{dataset_id}.h5ad", dataset_id) as src:
            present.update(c for c in S.SPATIAL_OBS_NUMERIC if c in src.obs_columns())
    return tuple(c for c in S.SPATIAL_OBS_NUMERIC if c in present)


def _points(
    loc: Any,  # noqa: ANN401 - a tiledbsoma PointCloudDataFrame
    joinids: npt.NDArray[np.int64],
) -> tuple[int, int, int, dict[int, tuple[float, float]]]:
    """Stream a point cloud: rows, smallest and largest joinid, locations of ``joinids``."""
    wanted = np.sort(joinids)
    n, lo, hi = 0, -1, -1
    found: dict[int, tuple[float, float]] = {}
    for batch in loc.read(column_names=["soma_joinid", "y", "x"]):
        if batch.num_rows == 0:
            continue
        ids = batch["soma_joinid"]
        a, b = pc.min_max(ids).values()
        lo = a.as_py() if n == 0 else min(lo, a.as_py())
        hi = max(hi, b.as_py())
        n += batch.num_rows
        ids_np = ids.to_numpy()
        hit = np.flatnonzero(np.isin(ids_np, wanted))
        if len(hit):
            sub = batch.take(pa.array(hit))
            for j, y, x in zip(
                sub["soma_joinid"].to_pylist(),
                sub["y"].to_pylist(),
                sub["x"].to_pylist(),
                strict=True,
            ):
                found[int(j)] = (float(y), float(x))
    return n, lo, hi, found


def check_scene(
    ctx: _Experiment,
    src: H5ADSource,
    dataset_id: str,
    *,
    joinids: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
) -> None:
    """The scene of one dataset against its source (``joinids``/``rows``: the sampled cells)."""
    rep, name = ctx.rep, ctx.name
    where = f"{name}/spatial/{dataset_id}"
    if not rep.expect(dataset_id in ctx.exp.spatial, f"{where}: the dataset has no scene"):
        return
    scene: soma.Scene = ctx.exp.spatial[dataset_id]
    assays = src.read_obs_rows(["assay_ontology_term_id"], rows[:1])["assay_ontology_term_id"]
    source = _spatial.read_spatial_source(src.file, dataset_id=dataset_id, assays=set(assays))
    space = scene.coordinate_space
    axes = [(a.name, a.unit) for a in space.axes] if space is not None else []
    rep.expect(axes == [("y", "pixels"), ("x", "pixels")], f"{where}: coordinate space is {axes}")
    if not rep.expect("obsl" in scene and "loc" in scene.obsl, f"{where}: no obsl/loc"):
        return
    loc = scene.obsl["loc"]
    n_cells = ctx.totals.cells.get(dataset_id, 0)
    first = ctx.totals.first.get(dataset_id, -1)
    n, lo, hi, found = _points(loc, joinids)
    rep.expect(
        n == n_cells and lo == first and hi == first + n_cells - 1,
        f"{where}/obsl/loc: {n} spots (joinids {lo}..{hi}), obs has {n_cells} "
        f"(joinids {first}..{first + n_cells - 1})",
    )
    expected = src.file["obsm/spatial"][np.sort(rows)] if len(rows) else np.empty((0, 2))
    for joinid, row, (y, x) in zip(joinids.tolist(), rows.tolist(), expected.tolist(), strict=True):
        got = found.get(joinid)
        rep.expect(
            got is not None and got == (float(y), float(x)),
            f"{where}/obsl/loc: spot {joinid} (row {row}) is at {got}, the source has {(y, x)}",
        )
    radius = loc.metadata.get("soma_geometry")
    rep.expect(
        isinstance(radius, float) and math.isclose(radius, source.point_radius),
        f"{where}/obsl/loc: soma_geometry {radius!r}, expected {source.point_radius}",
    )
    rep.expect(
        loc.metadata.get("soma_geometry_type") == "radius",
        f"{where}/obsl/loc: soma_geometry_type is not 'radius'",
    )
    _check_image(ctx, scene, src, source, where)


def _check_image(
    ctx: _Experiment,
    scene: soma.Scene,
    src: H5ADSource,
    source: _spatial.SpatialSource,
    where: str,
) -> None:
    rep = ctx.rep
    if source.library_id is None or source.hires_shape is None:
        rep.expect(
            "img" not in scene or not list(scene.img.keys()),
            f"{where}: an image, but the source has none",
        )
        return
    lib = source.library_id
    if not rep.expect("img" in scene and lib in scene.img, f"{where}: no image img/{lib}"):
        return
    image = scene.img[lib]
    h, w, _ = source.hires_shape
    level = image.get(_spatial.IMAGE_LEVEL)
    shape = tuple(level.shape) if level is not None else None
    if level is None or not rep.expect(
        shape == (3, h, w), f"{where}/img/{lib}: shape {shape}, expected {(3, h, w)}"
    ):
        rep.expect(level is not None, f"{where}/img/{lib}: no level {_spatial.IMAGE_LEVEL!r}")
        return
    pixels = src.file[f"uns/spatial/{lib}/images/hires"]
    for r in sorted({0, h // 2, h - 1})[:_PIXEL_ROWS]:
        got = level.read((slice(None), slice(r, r), slice(None))).to_numpy().reshape(3, w)
        want = np.transpose(np.asarray(pixels[r, :, :3]), (1, 0))
        rep.expect(bool(np.array_equal(got, want)), f"{where}/img/{lib}: pixel row {r} differs")
    scale = scene.get_transform_to_multiscale_image(lib)
    factors = [float(f) for f in getattr(scale, "scale_factors", ())]
    s = source.tissue_hires_scalef
    rep.expect(
        s is not None and len(factors) == 2 and all(math.isclose(f, s) for f in factors),
        f"{where}/img/{lib}: scale factors {factors}, expected tissue_hires_scalef {s}",
    )


def check_presence(ctx: _Experiment) -> None:
    """One scene per dataset of obs; ``obs_spatial_presence`` holds exactly obs's rows."""
    rep, name, totals = ctx.rep, ctx.name, ctx.totals
    scenes = set(ctx.exp.spatial.keys())
    rep.expect(
        scenes == set(totals.cells),
        f"{name}: scenes {sorted(scenes)} differ from the datasets of obs {sorted(totals.cells)}",
    )
    if not rep.expect(
        _spatial.OBS_SPATIAL_PRESENCE in ctx.exp, f"{name}: no {_spatial.OBS_SPATIAL_PRESENCE}"
    ):
        return
    table = cast("soma.DataFrame", ctx.exp[_spatial.OBS_SPATIAL_PRESENCE])
    count: dict[str, int] = defaultdict(int)
    lo: dict[str, int] = {}
    hi: dict[str, int] = {}
    not_true = 0
    for batch in table.read():
        if batch.num_rows == 0:
            continue
        not_true += batch.num_rows - int(pc.sum(pc.cast(batch["data"], pa.int64())).as_py() or 0)
        scene_ids = pc.cast(batch["scene_id"], pa.large_string())
        grouped = (
            pa.table({"s": scene_ids, "j": batch["soma_joinid"]})
            .group_by("s")
            .aggregate([("j", "count"), ("j", "min"), ("j", "max")])
        )
        for scene, n, a, b in zip(
            grouped["s"].to_pylist(),
            grouped["j_count"].to_pylist(),
            grouped["j_min"].to_pylist(),
            grouped["j_max"].to_pylist(),
            strict=True,
        ):
            count[scene] += n
            lo[scene] = min(lo.get(scene, a), a)
            hi[scene] = max(hi.get(scene, b), b)
    rep.expect(not_true == 0, f"{name}: obs_spatial_presence has {not_true} rows not True")
    for dataset_id, n in totals.cells.items():
        first = totals.first[dataset_id]
        got = (count.get(dataset_id, 0), lo.get(dataset_id), hi.get(dataset_id))
        rep.expect(
            got == (n, first, first + n - 1),
            f"{name}: obs_spatial_presence has {got[0]} rows (joinids {got[1]}..{got[2]}) for "
            f"scene {dataset_id}, obs {n} (joinids {first}..{first + n - 1})",
        )
    unknown = set(count) - set(totals.cells)
    rep.expect(not unknown, f"{name}: obs_spatial_presence names unknown scenes {unknown}")
