"""Build a Census-schema release tag (``soma/`` + ``h5ads/`` + ``build.json``) from a manifest.

Steps: stage sources → scan each dataset (one task each: checks, vocabularies, counts per block
of rows) → plan (order, joinids, var, vocabularies, bands) → create the SOMA objects → band tasks
(each writes the X layers and obs rows of a range of cells as one fragment per array) → scene
tasks (one per spatial dataset) → var, presence, obs_spatial_presence, census_info → consolidate
→ build.json → validate → rename the staging directory into place. Nothing is visible at
``OUT_DIR`` until the very end.

The experiments of census_spatial_sequencing (Visium and Slide-seqV2 datasets) go through the
same scan, plan and bands as census_data's (``OrganismPlan.spatial``: X raw only, three more obs
columns); their scenes are ``_scenes``'s.

Memory: the driver holds per dataset a small summary, per organism its features and vocabularies
(and one record per 32,768 source rows); tasks hold one chunk of ``chunk_nnz`` stored values.
Nothing scales with the number of cells of the census or of a dataset (see ``_scan`` for the one
8-byte-per-cell exception while a dataset is scanned).
"""

from __future__ import annotations

import itertools
import logging
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import tiledbsoma as soma

from cellcensus import __version__
from cellcensus._formats.build import FORMAT_VERSION, BuildInfo, BuildInput
from cellcensus._obscopy import OBS_COPY, write_obs_copy
from cellcensus._progress import NoProgress, Progress
from cellcensus._storage.uri import local_path
from cellcensus.builder import _schema as S
from cellcensus.builder import _write as W
from cellcensus.builder._allocator import release_free_memory, tune_allocator
from cellcensus.builder._band import (
    BandResult,
    BandTask,
    clear_earlier_attempt,
    run_band,
    soma_context,
)
from cellcensus.builder._compat import check_versions, remove_uncommitted_fragments
from cellcensus.builder._consolidate import consolidate, gather
from cellcensus.builder._executor import (
    Executor,
    ProcessExecutor,
    SerialExecutor,
    ThreadExecutor,
    WorkerDiedError,
    band_processes,
    band_threads,
    open_executor,
    start_fork_server,
)
from cellcensus.builder._genes import (
    band_dirs,
    band_extras,
    create_genes,
    reduce_summary,
    summary_budget,
)
from cellcensus.builder._info import info_tables
from cellcensus.builder._plan import (
    OrganismPlan,
    band_cost,
    band_cuts,
    make_bands,
    make_plans,
)
from cellcensus.builder._scan import (
    SCAN_PART_ROWS,
    ScanSummary,
    load_summary,
    part_done,
    part_ranges,
    scan_finish,
    scan_head,
    scan_part,
)
from cellcensus.builder._scenes import (
    SceneResult,
    SceneTask,
    run_scene,
    scene_marker,
    scene_tasks,
    write_presence,
)
from cellcensus.builder._stage import StagedSource, remove_tree, source_size, stage_source
from cellcensus.builder._state import BuildState, digest
from cellcensus.builder.manifest import ManifestEntry, apply_blocklist, load_manifest
from cellcensus.errors import BadInputError, CellCensusError, IntegrityError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cellcensus.settings import Settings

__all__ = ["BUILD_FORMAT_VERSION", "BuildOptions", "BuildResult", "build_census"]

logger = logging.getLogger(__name__)

