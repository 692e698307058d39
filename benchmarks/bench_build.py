"""Build benchmark: cellcensus build vs loading the same H5ADs with tiledbsoma.io (append).

Run by hand (not in CI):

    .venv/bin/python benchmarks/bench_build.py --cells 1000000 --workdir /tmp/bench-build

Synthesizes a 2-organism corpus (8 CSR datasets, counts in X; reused if present), then
measures, each in a fresh process with its process tree's RSS sampled:
  baseline  tiledbsoma.io.register_anndatas + from_h5ad(append) of every file into one experiment
  ours      cellcensus build (serial, and with --workers N on a Dask LocalCluster)
and prints cells/s, nnz/s, peak RSS and the speed ratio ours/baseline.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from _measure import gib, machine, run_measured

_BASELINE = r"""
import csv, json, sys, warnings
warnings.simplefilter("ignore")
import tiledbsoma.io
manifest, uri = sys.argv[1], sys.argv[2]
paths = [r["dataset_asset_h5ad_uri"] for r in csv.DictReader(open(manifest))]
# the documented append pattern: create from the first file, register the rest, prepare, append
tiledbsoma.io.from_h5ad(uri, paths[0], measurement_name="RNA")
rd = tiledbsoma.io.register_h5ads(
    uri, paths[1:], measurement_name="RNA", obs_field_name="obs_id", var_field_name="var_id",
    allow_duplicate_obs_ids=True, append_obsm_varm=True,
)
rd.prepare_experiment(uri)
for path in paths[1:]:
    tiledbsoma.io.from_h5ad(uri, path, measurement_name="RNA", registration_mapping=rd,
                            ingest_mode="write")
print(json.dumps({"files": len(paths)}))
"""

_OURS = r"""
import sys, json
from cellcensus.builder import BuildOptions, build_census
r = build_census(sys.argv[1], sys.argv[2], options=BuildOptions(
    tag="2026-01-01", workers=int(sys.argv[3]), validate=False))
print(json.dumps({"cells": r.total_cell_count}))
"""


def _specs(cells: int) -> list:
    """8 CSR datasets (5 human, 3 mouse), counts in X: a layout tiledbsoma.io can append."""
    from cellcensus.synth import DatasetSpec

    specs = []
    for i in range(8):
        human = i < 5
        specs.append(
            DatasetSpec(
                dataset_id=f"bench-{i}",
                organism_ontology_term_id="NCBITaxon:9606" if human else "NCBITaxon:10090",
                n_cells=cells // 8,
                n_genes=2000 + 250 * (i % 4),
                assays=("EFO:0009922", "EFO:0009899"),
            )
        )
    return specs


def _corpus(workdir: Path, cells: int) -> tuple[Path, int, int]:
    from cellcensus.synth import synth_corpus

    corpus_dir = workdir / f"corpus-{cells}"
    manifest = corpus_dir / "manifest.csv"
    if not manifest.exists():
        shutil.rmtree(corpus_dir, ignore_errors=True)
        synth_corpus(corpus_dir, seed=0, specs=_specs(cells))
    import h5py

    n_cells = nnz = 0
    for h5 in corpus_dir.glob("*.h5ad"):
        with h5py.File(h5) as f:
            x = f["raw/X"] if "raw" in f else f["X"]
            n_cells += int(f["obs"][f["obs"].attrs["_index"]].shape[0])
            if isinstance(x, h5py.Group):
                nnz += int(x["data"].shape[0])
            else:  # dense: count the stored non-zeros block by block
                nnz += sum(int((x[i : i + 4096] != 0).sum()) for i in range(0, x.shape[0], 4096))
    return manifest, n_cells, nnz


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cellcensus-bench-build"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    manifest, n_cells, nnz = _corpus(args.workdir, args.cells)
    print(f"machine: {machine()}")
    print(f"corpus: {n_cells} source cells, {nnz} stored values, manifest {manifest}")
    results = {}
    runs = [
        ("ours (1 process)", _OURS, "1"),
        (f"ours ({args.workers} workers)", _OURS, str(args.workers)),
    ]
    if not args.skip_baseline:
        runs.insert(0, ("baseline tiledbsoma.io append", _BASELINE, ""))
    for name, script, extra in runs:
        out = args.workdir / f"out-{len(results)}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, "-c", script, str(manifest), str(out)] + ([extra] if extra else [])
        m = run_measured(cmd)
        if m.returncode != 0:
            print(f"{name}: FAILED\n{m.stderr[-3000:]}")
            continue
        results[name] = m
        print(
            f"{name:32s} {m.seconds:8.1f} s  {n_cells / m.seconds:10.0f} cells/s  "
            f"{nnz / m.seconds:12.0f} nnz/s  peak RSS {gib(m.peak_rss_bytes)}"
        )
        shutil.rmtree(out, ignore_errors=True)
    base = results.get("baseline tiledbsoma.io append")
    if base:
        for name, m in results.items():
            if name != "baseline tiledbsoma.io append":
                print(
                    f"speed ratio {name} / baseline: {base.seconds / m.seconds:.2f}x "
                    f"(target >= 3x); peak RSS {gib(m.peak_rss_bytes)} (target <= 4 GiB)"
                )
    print(
        json.dumps(
            {k: {"seconds": v.seconds, "peak_rss": v.peak_rss_bytes} for k, v in results.items()}
        )
    )


if __name__ == "__main__":
    main()
