"""The scenes of census_spatial_sequencing: one task per spatial dataset, then the presence table.

A spatial experiment is planned, cut into bands and written (obs, X ``raw``, var, presence) like
any census_data experiment. What it adds is, per contributing dataset, a SOMA ``Scene`` (spot
locations, the tissue image) written by :func:`run_scene` — one task per dataset, run in parallel
on the build's executor after the bands — and, per experiment, ``obs_spatial_presence``, written
by the driver from the scenes' results (:func:`write_presence`).

Memory: a scene task reads its dataset in blocks of rows (``cellcensus._spatial`` streams the
locations and the image); a dataset's spots are the joinids ``[first_joinid, first_joinid + n)``
(the band tasks number them so), so a scene's result is a joinid range and the presence table is
written from ranges, in bounded batches.

Resume: a scene is marked done after it is written; a scene without its marker (an interrupted
attempt) is dropped before it is written again, and so is a half-written presence table.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cellcensus import _spatial
from cellcensus.builder import _schema as S
from cellcensus.builder._band import soma_context
from cellcensus.builder._scan import include_mask
from cellcensus.builder._source import H5ADSource
from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from cellcensus.builder._plan import OrganismPlan

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SceneTask:
    """Write the scene of one spatial dataset into its experiment."""

    experiment: str  # the plan's key, e.g. spatial.homo_sapiens
    exp_uri: str
    dataset_id: str
    path: str  # the staged H5AD
    assay: str  # the dataset's (one) spatial assay
    first_joinid: int  # obs soma_joinid of its first included spot
    n_spots: int  # its included spots (the scan's count)


@dataclass(frozen=True, kw_only=True)
class SceneResult:
    """What a scene task wrote: the scene's spots are the joinids [first_joinid, +n_spots)."""

    experiment: str
    dataset_id: str
    first_joinid: int
    n_spots: int
    seconds: float = 0.0

    @property
    def marker(self) -> str:
        """The scene's done marker."""
        return scene_marker(self.experiment, self.dataset_id)


def scene_marker(experiment: str, dataset_id: str) -> str:
    """Name of the done marker of a scene."""
    return f"scene.{experiment}.{dataset_id}"


def scene_tasks(plan: OrganismPlan, exp_uri: str) -> list[SceneTask]:
    """One task per contributing dataset of a spatial experiment (none for census_data)."""
    if not plan.spatial:
        return []
    return [
        SceneTask(
            experiment=plan.key,
            exp_uri=exp_uri,
            dataset_id=d.dataset_id,
            path=d.scan.path,
            assay=str(d.scan.spatial_assay),
            first_joinid=d.obs_joinid_start,
            n_spots=d.scan.n_included,
        )
        for d in plan.datasets
    ]


def run_scene(task: SceneTask) -> SceneResult:
    """Write one dataset's scene (dropping what an interrupted attempt left first)."""
    t0 = time.perf_counter()
    context = soma_context()
    if _spatial.remove_scene(task.exp_uri, task.dataset_id, context=context):
        logger.info("dropped the half-written scene %s of %s", task.dataset_id, task.experiment)
    with H5ADSource(task.path, task.dataset_id) as src:

        def include(start: int, stop: int) -> npt.NDArray[np.bool_]:
            return include_mask(src.read_obs(list(S.INCLUSION_COLUMNS), start, stop))

        summary = _spatial.write_scene_streamed(
            src.file,
            task.exp_uri,
            dataset_id=task.dataset_id,
            first_joinid=task.first_joinid,
            include=include,
            assays=(task.assay,),
            context=context,
        )
    if summary.n_spots != task.n_spots:
        msg = (
            f"the scene has {summary.n_spots} spots, the scan counted {task.n_spots}; the source "
            "changed during the build"
        )
        raise BadInputError(msg, dataset_id=task.dataset_id)
    return SceneResult(
        experiment=task.experiment,
        dataset_id=task.dataset_id,
        first_joinid=task.first_joinid,
        n_spots=summary.n_spots,
        seconds=time.perf_counter() - t0,
    )


def write_presence(exp_uri: str, results: list[SceneResult]) -> int:
    """Write an experiment's ``obs_spatial_presence`` from its scenes' joinid ranges.

    Rows go in batches of ``_spatial.PRESENCE_BATCH_ROWS`` (one fragment each, consolidated
    later). A half-written table of an interrupted attempt is dropped first. Returns the rows.
    """
    context = soma_context()
    if _spatial.remove_obs_spatial_presence(exp_uri, context=context):
        logger.info("dropped the half-written obs_spatial_presence of %s", exp_uri)
    ordered = sorted(results, key=lambda r: r.first_joinid)
    domain = (ordered[0].first_joinid, ordered[-1].first_joinid + ordered[-1].n_spots - 1)
    parts = itertools.chain.from_iterable(
        _spatial.presence_parts(r.dataset_id, r.first_joinid, r.first_joinid + r.n_spots)
        for r in ordered
    )
    return _spatial.write_obs_spatial_presence(
        exp_uri, parts, joinid_domain=domain, context=context
    )