BUILD_FORMAT_VERSION = FORMAT_VERSION


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """Settings of a build.

    Parameters
    ----------
    tag
        The build's name (``census_build_date``); default today's UTC date, ``YYYY-MM-DD``.
    chunk_nnz
        Stored values a task holds at once; bounds each process's memory (about 40 bytes per
        value).
    band_nnz
        Work per band task (stored values, plus 16 per cell). Each band is one fragment of
        each X layer and of obs. Default: about 1/64 of the census, at least ``chunk_nnz``.
    scan_rows
        Obs rows one scan task reads (default 262,144): a large dataset is scanned by several
        tasks, so no task's time or memory grows with the size of a dataset.
    on_error
        ``"stop"``: the first bad dataset fails the build. ``"skip"``: bad datasets are left out
        and recorded in build.json (raw counts are then checked before anything is written).
    unknown_genes
        Gene ids that are not in the organism's gene reference: ``"error"`` refuses the dataset,
        ``"drop"`` leaves those features out and records a warning in build.json.
    blocklist
        Dataset ids to leave out (as the official builder's blocklist, see
        :func:`cellcensus.builder.manifest.load_blocklist`); recorded as "blocked".
    workers
        1 runs in this process; more starts a Dask LocalCluster of that many processes.
    processes
        With ``workers`` 1 (and no ``scheduler``): band tasks (X, obs, the gene-major copies)
        run on this many worker processes of the machine, forked from a server that imports the
        builder while the sources are scanned. ``chunk_nnz`` is the budget of all of them: each
        holds ``chunk_nnz // N`` values at once. ``None``: 2 (at most the usable CPUs) when
        the staged sources hold at least 64 MiB, else 1; that is the default of
        ``cellcensus build``. Output is the same either way (``benchmarks/RESULTS.md``, "Band
        processes"). The default here is 1 (the bands run in this process): a worker process
        starts by importing the caller's main module, as with any use of Python's
        ``multiprocessing``, so a script that asks for processes must guard its entry point
        with ``if __name__ == "__main__":``.
    threads
        With ``workers`` 1 (and no ``scheduler``): band tasks (X, obs, the gene-major copies)
        written at once, on threads of this process. ``chunk_nnz`` is the process's budget:
        with N threads each task holds ``chunk_nnz // N`` values at once, so memory does not
        grow with it. ``None``: 2 threads (at most the usable CPUs) when the census averages
        at least 100 stored values a cell, else 1 — measured on 2 cores
        (``benchmarks/RESULTS.md``, "Band threads by default"), 2 threads shortened the bands
        of a corpus of ~170 values a cell (TileDB writes, zstd and numba kernels, which release
        Python's GIL) and did not help one of 20 values a cell (per-cell Python work, which
        holds it). The default is 1: processes that had built on 2 threads later crashed
        (SIGSEGV) in tiledbsoma reads of the test suite, see the same section.
    scheduler
        Address of an existing Dask scheduler (``tcp://host:8786``); overrides ``workers``.
    memory_per_worker
        Memory limit per LocalCluster worker (e.g. ``"4GiB"``); default Dask's automatic share.
    validate
        Re-read the output and check it against the sources before finishing.
    consolidate
        Consolidate and vacuum the small arrays (one fragment each) and the fragment metadata
        of X and obs, as releases should be.
    validation_sample_cells
        Cells per dataset whose X rows and statistics the validation compares with the source.
    compression
        zstd levels: ``"fast"`` (X level 3; obs and var 9 and 3 instead of 19 and 9: faster
        writes at about the same size) or ``"official"`` (the official builder's levels: X 9 and
        13, obs and var 19 and 9; slightly smaller files).
    gene_major
        Also write gene-major copies of X (``cellcensus_genes/<organism>/X``), which make
        queries of a few genes across many cells fast (see ``docs/schema.md``). The expression
        summary is written either way.
    gene_major_layers
        The X layers copied gene-major when ``gene_major`` is on: ``("raw",)`` by default (the
        copy takes about 0.6x of X/raw's storage); adding ``"normalized"`` makes gene queries of
        the normalized layer fast too, for about 1.4x of X/normalized's storage (float values
        compress poorly). Queries of a layer without a copy read the cell-major X.
    resume
        Continue an interrupted build of the same manifest and settings from its staging
        directory, reusing finished work (sources replaced since are staged and scanned again);
        without it, leftovers of an earlier run are removed.
    """

    tag: str | None = None
    chunk_nnz: int = 8_000_000
    band_nnz: int | None = None
    scan_rows: int = SCAN_PART_ROWS
    on_error: Literal["stop", "skip"] = "stop"
    unknown_genes: Literal["error", "drop"] = "error"
    blocklist: frozenset[str] = frozenset()
    workers: int = 1
    threads: int | None = 1
    processes: int | None = 1
    scheduler: str | None = None
    memory_per_worker: str | None = None
    validate: bool = True
    consolidate: bool = True
    validation_sample_cells: int = 256
    resume: bool = False
    compression: Literal["fast", "official"] = "fast"
    gene_major: bool = True
    gene_major_layers: tuple[str, ...] = ("raw",)


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
    #: census_spatial_sequencing experiments with cells: cells, genes, datasets, scenes
    spatial: dict[str, dict[str, int]] = field(default_factory=dict)


def _today() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%d")


def _check_tag(tag: str | None) -> str:
    """The build tag (today when ``None``), by the one tag rule ``publish`` also applies."""
    from cellcensus.release._validate import validate_tag

    return validate_tag(_today() if tag is None else tag, allow_custom=True)


