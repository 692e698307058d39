"""Build a Census-schema release tag (``soma/`` + ``h5ads/`` + ``build.json``) from a manifest.

Steps: stage sources → scan each dataset (checks, masks, vocabularies) → plan (order, joinids,
var) → create SOMA objects → X row-chunk tasks (raw, normalized, stats) → obs, var, presence,
census_info → consolidate → validate → build.json → rename the staging directory into place.
Nothing is visible at ``OUT_DIR`` until the very end.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import tiledbsoma as soma

from cellcensus import __version__
from cellcensus._progress import NoProgress, Progress
from cellcensus.builder import _schema as S
from cellcensus.builder import _write as W
from cellcensus.builder._consolidate import consolidate, gather
from cellcensus.builder._executor import Executor, open_executor
from cellcensus.builder._info import info_tables
from cellcensus.builder._plan import OrganismPlan, make_plans
from cellcensus.builder._scan import ScanResult, scan_dataset
from cellcensus.builder._stage import StagedSource, remove_tree, source_size, stage_source
from cellcensus.builder._state import BuildState
from cellcensus.builder._xtask import XChunkResult, XChunkTask, process_x_chunk, soma_context
from cellcensus.builder._xwrite import XWriteTask, write_layers
from cellcensus.builder.manifest import ManifestEntry, apply_blocklist, load_manifest

if TYPE_CHECKING:
    from cellcensus.settings import Settings

from cellcensus.errors import BadInputError, CellCensusError, IntegrityError

__all__ = ["BUILD_FORMAT_VERSION", "BuildOptions", "BuildResult", "build_census"]

logger = logging.getLogger(__name__)

BUILD_FORMAT_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """Settings of a build.

    Parameters
    ----------
    tag
        The build's name (``census_build_date``); default today's UTC date, ``YYYY-MM-DD``.
    chunk_nnz
        Stored values per X task; bounds each task's memory (about 40 bytes per value).
    on_error
        ``"stop"``: the first bad dataset fails the build. ``"skip"``: bad datasets are left out
        and recorded in build.json (raw counts are then checked before anything is written).
    workers
        1 runs in this process; more starts a Dask LocalCluster of that many processes.
    scheduler
        Address of an existing Dask scheduler (``tcp://host:8786``); overrides ``workers``.
    memory_per_worker
        Memory limit per LocalCluster worker (e.g. ``"4GiB"``); default Dask's automatic share.
    validate
        Re-read the output and check it against the sources before finishing.
    consolidate
        Consolidate and vacuum every array (one fragment each), as releases should be.
    validation_sample_cells
        Cells per dataset whose X rows and statistics the validation compares with the source.
    compression
        zstd levels: ``"fast"`` (X level 3; obs and var 9 and 3 instead of 19 and 9: faster
        writes and consolidation at about the same size) or ``"official"`` (the official
        builder's levels: X 9 and 13, obs and var 19 and 9; slightly smaller files).
    resume
        Continue an interrupted build of the same manifest and settings from its staging
        directory, reusing finished work; without it, leftovers of an earlier run are removed.
    blocklist
        Dataset ids left out of the build (the official builder's blocklist, see
        :func:`cellcensus.builder.manifest.load_blocklist`); recorded in build.json as "blocked".
    """

    tag: str | None = None
    chunk_nnz: int = 8_000_000
    on_error: Literal["stop", "skip"] = "stop"
    workers: int = 1
    scheduler: str | None = None
    memory_per_worker: str | None = None
    validate: bool = True
    consolidate: bool = True
    validation_sample_cells: int = 256
    resume: bool = False
    compression: Literal["fast", "official"] = "fast"
    blocklist: frozenset[str] = frozenset()


@dataclass
class BuildResult:
    """What a finished build produced (also written as ``build.json``)."""

    out_dir: Path
    tag: str
    total_cell_count: int
    unique_cell_count: int
    datasets: list[dict[str, Any]] = field(default_factory=list)
    organisms: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0


def _today() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%d")


def _check_tag(tag: str | None) -> str:
    """The build tag (today when ``None``), by the one tag rule ``publish`` also applies."""
    from cellcensus.release._validate import validate_tag

    return validate_tag(_today() if tag is None else tag, allow_custom=True)


def _scan_task(
    args: tuple[str, str, str, int, bool, bool],
) -> tuple[str, ScanResult | BadInputError]:
    dataset_id, path, work, chunk_nnz, check_values, skip = args
    try:
        return dataset_id, scan_dataset(
            dataset_id, path, work_dir=work, chunk_nnz=chunk_nnz, check_values=check_values
        )
    except BadInputError as e:
        if skip:
            return dataset_id, e
        raise


@dataclass
class _Run:
    """Mutable state of one build run."""

    out_dir: Path
    staging: Path
    options: BuildOptions
    tag: str
    progress: Progress
    settings: Settings | None
    skipped: dict[str, str] = field(default_factory=dict)
    staged: dict[str, StagedSource] = field(default_factory=dict)
    blocked: list[ManifestEntry] = field(default_factory=list)

    @property
    def state(self) -> BuildState:
        return BuildState(self.work)

    @property
    def soma_uri(self) -> str:
        return str(self.staging / "soma")

    @property
    def work(self) -> Path:
        return self.staging / "_work"


def _stage_all(run: _Run, entries: list[ManifestEntry]) -> list[ManifestEntry]:
    h5ads = run.staging / "h5ads"
    h5ads.mkdir(parents=True, exist_ok=True)
    sizes = [source_size(e) for e in entries]
    total = sum(s for s in sizes if s is not None) or None
    run.progress.start("stage", total, "B")
    kept = []
    for entry in entries:
        try:
            run.staged[entry.dataset_id] = stage_source(
                entry,
                h5ads,
                settings=run.settings,
                progress=lambda n: run.progress.advance("stage", n),
            )
            kept.append(entry)
        except (BadInputError, IntegrityError) as e:
            if run.options.on_error != "skip":
                raise
            logger.warning("skipping dataset %s: %s", entry.dataset_id, e)
            run.skipped[entry.dataset_id] = str(e)
    run.progress.finish("stage")
    return kept


def _scan_all(run: _Run, entries: list[ManifestEntry], executor: Executor) -> list[ScanResult]:
    skip = run.options.on_error == "skip"
    args = [
        (
            e.dataset_id,
            str(run.staged[e.dataset_id].path),
            str(run.work),
            run.options.chunk_nnz,
            skip,
            skip,
        )
        for e in entries
    ]
    run.progress.start("scan", len(args), "datasets")
    by_id: dict[str, ScanResult | BadInputError] = {}
    todo = []
    for a in args:
        if run.state.done(f"scan.{a[0]}"):
            by_id[a[0]] = run.state.payload(f"scan.{a[0]}")
            run.progress.advance("scan")
        else:
            todo.append(a)
    for key, res in executor.imap_unordered(_scan_task, todo):
        run.state.mark(f"scan.{key}", res)
        by_id[key] = res
        run.progress.advance("scan")
    for key, res in list(by_id.items()):
        if isinstance(res, BadInputError):
            logger.warning("skipping dataset %s: %s", key, res)
            run.skipped[key] = str(res)
            del by_id[key]
    run.progress.finish("scan")
    return [r for e in entries if isinstance(r := by_id.get(e.dataset_id), ScanResult)]


def _x_tasks(run: _Run, plan: OrganismPlan) -> list[XChunkTask]:
    tasks = []
    for d in plan.datasets:
        s = d.scan
        if (
            s.var_keep is None or s.features is None
        ):  # pragma: no cover - planned datasets have both
            msg = f"internal error: dataset {s.dataset_id} was planned without features"
            raise AssertionError(msg)
        for (start, stop), first in zip(s.chunks, d.chunk_starts, strict=True):
            tasks.append(
                XChunkTask(
                    dataset_id=s.dataset_id,
                    path=s.path,
                    start=start,
                    stop=stop,
                    mask_path=s.mask_path,
                    var_keep=s.var_keep,
                    var_joinids=d.var_joinids,
                    feature_length=s.features["feature_length"].to_numpy(dtype=np.int64),
                    obs_joinid_start=first,
                    stats_path=str(run.work / "stats" / W.stats_name(s.dataset_id, start)),
                    cells_stem=str(run.work / "cells" / f"{s.dataset_id}.{start}"),
                    check_values=run.options.on_error != "skip",
                )
            )
    return tasks


def _x_marker(task: XChunkTask) -> str:
    return f"x.{task.dataset_id}.{task.start}"


def _write_experiment(
    run: _Run, plan: OrganismPlan, exp_uri: str, results: list[XChunkResult], n_datasets: int
) -> None:
    nnz = np.zeros(plan.n_var, dtype=np.int64)
    measured = np.zeros(plan.n_var, dtype=np.int64)
    by_dataset = {d.scan.dataset_id: d for d in plan.datasets}
    for r in results:
        np.add.at(nnz, by_dataset[r.dataset_id].var_joinids, r.var_nnz)
    for d in plan.datasets:
        measured[d.var_joinids] += d.scan.n_included
    obs_uri = f"{exp_uri}/obs"
    for d in plan.datasets:
        for table in W.obs_chunks(plan, d, run.work / "stats"):
            W.write_table(obs_uri, table)
            run.progress.advance("obs", table.num_rows)
    rna_uri = f"{exp_uri}/ms/{S.MEASUREMENT}"
    W.write_table(f"{rna_uri}/var", W.var_table(plan, nnz, measured))
    W.write_presence(rna_uri, plan, n_datasets)


def _create_structure(run: _Run, plans: list[OrganismPlan]) -> dict[str, str]:
    if run.state.done("structure"):
        uris: dict[str, str] = run.state.payload("structure")
        return uris
    remove_tree(Path(run.soma_uri))
    exp_uris: dict[str, str] = {}
    with W.create_root(run.soma_uri, run.tag) as root:
        data = root[S.CENSUS_DATA]
        for plan in plans:
            exp_uris[plan.organism.name] = W.create_experiment(
                data, plan, compression=run.options.compression
            )
        spatial = root[S.CENSUS_SPATIAL]
        for organism in S.SPATIAL_ORGANISMS:
            W.create_experiment(
                spatial, OrganismPlan(organism, [], _empty_var(), {}, 0, 0), spatial=True
            )
    run.state.mark("structure", exp_uris)
    return exp_uris


def _empty_var() -> pd.DataFrame:
    return pd.DataFrame(
        {"feature_id": [], "feature_name": [], "feature_length": [], "feature_type": []}
    )


def _write_build_json(
    run: _Run, entries: list[ManifestEntry], scans: dict[str, ScanResult], plans: list[OrganismPlan]
) -> dict[str, Any]:
    joinids = {d.scan.dataset_id: d.soma_joinid for p in plans for d in p.datasets}
    inputs = []
    for e in entries:
        staged = run.staged.get(e.dataset_id)
        scan = scans.get(e.dataset_id)
        status = (
            "included"
            if e.dataset_id in joinids
            else ("skipped" if e.dataset_id in run.skipped else "excluded")
        )
        inputs.append(
            {
                "dataset_id": e.dataset_id,
                "uri": e.uri,
                "sha256": staged.sha256 if staged else None,
                "size": staged.size if staged else None,
                "status": status,
                "reason": run.skipped.get(e.dataset_id) or (scan.excluded_reason if scan else None),
                "organism_ontology_term_id": scan.organism_term if scan else None,
                "n_obs_source": scan.n_obs if scan else None,
                "n_obs_census": scan.n_included if scan else 0,
                "soma_joinid": joinids.get(e.dataset_id),
            }
        )
    for e in run.blocked:
        inputs.append(
            {
                "dataset_id": e.dataset_id,
                "uri": e.uri,
                "sha256": None,
                "size": None,
                "status": "blocked",
                "reason": "in the blocklist",
                "organism_ontology_term_id": None,
                "n_obs_source": None,
                "n_obs_census": 0,
                "soma_joinid": None,
            }
        )
    versions: dict[str, str | None] = {}
    for pkg in ("tiledbsoma", "tiledb", "anndata", "numpy", "pyarrow", "pandas", "h5py", "dask"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    doc = {
        "format_version": BUILD_FORMAT_VERSION,
        "build_tag": run.tag,
        "created_on": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "census_schema_version": S.CENSUS_SCHEMA_VERSION,
        "dataset_schema_version": S.CXG_SCHEMA_VERSION,
        "cellcensus_version": __version__,
        "versions": versions,
        "settings": {
            k: sorted(v) if isinstance(v, frozenset) else v
            for k, v in asdict(run.options).items()
            if k != "tag"
        },
        "inputs": inputs,
        "summary": {
            "total_cell_count": sum(p.n_obs for p in plans),
            "unique_cell_count": sum(p.n_primary for p in plans),
            "organisms": {
                p.organism.name: {"cells": p.n_obs, "genes": p.n_var, "datasets": len(p.datasets)}
                for p in plans
                if p.n_obs
            },
            "datasets_included": len(joinids),
            "datasets_skipped": sorted(run.skipped),
        },
    }
    (run.staging / "build.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return doc


def build_census(
    manifest: str | Path,
    out_dir: str | Path,
    *,
    options: BuildOptions | None = None,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> BuildResult:
    """Build a census release tag from a manifest of H5AD files.

    Parameters
    ----------
    manifest
        A CSV manifest in the official builder's format, or a directory of ``.h5ad`` files.
    out_dir
        Where ``soma/``, ``h5ads/`` and ``build.json`` are written; must not exist yet. The work
        happens in a hidden staging directory beside it that is renamed into place at the end.
    options
        Build settings (see :class:`BuildOptions`).
    progress
        Receives progress of the stages (``stage``, ``scan``, ``x``, ``obs``, ``consolidate``,
        ``validate``).
    settings
        Storage settings for ``s3://`` sources (an object with ``boto3_client()``); default the
        AWS environment.

    Returns
    -------
    BuildResult
        Cell counts, per-dataset status and timing, as also written to ``build.json``.

    Raises
    ------
    BadInputError
        Bad manifest, bad dataset (with ``on_error="stop"``), or an existing ``out_dir``.
    """
    t0 = time.monotonic()
    opts = options or BuildOptions()
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and any(out.iterdir()):
        msg = f"output directory {out} exists and is not empty; choose a new one"
        raise BadInputError(msg)
    entries, blocked = apply_blocklist(load_manifest(manifest), opts.blocklist)
    if not entries:
        msg = f"every dataset of {manifest} is in the blocklist; nothing to build"
        raise BadInputError(msg, field="blocklist")
    run = _Run(
        out_dir=out,
        staging=out.parent / f".{out.name}.staging",
        options=opts,
        tag=_check_tag(opts.tag),
        progress=progress or NoProgress(),
        settings=settings,
        blocked=blocked,
    )
    if not opts.resume:
        remove_tree(run.staging)
    run.staging.mkdir(parents=True, exist_ok=True)
    fingerprint = BuildState.fingerprint(
        entries,
        {
            "tag": run.tag,
            "chunk_nnz": opts.chunk_nnz,
            "on_error": opts.on_error,
            "compression": opts.compression,
        },
    )
    if run.state.begin(fingerprint, resume=opts.resume):
        logger.info("resuming the interrupted build in %s", run.staging)
    try:
        result = _build(run, entries)
    except CellCensusError:
        logger.warning("build failed; removing staging directory %s", run.staging)
        remove_tree(run.staging)
        raise
    except BaseException:
        logger.warning(
            "build interrupted; its work is kept in %s: re-run with --resume to continue",
            run.staging,
        )
        raise
    if out.exists():
        out.rmdir()
    run.staging.replace(out)
    result.out_dir = out
    result.seconds = time.monotonic() - t0
    return result


def _run_x_stage(
    run: _Run, plans: list[OrganismPlan], x_tasks: dict[str, list[XChunkTask]], executor: Executor
) -> list[XChunkResult]:
    """Run every X task not already done (by a resumed build); return all their results."""
    all_tasks = [t for p in plans for t in x_tasks[p.organism.name]]
    run.progress.start("x", sum(p.n_obs for p in plans), "cells")
    results: list[XChunkResult] = []
    todo = []
    for t in all_tasks:
        if run.state.done(_x_marker(t)):
            res = run.state.payload(_x_marker(t))
            results.append(res)
            run.progress.advance("x", res.n_cells)
        else:
            todo.append(t)
    markers = {(t.dataset_id, t.start): _x_marker(t) for t in todo}
    for res in executor.imap_unordered(process_x_chunk, todo):
        run.state.mark(markers[(res.dataset_id, res.start)], res)
        results.append(res)
        run.progress.advance("x", res.n_cells)
    run.progress.finish("x")
    return results


def _run_layer_writers(
    run: _Run,
    plans: list[OrganismPlan],
    *,
    exp_uris: dict[str, str],
    x_tasks: dict[str, list[XChunkTask]],
    results: list[XChunkResult],
    executor: Executor,
) -> None:
    """Write the X layers of each experiment, one fragment each, from the X tasks' chunk files."""
    values = {(r.dataset_id, r.start): r.n_values for r in results}
    pending: dict[str, tuple[XWriteTask, str]] = {}  # by X uri: the task and its state marker
    for plan in plans:
        chunks = x_tasks[plan.organism.name]
        n_values = sum(values[(t.dataset_id, t.start)] for t in chunks)
        marker = f"xwrite.{plan.organism.name}"
        if n_values and not run.state.done(marker):
            task = XWriteTask(
                x_uri=f"{exp_uris[plan.organism.name]}/ms/{S.MEASUREMENT}/X",
                layers=S.X_LAYERS,
                chunk_stems=tuple(t.cells_stem for t in chunks),
                n_values=n_values,
                shape=(plan.n_obs, plan.n_var),
            )
            pending[task.x_uri] = (task, marker)
    # the largest first: better packing on workers
    tasks = sorted((t for t, _ in pending.values()), key=lambda t: -t.n_values)
    run.progress.start("write", sum(t.n_values for t in tasks), "values")
    for uri in executor.imap_unordered(write_layers, tasks):
        task, marker = pending[uri]
        run.state.mark(marker)
        run.progress.advance("write", task.n_values)
    run.progress.finish("write")


def _write_tables(
    run: _Run,
    entries: list[ManifestEntry],
    plans: list[OrganismPlan],
    exp_uris: dict[str, str],
    results: list[XChunkResult],
) -> None:
    """obs, var and presence of every experiment, then the census_info tables."""
    n_datasets = sum(len(p.datasets) for p in plans)
    run.progress.start("obs", sum(p.n_obs for p in plans), "cells")
    for plan in plans:
        step = f"experiment.{plan.organism.name}"
        if plan.n_obs and not run.state.done(step):
            ids = {d.scan.dataset_id for d in plan.datasets}
            mine = [r for r in results if r.dataset_id in ids]
            _write_experiment(run, plan, exp_uris[plan.organism.name], mine, n_datasets)
            run.state.mark(step)
    run.progress.finish("obs")
    by_id = {e.dataset_id: e for e in entries}
    info_uri = f"{run.soma_uri}/{S.CENSUS_INFO}"
    info: soma.Collection[Any]
    with soma.Collection.open(info_uri, "w", context=soma_context()) as info:
        tables = info_tables(run.tag, by_id, plans)
        for key in ("datasets", "summary_cell_counts", "summary", "organisms"):
            W.write_info_table(info, key, tables[key])


def _consolidate_all(run: _Run, executor: Executor) -> None:
    if run.state.done("consolidated"):
        return
    targets = gather(run.soma_uri)
    run.progress.start("consolidate", len(targets), "objects")
    for _ in executor.imap_unordered(consolidate, targets):
        run.progress.advance("consolidate")
    run.progress.finish("consolidate")
    run.state.mark("consolidated")


def _build(run: _Run, all_entries: list[ManifestEntry]) -> BuildResult:
    opts = run.options
    entries = _stage_all(run, all_entries)
    with open_executor(
        workers=opts.workers, scheduler=opts.scheduler, memory_per_worker=opts.memory_per_worker
    ) as executor:
        scans = _scan_all(run, entries, executor)
        plans = make_plans(scans)
        if not any(p.n_obs for p in plans):
            msg = (
                "no dataset contributes any cell to the census (check organisms, assays, "
                "tissue_type and the skipped datasets)"
            )
            raise BadInputError(msg)
        exp_uris = _create_structure(run, plans)
        x_tasks = {p.organism.name: _x_tasks(run, p) for p in plans}
        results = _run_x_stage(run, plans, x_tasks, executor)
        # the X writers (on the executor; TileDB and the compiled checks release the GIL) and
        # the obs/var/presence/census_info tables (here) need only the X tasks' results: overlap
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="x-writers") as pool:
            writers = pool.submit(
                _run_layer_writers,
                run,
                plans,
                exp_uris=exp_uris,
                x_tasks=x_tasks,
                results=results,
                executor=executor,
            )
            _write_tables(run, entries, plans, exp_uris, results)
            writers.result()
        included = {d.scan.dataset_id for p in plans for d in p.datasets}
        for e in entries:
            if e.dataset_id not in included:  # only contributing datasets are released
                (run.staging / "h5ads" / f"{e.dataset_id}.h5ad").unlink(missing_ok=True)
        if opts.consolidate:
            _consolidate_all(run, executor)
    remove_tree(run.work)
    scans_by_id = {s.dataset_id: s for s in scans}
    doc = _write_build_json(run, all_entries, scans_by_id, plans)
    if opts.validate:
        from cellcensus.builder.validate import validate_build

        run.progress.start("validate", None)
        validate_build(run.staging, sample_cells=opts.validation_sample_cells)
        run.progress.finish("validate")
    return BuildResult(
        out_dir=run.out_dir,
        tag=run.tag,
        total_cell_count=doc["summary"]["total_cell_count"],
        unique_cell_count=doc["summary"]["unique_cell_count"],
        datasets=doc["inputs"],
        organisms=doc["summary"]["organisms"],
    )
