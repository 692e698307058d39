"""Scale benchmark: build time, peak memory per process and staging disk from 1 M to 10 M cells.

Run by hand (not in CI), on an otherwise idle machine:

    .venv/bin/python benchmarks/bench_scale.py --workdir /data/bench-scale

For each corpus size (``--sizes``, default 1 M, 3 M and 10 M cells) and shape (``--datasets``,
default 4 large datasets and 64 small ones; half human, half mouse, ``--values-per-cell`` stored
values per cell), it makes the corpus (``cellcensus.synth.bulk_corpus``: real terms and genes, few
genes per cell so 10 M cells fit a laptop's disk; reused if present), runs ``cellcensus build``
with default settings (validation included; ``--processes N`` pins the band processes, whose
default depends on the sources' size) in a fresh process, and samples every process's RSS and
the staging disk. It prints, per run: time, time per million cells and its ratio to the smallest
size of the same shape (the baseline of this run), the largest process's peak RSS and its ratio to
the baseline, the staging disk peak, and the longest task as a share of the summed task time; then
an extrapolation to a 130 M-cell census (the human + mouse Census) for 1, 8 and 64 workers from the
largest run's measured per-cell costs. Results are also written to
``<workdir>/scale-results-chunk<N>.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from _measure import gib, machine, run_measured

from cellcensus.builder._plan import CELL_COST, TARGET_BANDS

CENSUS_CELLS = 130_000_000


def _run(
    workdir: Path,
    manifest: Path,
    name: str,
    workers: int,
    chunk_nnz: int,
    *,
    threads: int | None,
    processes: int | None = None,
) -> dict:
    out = workdir / f"build-{name}"
    staging = workdir / f".build-{name}.staging"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [sys.executable, "-m", "cellcensus", "-q", "build", str(manifest), str(out)]
    cmd += ["--tag", "2026-12-01", "--workers", str(workers), "--chunk-nnz", str(chunk_nnz)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if processes is not None:
        cmd += ["--processes", str(processes)]
    m = run_measured(cmd, interval=0.2, watch=[staging, out])
    if m.returncode != 0:
        msg = f"build {name} failed:\n{m.stderr[-3000:]}"
        raise SystemExit(msg)
    doc = json.loads((out / "build.json").read_text())
    summary = doc["summary"]
    timing = summary["timing"]
    tasks = timing["tasks"]
    total_task = sum(t["seconds_total"] for t in tasks.values())
    longest = max((t["seconds_max"] for t in tasks.values()), default=0.0)
    result = {
        "name": name,
        "cells": summary["total_cell_count"],
        "datasets": summary["datasets_included"],
        "seconds": m.seconds,
        "peak_rss_tree": m.peak_rss_bytes,
        "peak_rss_process": m.max_process_rss,
        "processes": {str(pid): [label, rss] for pid, (label, rss) in m.process_peaks.items()},
        "peak_disk": m.peak_disk_bytes,
        "out_bytes": _tree_size(out),
        "stages": timing["stages_seconds"],
        "tasks": tasks,
        "task_seconds_total": total_task,
        "task_seconds_max": longest,
        "bands": sum(o["x_fragments"] for o in summary["organisms"].values()),
    }
    result["values"] = _x_values(out)
    shutil.rmtree(out, ignore_errors=True)
    return result


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _x_values(build: Path) -> int:
    import tiledbsoma as soma

    total = 0
    with soma.open(str(build / "soma")) as census:
        for name in ("homo_sapiens", "mus_musculus"):
            total += census["census_data"][name].ms["RNA"].X["raw"].nnz
    return total


def _band_cost(values: float, cells: float, chunk_nnz: int) -> float:
    """The builder's default work per band (see ``cellcensus.builder._plan.band_cost``)."""
    return max(chunk_nnz, (values + CELL_COST * cells) / TARGET_BANDS)