def _check_options(opts: BuildOptions) -> None:
    if opts.chunk_nnz < 1:
        msg = "chunk_nnz must be a positive number of stored values"
        raise BadInputError(msg, field="chunk_nnz")
    if opts.band_nnz is not None and opts.band_nnz < 1:
        msg = "band_nnz must be a positive number of stored values"
        raise BadInputError(msg, field="band_nnz")
    if opts.scan_rows < 1:
        msg = "scan_rows must be a positive number of rows"
        raise BadInputError(msg, field="scan_rows")
    if opts.workers < 1:
        msg = "workers must be at least 1"
        raise BadInputError(msg, field="workers")
    if opts.threads is not None and opts.threads < 1:
        msg = "threads must be at least 1"
        raise BadInputError(msg, field="threads")
    if opts.processes is not None and opts.processes < 1:
        msg = "processes must be at least 1"
        raise BadInputError(msg, field="processes")
    if (opts.processes or 1) > 1 and (opts.threads or 1) > 1:
        msg = "choose band threads or band processes, not both"
        raise BadInputError(msg, field="processes")
    if (opts.processes or 1) > 1 and (opts.workers > 1 or opts.scheduler is not None):
        msg = "processes applies to builds in this process (workers 1, no scheduler)"
        raise BadInputError(msg, field="processes")
    unknown = [layer for layer in opts.gene_major_layers if layer not in S.X_LAYERS]
    if (
        unknown
        or not opts.gene_major_layers
        or len(set(opts.gene_major_layers)) != len(opts.gene_major_layers)
    ):
        msg = (
            f"gene_major_layers must name X layers among {list(S.X_LAYERS)}, each once; got "
            f"{list(opts.gene_major_layers)}"
        )
        raise BadInputError(msg, field="gene_major_layers")


def _scan_head_task(
    args: tuple[str, str, str, str, str, bool],
) -> tuple[str, ScanSummary | BadInputError]:
    dataset_id, path, key, work, unknown, skip = args
    try:
        return dataset_id, scan_head(
            dataset_id,
            path,
            key=key,
            work_dir=work,
            unknown_genes_policy="drop" if unknown == "drop" else "error",
        )
    except BadInputError as e:
        if skip:
            return dataset_id, e
        raise


def _scan_part_task(
    args: tuple[str, str, str, str, int, int, bool, bool],
) -> tuple[str, int, float | BadInputError]:
    dataset_id, path, key, work, start, stop, check_values, skip = args
    try:
        seconds = scan_part(
            dataset_id,
            path,
            key=key,
            work_dir=work,
            start=start,
            stop=stop,
            check_values=check_values,
        )
    except BadInputError as e:
        if skip:
            return dataset_id, stop - start, e
        raise
    return dataset_id, stop - start, seconds


def _scan_finish_task(
    args: tuple[ScanSummary, str, int, bool],
) -> tuple[str, ScanSummary | BadInputError, float]:
    base, work, part_rows, skip = args
    t0 = time.perf_counter()
    try:
        summary = scan_finish(base, work_dir=work, part_rows=part_rows)
        return base.dataset_id, summary, time.perf_counter() - t0
    except BadInputError as e:
        if skip:
            return base.dataset_id, e, time.perf_counter() - t0
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
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each stage
    tasks: dict[str, list[float]] = field(default_factory=dict)  # wall time of each task
    band_threads: int = 1  # threads the band stage ran on (in-process builds)
    band_processes: int = 1  # worker processes the band stage ran on (in-process builds)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Record the wall time of a stage of this run; give its freed memory back after it."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0
            release_free_memory()

    def timing(self) -> dict[str, Any]:
        """Stage times and task statistics, for build.json."""
        return {
            "stages_seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "band_threads": self.band_threads,
            "band_processes": self.band_processes,
            "tasks": {
                name: {
                    "count": len(times),
                    "seconds_total": round(sum(times), 3),
                    "seconds_max": round(max(times), 3) if times else 0.0,
                }
                for name, times in self.tasks.items()
            },
        }

    @property
    def state(self) -> BuildState:
        return BuildState(self.work)

    @property
    def soma_uri(self) -> str:
        return str(self.staging / "soma")

    @property
    def work(self) -> Path:
        return self.staging / "_work"

    def key(self, dataset_id: str) -> str:
        """The dataset's work-directory key: its id and its staged copy's checksum."""
        return f"{dataset_id}.{self.staged[dataset_id].sha256[:16]}"


def _stage_task(
    args: tuple[ManifestEntry, Path, Settings | None, bool],
) -> tuple[str, StagedSource | CellCensusError]:
    entry, h5ads, settings, skip = args
    try:
        return entry.dataset_id, stage_source(entry, h5ads, settings=settings)
    except (BadInputError, IntegrityError) as e:
        if skip:
            return entry.dataset_id, e
        raise


def _stage_all(run: _Run, entries: list[ManifestEntry], executor: Executor) -> list[ManifestEntry]:
    """Copy (or download) every source into ``h5ads/``, in parallel tasks; the ones staged."""
    h5ads = run.staging / "h5ads"
    h5ads.mkdir(parents=True, exist_ok=True)
    sizes = {e.dataset_id: source_size(e) for e in entries}
    total = sum(s for s in sizes.values() if s is not None) or None
    run.progress.start("stage", total, "B")
    skip = run.options.on_error == "skip"
    # local sources are copied by tasks; s3:// ones are downloaded here, so that storage
    # credentials never travel to (or through) Dask workers
    local = [(e, h5ads, None, skip) for e in entries if not e.is_s3]
    remote = [(e, h5ads, run.settings, skip) for e in entries if e.is_s3]
    staged = itertools.chain(executor.imap_unordered(_stage_task, local), map(_stage_task, remote))
    for dataset_id, res in staged:
        if isinstance(res, StagedSource):
            run.staged[dataset_id] = res
            run.progress.advance("stage", res.size)
        else:
            logger.warning("skipping dataset %s: %s", dataset_id, res)
            run.skipped[dataset_id] = str(res)
    run.progress.finish("stage")
    return [e for e in entries if e.dataset_id in run.staged]


def _scan_all(run: _Run, entries: list[ManifestEntry], executor: Executor) -> list[ScanSummary]:
    """Scan every staged dataset (reusing finished scans and parts); summaries in build order.

    Three rounds of tasks: a head per dataset (uns, var, features), parts of ``SCAN_PART_ROWS``
    obs rows each, and a finish per dataset (merge, duplicate cell names, ontology terms).
    """
    skip = run.options.on_error == "skip"
    work = str(run.work)
    by_id: dict[str, ScanSummary | BadInputError] = {}
    heads = []
    for e in entries:
        key = run.key(e.dataset_id)
        done = load_summary(run.work, key)
        if done is not None:
            by_id[e.dataset_id] = done
            continue
        path = str(run.staged[e.dataset_id].path)
        heads.append((e.dataset_id, path, key, work, run.options.unknown_genes, skip))
    run.progress.start("scan", len(heads) or None, "datasets")
    bases: dict[str, ScanSummary] = {}
    for dataset_id, res in executor.imap_unordered(_scan_head_task, heads):
        run.progress.advance("scan")
        if isinstance(res, ScanSummary) and res.excluded_reason is None:
            run.tasks.setdefault("scan", []).append(res.seconds)
            bases[dataset_id] = res
        else:
            by_id[dataset_id] = res
    run.progress.finish("scan")
    parts = [
        (b.dataset_id, b.path, b.key, work, start, stop, skip, skip)
        for b in bases.values()
        for start, stop in part_ranges(b.n_obs, run.options.scan_rows)
        if not part_done(work, b.key, start, stop)
    ]
    run.progress.start("scan-obs", sum(p[5] - p[4] for p in parts) or None, "cells")
    for dataset_id, rows, outcome in executor.imap_unordered(_scan_part_task, parts):
        run.progress.advance("scan-obs", rows)
        if isinstance(outcome, BadInputError):
            by_id.setdefault(dataset_id, outcome)
        else:
            run.tasks.setdefault("scan", []).append(outcome)
    run.progress.finish("scan-obs")
    finishes = [
        (b, work, run.options.scan_rows, skip) for b in bases.values() if b.dataset_id not in by_id
    ]
    for dataset_id, res, seconds in executor.imap_unordered(_scan_finish_task, finishes):
        by_id[dataset_id] = res
        run.tasks.setdefault("scan", []).append(seconds)
    for dataset_id, res in list(by_id.items()):
        if isinstance(res, BadInputError):
            logger.warning("skipping dataset %s: %s", dataset_id, res)
            run.skipped[dataset_id] = str(res)
            del by_id[dataset_id]
    return [r for e in entries if isinstance(r := by_id.get(e.dataset_id), ScanSummary)]


def _create_structure(run: _Run, plans: list[OrganismPlan], n_bands: int) -> dict[str, Any]:
    """The SOMA objects of the census; returns the experiments' URIs and the bands' timestamps."""
    if run.state.done("structure"):
        payload: dict[str, Any] = run.state.payload("structure")
        return payload
    remove_tree(Path(run.soma_uri))
    exp_uris: dict[str, str] = {}
    with W.create_root(run.soma_uri, run.tag) as root:
        for plan in plans:  # census_data's experiments, then census_spatial_sequencing's
            exp_uris[plan.key] = W.create_experiment(
                root[plan.collection], plan, compression=run.options.compression
            )
        genes = create_genes(  # census_data only: spatial experiments get no gene-major copies
            root,
            [p for p in plans if not p.spatial],
            layers=run.options.gene_major_layers if run.options.gene_major else (),
            compression=run.options.compression,
        )
    # Each band writes its fragments at its own timestamp, so that a band run again deletes
    # exactly what an earlier attempt committed. The timestamps are in the past (readers open
    # arrays "now") and no other write touches X or obs.
    first_timestamp = int(time.time() * 1000) - n_bands - 1
    payload = {"experiments": exp_uris, "first_timestamp": first_timestamp, "genes": genes}
    run.state.mark("structure", payload)
    return payload


def _band_marker(task: BandTask) -> str:
    return f"band.{task.organism}.{task.index}"