def _extrapolate(r: dict, workers: list[int], chunk_nnz: int) -> list[tuple[int, float, float]]:
    """(workers, hours, longest task in hours) for a CENSUS_CELLS census, from one run.

    Task time (scan parts and bands, summed) spreads over the workers; the rest of the wall time
    (staging in the driver, plan, tables, validation: the time outside the scan and band stages)
    is serial. Scan parts keep their size; bands grow to 1/64 of the
    census once that exceeds ``chunk_nnz``, so the longest band grows with them.
    """
    scale = CENSUS_CELLS / r["cells"]
    parallel = r["task_seconds_total"] * scale
    # the wall time outside the stages of tasks (tasks may overlap: band threads)
    stages = r["stages"]
    serial = (r["seconds"] - stages.get("scan", 0.0) - stages.get("bands", 0.0)) * scale
    band_growth = _band_cost(r["values"] * scale, CENSUS_CELLS, chunk_nnz) / _band_cost(
        r["values"], r["cells"], chunk_nnz
    )
    scan_max = r["tasks"].get("scan", {}).get("seconds_max", 0.0)
    band_max = r["tasks"].get("band", {}).get("seconds_max", 0.0)
    longest = max(scan_max, band_max * band_growth)
    return [(w, (serial + max(parallel / w, longest)) / 3600, longest / 3600) for w in workers]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench-scale"))
    ap.add_argument("--sizes", default="1000000,3000000,10000000")
    ap.add_argument("--datasets", default="4,64")
    ap.add_argument("--values-per-cell", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--chunk-nnz",
        type=int,
        default=8_000_000,
        help="the build's --chunk-nnz (default: the builder's default)",
    )
    ap.add_argument(
        "--threads", type=int, default=None, help="the build's --threads (default: its default)"
    )
    ap.add_argument(
        "--processes",
        type=int,
        default=None,
        help="the build's --processes (default: its default, which depends on the sources' size:"
        " give a number to compare sizes on either side of 64 MiB)",
    )
    ap.add_argument("--drop-corpora", action="store_true", help="delete each corpus after use")
    args = ap.parse_args()
    from cellcensus.synth import bulk_corpus

    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    shapes = [int(s) for s in args.datasets.split(",")]
    print(f"machine: {machine()}; --chunk-nnz {args.chunk_nnz:,}")
    results = []
    for n_ds in shapes:
        for n in sizes:
            manifest = bulk_corpus(
                args.workdir, n_cells=n, n_datasets=n_ds, values_per_cell=args.values_per_cell
            )
            r = _run(
                args.workdir,
                manifest,
                f"{n}-{n_ds}",
                args.workers,
                args.chunk_nnz,
                threads=args.threads,
                processes=args.processes,
            )
            results.append(r)
            print(
                f"{n:>11,} cells {n_ds:>3} datasets: {r['seconds']:8.1f} s, "
                f"peak process RSS {gib(r['peak_rss_process'])}, staging disk "
                f"{gib(r['peak_disk'])}, longest task {r['task_seconds_max']:.1f} s of "
                f"{r['task_seconds_total']:.1f} s",
                flush=True,
            )
            if args.drop_corpora:
                shutil.rmtree(manifest.parent, ignore_errors=True)
    out = args.workdir / f"scale-results-chunk{args.chunk_nnz}.json"
    out.write_text(json.dumps(results, indent=2))
    print()
    print(
        "| cells | datasets | stored values | bands | time | s / M cells | ratio | "
        "peak RSS (largest process) | ratio | staging disk peak | longest task / task sum |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n_ds in shapes:
        base = next(r for r in results if r["datasets"] == n_ds)
        base_rate = base["seconds"] / base["cells"]
        for r in (r for r in results if r["datasets"] == n_ds):
            rate = r["seconds"] / r["cells"]
            print(
                f"| {r['cells']:,} | {r['datasets']} | {r['values']:,} | {r['bands']} | "
                f"{r['seconds']:.1f} s | {rate * 1e6:.1f} | {rate / base_rate:.2f} | "
                f"{gib(r['peak_rss_process'])} | "
                f"{r['peak_rss_process'] / base['peak_rss_process']:.2f} | "
                f"{gib(r['peak_disk'])} | "
                f"{100 * r['task_seconds_max'] / max(r['task_seconds_total'], 1e-9):.1f} % |"
            )
    largest = max(results, key=lambda r: (r["cells"], -r["datasets"]))
    print()
    print(f"Extrapolation to {CENSUS_CELLS:,} cells from the {largest['name']} run:")
    print("| workers | hours | longest task (hours) |")
    print("| ---: | ---: | ---: |")
    for w, hours, longest in _extrapolate(largest, [1, 8, 64], args.chunk_nnz):
        print(f"| {w} | {hours:.1f} | {longest:.2f} |")


if __name__ == "__main__":
    main()