def _run_bands(
    run: _Run, tasks: list[BandTask], executor: Executor, processes: int
) -> list[BandResult]:
    """Run every band not already done (by a resumed build); return all their results.

    ``processes``: worker processes for the bands of an in-process build (:func:`_plan_processes`).
    """
    run.progress.start("x", sum(t.n_cells for t in tasks), "cells")
    results: list[BandResult] = []
    todo = []
    for t in tasks:
        if run.state.done(_band_marker(t)):
            results.append(BandResult(**run.state.payload(_band_marker(t))))
            run.progress.advance("x", t.n_cells)
        else:
            todo.append(t)
    # the largest first: better packing on workers
    todo.sort(key=lambda t: -t.n_values)
    threads = band_threads(
        run.options.threads,
        n_cells=sum(t.n_cells for t in tasks),
        n_values=sum(t.n_values for t in tasks),
        n_tasks=len(todo),
    )
    if isinstance(executor, SerialExecutor) and len(todo) > 1 and max(processes, threads) > 1:
        # the chunk budget is the machine's: each thread or process holds its share
        if processes > 1:
            n, executor, run.band_processes = processes, ProcessExecutor(processes), processes
        else:
            n, executor, run.band_threads = threads, ThreadExecutor(threads), threads
        share = max(1, run.options.chunk_nnz // n)
        kind = type(executor).__name__
        logger.info("band tasks %d at once (%s), %d values a chunk", n, kind, share)
        for t in todo:  # here, not in the tasks: see clear_earlier_attempt
            clear_earlier_attempt(t)
        todo = [replace(t, clear_in_task=False, chunk_nnz=share) for t in todo]
    for res in executor.imap_unordered(run_band, todo):
        run.state.mark(f"band.{res.organism}.{res.index}", asdict(res))
        run.tasks.setdefault("band", []).append(res.seconds)
        results.append(res)
        run.progress.advance("x", res.n_cells)
    run.progress.finish("x")
    return results


def _run_scenes(
    run: _Run, plans: list[OrganismPlan], exp_uris: dict[str, str], executor: Executor
) -> list[SceneResult]:
    """Write every scene not already done (one task per spatial dataset); all their results."""
    tasks: list[SceneTask] = []
    for plan in plans:
        tasks += scene_tasks(plan, exp_uris[plan.key])
    run.progress.start("scenes", len(tasks), "scenes")
    results: list[SceneResult] = []
    todo = []
    for t in tasks:
        marker = scene_marker(t.experiment, t.dataset_id)
        if run.state.done(marker):
            results.append(SceneResult(**run.state.payload(marker)))
            run.progress.advance("scenes")
        else:
            todo.append(t)
    for res in executor.imap_unordered(run_scene, todo):
        run.state.mark(res.marker, asdict(res))
        run.tasks.setdefault("scene", []).append(res.seconds)
        results.append(res)
        run.progress.advance("scenes")
    run.progress.finish("scenes")
    return results


def _write_tables(
    run: _Run,
    entries: list[ManifestEntry],
    plans: list[OrganismPlan],
    exp_uris: dict[str, str],
    results: tuple[list[BandResult], list[SceneResult]],
) -> None:
    """var, presence (and obs_spatial_presence) of every experiment, then census_info."""
    bands, scenes = results
    n_datasets = sum(len(p.datasets) for p in plans)
    run.progress.start("tables", len(plans) + 1, "tables")
    for plan in plans:
        step = f"tables.{plan.key}"
        if plan.n_obs and not run.state.done(step):
            nnz = np.zeros(plan.n_var, dtype=np.int64)
            for r in bands:
                if r.organism == plan.key:
                    nnz += np.load(r.var_nnz_path)
            measured = np.zeros(plan.n_var, dtype=np.int64)
            for d in plan.datasets:
                with np.load(d.features) as f:
                    measured[f["joinids"]] += d.scan.n_included
            rna_uri = f"{exp_uris[plan.key]}/ms/{S.MEASUREMENT}"
            W.write_table(f"{rna_uri}/var", W.var_table(plan, nnz, measured))
            W.write_presence(rna_uri, plan, n_datasets)
            mine = [r for r in scenes if r.experiment == plan.key]
            if mine:
                write_presence(exp_uris[plan.key], mine)
            run.state.mark(step)
        run.progress.advance("tables")
    by_id = {e.dataset_id: e for e in entries}
    info_uri = f"{run.soma_uri}/{S.CENSUS_INFO}"
    info: soma.Collection[Any]
    with soma.Collection.open(info_uri, "w", context=soma_context()) as info:
        tables = info_tables(run.tag, by_id, plans)
        for key in ("datasets", "summary_cell_counts", "summary", "organisms"):
            W.write_info_table(info, key, tables[key])
    run.progress.finish("tables")


def _write_summaries(
    run: _Run, plans: list[OrganismPlan], tasks: list[BandTask], genes: dict[str, dict[str, Any]]
) -> None:
    """Reduce the bands' partial sums into each organism's expression summary."""
    run.progress.start("summary", sum(1 for p in plans if p.n_obs and not p.spatial), "organisms")
    for plan in (p for p in plans if not p.spatial):
        name = plan.organism.name
        step = f"summary.{name}"
        if plan.n_obs and not run.state.done(step):
            dirs = [band_dirs(run.work, name, t.index)[1] for t in tasks if t.organism == name]
            reduce_summary(
                plan,
                genes[name],
                dirs,
                budget=summary_budget(run.options.chunk_nnz),
                compression=run.options.compression,
                context=soma_context(),
            )
            run.state.mark(step)
        if plan.n_obs:
            run.progress.advance("summary")
    run.progress.finish("summary")


def _write_obs_copies(
    run: _Run, plans: list[OrganismPlan], exp_uris: dict[str, str], genes: dict[str, dict[str, Any]]
) -> None:
    """With the gene-major copies: each organism's obs copy (see :mod:`cellcensus._obscopy`)."""
    wanted = [p for p in plans if p.n_obs and not p.spatial] if run.options.gene_major else []
    run.progress.start("obs-copy", len(wanted), "organisms")
    for plan in wanted:
        name = plan.organism.name
        step = f"obs_copy.{name}"
        if not run.state.done(step):
            with soma.DataFrame.open(f"{exp_uris[plan.key]}/obs", context=soma_context()) as obs:
                rows = write_obs_copy(obs, local_path(genes[name]["uri"]) / OBS_COPY)
            if rows != plan.n_obs:  # pragma: no cover - an internal invariant
                msg = f"internal error: the obs copy of {name} has {rows} rows, not {plan.n_obs}"
                raise AssertionError(msg)
            run.state.mark(step)
        run.progress.advance("obs-copy")
    run.progress.finish("obs-copy")


def _consolidate_all(run: _Run, band_arrays: set[str], executor: Executor) -> None:
    """One fragment per small array; X and obs keep their band fragments (metadata merged)."""
    if run.state.done("consolidated"):
        return
    targets = gather(run.soma_uri, data_arrays=band_arrays)
    run.progress.start("consolidate", len(targets), "objects")
    for _ in executor.imap_unordered(consolidate, targets):
        run.progress.advance("consolidate")
    run.progress.finish("consolidate")
    run.state.mark("consolidated")


def _write_build_json(
    run: _Run,
    entries: list[ManifestEntry],
    scans: dict[str, ScanSummary],
    plans: list[OrganismPlan],
    bands: dict[str, int],
) -> dict[str, Any]:
    joinids = {d.dataset_id: d.soma_joinid for p in plans for d in p.datasets}
    spatial_ids = {d.dataset_id for p in plans if p.spatial for d in p.datasets}
    inputs: list[BuildInput] = []
    for e in entries:
        staged = run.staged.get(e.dataset_id)
        scan = scans.get(e.dataset_id)
        if e.dataset_id in run.options.blocklist:
            status, reason = "blocked", "in the blocklist"
        elif e.dataset_id in joinids:
            status, reason = "included", None
        elif e.dataset_id in run.skipped:
            status, reason = "skipped", run.skipped[e.dataset_id]
        else:
            status, reason = "excluded", scan.excluded_reason if scan else None
        inputs.append(
            BuildInput(
                dataset_id=e.dataset_id,
                uri=e.uri,
                sha256=staged.sha256 if staged else None,
                size=staged.size if staged else None,
                status=status,
                reason=reason,
                warnings=tuple(scan.warnings) if scan else (),
                organism_ontology_term_id=scan.organism_term if scan else None,
                n_obs_source=scan.n_obs if scan else None,
                n_obs_census=scan.n_included if scan else 0,
                soma_joinid=joinids.get(e.dataset_id),
                collection=(
                    (S.CENSUS_SPATIAL if e.dataset_id in spatial_ids else S.CENSUS_DATA)
                    if e.dataset_id in joinids
                    else None
                ),
            )
        )
    versions: dict[str, str | None] = {}
    for pkg in ("tiledbsoma", "tiledb", "anndata", "numpy", "pyarrow", "pandas", "h5py", "dask"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    settings = {k: v for k, v in asdict(run.options).items() if k != "tag"}
    settings["blocklist"] = sorted(run.options.blocklist)
    info = BuildInfo(
        build_tag=run.tag,
        created_on=datetime.now(tz=UTC).isoformat(timespec="seconds"),
        census_schema_version=S.CENSUS_SCHEMA_VERSION,
        dataset_schema_version=S.CXG_SCHEMA_VERSION,
        cellcensus_version=__version__,
        versions=versions,
        settings=settings,
        inputs=tuple(inputs),
        summary={
            "total_cell_count": sum(p.n_obs for p in plans),
            "unique_cell_count": sum(p.n_primary for p in plans),
            "organisms": {
                p.organism.name: {
                    "cells": p.n_obs,
                    "genes": p.n_var,
                    "datasets": len(p.datasets),
                    "x_fragments": bands.get(p.key, 0),
                }
                for p in plans
                if p.n_obs and not p.spatial
            },
            # census_spatial_sequencing: one scene per dataset
            "spatial": {
                p.organism.name: {
                    "cells": p.n_obs,
                    "genes": p.n_var,
                    "datasets": len(p.datasets),
                    "scenes": len(p.datasets),
                    "x_fragments": bands.get(p.key, 0),
                }
                for p in plans
                if p.n_obs and p.spatial
            },
            "datasets_included": len(joinids),
            "datasets_skipped": sorted(run.skipped),
            "datasets_blocked": sorted(
                e.dataset_id for e in entries if e.dataset_id in run.options.blocklist
            ),
        },
    )
    (run.staging / "build.json").write_bytes(info.to_json())
    return info.data


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
        Receives progress of the stages (``stage``, ``scan``, ``x``, ``scenes``, ``tables``,
        ``consolidate``, ``validate``).
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
    _check_options(opts)
    check_versions()
    tune_allocator()
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and any(out.iterdir()):
        msg = f"output directory {out} exists and is not empty; choose a new one"
        raise BadInputError(msg)
    entries = load_manifest(manifest)
    if not apply_blocklist(entries, opts.blocklist)[0]:
        msg = f"every dataset of {manifest} is in the blocklist; nothing to build"
        raise BadInputError(msg, field="blocklist")
    run = _Run(
        out_dir=out,
        staging=out.parent / f".{out.name}.staging",
        options=opts,
        tag=_check_tag(opts.tag),
        progress=progress or NoProgress(),
        settings=settings,
    )
    if not opts.resume:
        remove_tree(run.staging)
    run.staging.mkdir(parents=True, exist_ok=True)
    fingerprint = BuildState.fingerprint(entries, _output_settings(run))
    if run.state.begin(fingerprint, resume=opts.resume):
        logger.info("resuming the interrupted build in %s", run.staging)
    try:
        result = _build(run, entries)
    except WorkerDiedError:
        logger.warning(
            "a worker process died; the build's work is kept in %s: re-run with --resume to "
            "continue",
            run.staging,
        )
        raise
    except CellCensusError:
        logger.warning("build failed; removing its staging directory")
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


def _output_settings(run: _Run) -> dict[str, Any]:
    """The settings that shape the output (a resumed build must use the same)."""
    o = run.options
    return {
        "tag": run.tag,
        "chunk_nnz": o.chunk_nnz,
        "band_nnz": o.band_nnz,
        "scan_rows": o.scan_rows,
        "on_error": o.on_error,
        "unknown_genes": o.unknown_genes,
        "blocklist": sorted(o.blocklist),
        "compression": o.compression,
        "gene_major": o.gene_major,
        "gene_major_layers": [x for x in S.X_LAYERS if x in o.gene_major_layers],
    }


def _add_to_build_json(run: _Run, keys: dict[str, Any]) -> None:
    path = run.staging / "build.json"
    info = BuildInfo.from_json(path.read_bytes(), where=str(path))
    path.write_bytes(replace(info, summary={**info.summary, **keys}).to_json())


def _plan_digest(run: _Run, plans: list[OrganismPlan], cuts: dict[str, list[int]]) -> str:
    """What a resumed build's finished bands must have been made for: the contributing datasets,
    the output settings and the band cuts (bands are known by index, so a cellcensus that cuts
    them differently must not reuse them)."""
    contributing = [d.scan.key for p in plans for d in p.datasets]
    return digest({"datasets": contributing, "cuts": cuts, **_output_settings(run)})


def _plan_bands(
    run: _Run, plans: list[OrganismPlan], cuts: dict[str, list[int]]
) -> tuple[list[BandTask], dict[str, str], dict[str, dict[str, Any]]]:
    """Create the census structure (once) and cut every experiment into band tasks at
    ``cuts`` (:func:`band_cuts`)."""
    opts = run.options
    structure = _create_structure(run, plans, sum(len(c) - 1 for c in cuts.values()))
    exp_uris: dict[str, str] = structure["experiments"]
    genes: dict[str, dict[str, Any]] = structure["genes"]
    tasks: list[BandTask] = []
    timestamp = int(structure["first_timestamp"])
    for plan in plans:
        if not plan.n_obs:
            continue
        tasks += make_bands(
            plan,
            exp_uri=exp_uris[plan.key],
            bounds=cuts[plan.key],
            chunk_nnz=opts.chunk_nnz,
            check_values=opts.on_error != "skip",
            first_timestamp=timestamp,
            work_dir=run.work,
        )
        timestamp = tasks[-1].timestamp + 1
    tasks = [
        replace(
            t,
            extras=band_extras(run.work, t.organism, t.index, genes[t.organism]["gene_major"]),
        )
        if t.organism in genes
        else t
        for t in tasks
    ]
    return tasks, exp_uris, genes


def _band_arrays(
    plans: list[OrganismPlan], exp_uris: dict[str, str], genes: dict[str, dict[str, Any]]
) -> set[str]:
    """The arrays written by bands (obs, X layers, gene-major copies), cleared of uncommitted
    fragments."""
    out: set[str] = set()
    for plan in plans:
        if plan.n_obs:
            exp = exp_uris[plan.key]
            uris = [f"{exp}/obs", *(f"{exp}/ms/{S.MEASUREMENT}/X/{x}" for x in plan.x_layers)]
            if plan.key in genes:
                uris += genes[plan.key]["gene_major"].values()
            for uri in uris:
                remove_uncommitted_fragments(uri)
            out.update(uris)
    return out


def _discard_work(run: _Run) -> None:
    """Delete the work directory (markers, staged chunks) of a finished build.

    It is renamed aside first, in one step: deleting it in place removes the markers in
    directory order, and a build killed meanwhile would resume from a mix of them (a structure
    to create again beside bands marked done: empty arrays). Renamed, it is either all there
    (resume reuses everything) or gone (resume starts the steps again).
    """
    trash = run.staging / "_work.deleted"
    remove_tree(trash)  # left by a build killed while deleting it
    if run.work.exists():
        run.work.replace(trash)
    remove_tree(trash)


def _plan_processes(run: _Run, executor: Executor) -> int:
    """The worker processes the band stage will run on (1: none); if more, start their fork
    server now, so that it imports the builder while this process scans."""
    opts = run.options
    if not isinstance(executor, SerialExecutor) or (opts.threads or 1) > 1:
        return 1
    source_bytes = sum(s.size for s in run.staged.values())
    processes = band_processes(opts.processes, source_bytes=source_bytes)
    if processes > 1:
        start_fork_server()
    return processes


def _build(run: _Run, all_entries: list[ManifestEntry]) -> BuildResult:
    opts = run.options
    blocked = [e for e in all_entries if e.dataset_id in opts.blocklist]
    for e in blocked:
        logger.info("dataset %s is in the blocklist: left out", e.dataset_id)
    with open_executor(
        workers=opts.workers, scheduler=opts.scheduler, memory_per_worker=opts.memory_per_worker
    ) as executor:
        with run.timed("stage"):
            entries = _stage_all(
                run, [e for e in all_entries if e.dataset_id not in opts.blocklist], executor
            )
            processes = _plan_processes(run, executor)
        with run.timed("scan"):
            scans = _scan_all(run, entries, executor)
        with run.timed("plan"):
            plans = make_plans(scans, run.work / "plan")
        if not any(p.n_obs for p in plans):
            msg = (
                "no dataset contributes any cell to the census (check organisms, assays, "
                "tissue_type and the skipped datasets)"
            )
            raise BadInputError(msg)
        with run.timed("plan"):  # once: the digest and the tasks must see the same cuts
            cuts = band_cuts(plans, band_cost(plans, opts.chunk_nnz, opts.band_nnz))
        if run.state.begin_plan(_plan_digest(run, plans, cuts)):
            logger.info("the plan is unchanged: reusing finished bands")
        with run.timed("plan"):
            tasks, exp_uris, genes = _plan_bands(run, plans, cuts)
        with run.timed("bands"):
            results = _run_bands(run, tasks, executor, processes)
        with run.timed("scenes"):
            scenes = _run_scenes(run, plans, exp_uris, executor)
        with run.timed("tables"):
            _write_tables(run, entries, plans, exp_uris, (results, scenes))
            band_arrays = _band_arrays(plans, exp_uris, genes)
        with run.timed("summary"):
            _write_summaries(run, plans, tasks, genes)
        with run.timed("obs_copy"):
            _write_obs_copies(run, plans, exp_uris, genes)
        included = {d.dataset_id for p in plans for d in p.datasets}
        for e in all_entries:
            if e.dataset_id not in included:  # only contributing datasets are released
                (run.staging / "h5ads" / f"{e.dataset_id}.h5ad").unlink(missing_ok=True)
        if opts.consolidate:
            with run.timed("consolidate"):
                _consolidate_all(run, band_arrays, executor)
    _discard_work(run)
    bands_per_organism: dict[str, int] = {}
    for t in tasks:
        bands_per_organism[t.organism] = bands_per_organism.get(t.organism, 0) + 1
    scans_by_id = {s.dataset_id: s for s in scans}
    doc = _write_build_json(run, all_entries, scans_by_id, plans, bands_per_organism)
    _add_to_build_json(run, {"timing": run.timing()})
    if opts.validate:
        from cellcensus.builder.validate import validate_build

        run.progress.start("validate", None)
        with run.timed("validate"):
            validate_build(run.staging, sample_cells=opts.validation_sample_cells)
        run.progress.finish("validate")
        _add_to_build_json(run, {"timing": run.timing()})
    return BuildResult(
        out_dir=run.out_dir,
        tag=run.tag,
        total_cell_count=doc["summary"]["total_cell_count"],
        unique_cell_count=doc["summary"]["unique_cell_count"],
        datasets=doc["inputs"],
        organisms=doc["summary"]["organisms"],
        spatial=doc["summary"]["spatial"],
    )
