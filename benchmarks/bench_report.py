"""Release-report benchmark: memory and time of the streamed report vs reading obs whole.

Run by hand (not in CI):

    .venv/bin/python benchmarks/bench_report.py --obs-cells 2000000,20000000 --cells 200000 \
        --workdir /tmp/bench-report

Two parts:

1. **Scale** (``--obs-cells``, one or more sizes): writes (once) an obs-only census of that many
   cells with tiledbsoma (one organism; dictionary columns ``dataset_id`` with 2,000 values,
   ``cell_type``, ``assay``, ``tissue_general``, ``disease`` and term ids; ``is_primary_data``,
   ``nnz``, ``raw_sum``; a ``var`` of 60,000 genes; ``census_info/summary_cell_counts``), then,
   in separate processes, computes the report numbers (``summarize_census``, histograms on) and
   a baseline that reads the same obs columns whole with ``.concat()`` and reduces them with
   numpy (what a report without streaming would do). Prints seconds, peak RSS, and the ratios.
2. **Publish share** (``--cells``): builds (once) the demo corpus at that size, publishes it to a
   local directory root and reports how much of the publish the report step took.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

from _measure import cached_build, gib, machine, run_measured

CHUNK = 1_000_000
N_DATASETS = 2_000
CATS = {"cell_type": 600, "assay": 20, "tissue_general": 60, "disease": 120}


def _link(parent: Path, name: str) -> None:
    """Make ``parent/name`` a member of ``parent`` (relative URI)."""
    import tiledbsoma as soma

    with soma.open(str(parent), "w") as p, soma.open(str(parent / name)) as child:
        p.set(name, child, use_relative_uri=True)


def _table_df(uri: Path, table: object) -> None:
    import pyarrow as pa
    import tiledbsoma as soma

    assert isinstance(table, pa.Table)
    soma.DataFrame.create(
        str(uri),
        schema=table.schema,
        index_column_names=["soma_joinid"],
        domain=[(0, table.num_rows - 1)],
    ).close()
    with soma.DataFrame.open(str(uri), "w") as df:
        df.write(table)


def _obs_schema() -> object:
    import pyarrow as pa

    dictionary = pa.dictionary(pa.int32(), pa.large_string())
    fields = [
        pa.field("soma_joinid", pa.int64()),
        pa.field("dataset_id", dictionary),
        pa.field("is_primary_data", pa.bool_()),
        pa.field("nnz", pa.int64()),
        pa.field("raw_sum", pa.float64()),
    ]
    for cat in CATS:
        fields += [pa.field(cat, dictionary), pa.field(f"{cat}_ontology_term_id", dictionary)]
    return pa.schema(fields)


def write_obs_census(path: Path, n_cells: int) -> None:
    """An obs-only Census-shaped collection of ``n_cells`` cells (idempotent)."""
    import numpy as np
    import pyarrow as pa
    import tiledbsoma as soma

    if (path / "done").exists():
        return
    shutil.rmtree(path, ignore_errors=True)
    rng = np.random.default_rng(0)
    exp = path / "census_data" / "homo_sapiens"
    soma.Collection.create(str(path)).close()
    soma.Collection.create(str(path / "census_info")).close()
    soma.Collection.create(str(path / "census_data")).close()
    soma.Experiment.create(str(exp)).close()
    soma.Collection.create(str(exp / "ms")).close()
    soma.Measurement.create(str(exp / "ms" / "RNA")).close()
    schema = _obs_schema()
    soma.DataFrame.create(
        str(exp / "obs"),
        schema=schema,
        index_column_names=["soma_joinid"],
        domain=[(0, n_cells - 1)],
    ).close()
    values = {cat: [f"{cat} {i}" for i in range(n)] for cat, n in CATS.items()}
    terms = {cat: [f"T:{cat}:{i:05d}" for i in range(n)] for cat, n in CATS.items()}
    datasets = [f"dataset-{i:05d}" for i in range(N_DATASETS)]
    counts: dict[tuple[str, int], list[int]] = {}
    unique = 0
    with soma.DataFrame.open(str(exp / "obs"), "w") as obs:
        for start in range(0, n_cells, CHUNK):
            n = min(CHUNK, n_cells - start)
            nnz = rng.integers(200, 6000, n)
            primary = rng.random(n) < 0.8
            unique += int(primary.sum())
            cols: dict[str, pa.Array] = {
                "soma_joinid": pa.array(np.arange(start, start + n, dtype=np.int64)),
                "dataset_id": pa.DictionaryArray.from_arrays(
                    pa.array(np.sort(rng.integers(0, N_DATASETS, n)).astype(np.int32)),
                    pa.array(datasets, pa.large_string()),
                ),
                "is_primary_data": pa.array(primary),
                "nnz": pa.array(nnz),
                "raw_sum": pa.array(nnz * rng.uniform(1.5, 4.0, n)),
            }
            for cat, k in CATS.items():
                idx = np.minimum(rng.zipf(1.6, n) - 1, k - 1).astype(np.int32)
                for key, vocab in ((cat, values[cat]), (f"{cat}_ontology_term_id", terms[cat])):
                    cols[key] = pa.DictionaryArray.from_arrays(
                        pa.array(idx), pa.array(vocab, pa.large_string())
                    )
                tot = np.bincount(idx, minlength=k)
                uni = np.bincount(idx[primary], minlength=k)
                for i in np.flatnonzero(tot):
                    c = counts.setdefault((cat, int(i)), [0, 0])
                    c[0] += int(tot[i])
                    c[1] += int(uni[i])
            obs.write(pa.Table.from_pydict(cols, schema=schema))
            print(f"  wrote {start + n:,} / {n_cells:,} cells", flush=True)
    n_var = 60_000
    _table_df(
        exp / "ms" / "RNA" / "var",
        pa.table(
            {
                "soma_joinid": np.arange(n_var, dtype=np.int64),
                "feature_id": pa.array([f"G{i}" for i in range(n_var)], pa.large_string()),
            }
        ),
    )
    rows = sorted(counts)
    _table_df(
        path / "census_info" / "summary_cell_counts",
        pa.table(
            {
                "soma_joinid": np.arange(len(rows) + 1, dtype=np.int64),
                "organism": ["homo_sapiens"] * (len(rows) + 1),
                "category": ["all"] + [c for c, _ in rows],
                "label": ["na"] + [values[c][i] for c, i in rows],
                "ontology_term_id": ["na"] + [terms[c][i] for c, i in rows],
                "total_cell_count": [n_cells] + [counts[r][0] for r in rows],
                "unique_cell_count": [unique] + [counts[r][1] for r in rows],
            }
        ),
    )
    _link(exp / "ms" / "RNA", "var")
    _link(exp / "ms", "RNA")
    _link(exp, "obs")
    _link(exp, "ms")
    _link(path / "census_data", "homo_sapiens")
    _link(path / "census_info", "summary_cell_counts")
    _link(path, "census_data")
    _link(path, "census_info")
    (path / "done").write_text("ok")


_STREAMED = """
import sys, time
import tiledbsoma as soma
from cellcensus.report import summarize_census
from cellcensus.report._collect import read_buffer_config
t = time.perf_counter()
s = summarize_census(sys.argv[1], tag="bench", context=soma.SOMATileDBContext(
    tiledb_config=read_buffer_config()))
o = s.organisms[0]
print(o.total_cells, o.unique_cells, o.nnz, o.histograms["raw_sum"].count, time.perf_counter() - t)
"""

_WHOLE = """
import sys, time
import numpy as np, pyarrow.compute as pc
import tiledbsoma as soma
t = time.perf_counter()
with soma.open(sys.argv[1]) as c:
    obs = c["census_data"]["homo_sapiens"].obs
    tbl = obs.read(column_names=["dataset_id", "is_primary_data", "nnz", "raw_sum"]).concat()
    nnz = tbl["nnz"].to_numpy()
    raw = tbl["raw_sum"].to_numpy()
    hist = [np.histogram(np.log10(np.maximum(v, 1)), bins=180, range=(0, 9)) for v in (nnz, raw)]
    primary = int(pc.sum(tbl["is_primary_data"]).as_py())
    datasets = pc.value_counts(tbl["dataset_id"])
print(tbl.num_rows, primary, int(nnz.sum()), int(hist[1][0].sum()), time.perf_counter() - t)
"""


def scale(workdir: Path, n_cells: int, rounds: int) -> None:
    census = workdir / f"obs-{n_cells}"
    print(f"obs-only census of {n_cells:,} cells at {census}")
    write_obs_census(census, n_cells)
    size = sum(p.stat().st_size for p in census.rglob("*") if p.is_file())
    print(f"  {size / 1e6:.0f} MB on disk")
    results: dict[str, list[tuple[float, int]]] = {"streamed report": [], "obs read whole": []}
    for rnd in range(rounds):
        order = list(results) if rnd % 2 == 0 else list(reversed(results))
        for name in order:
            code = _STREAMED if name == "streamed report" else _WHOLE
            m = run_measured([sys.executable, "-c", code, str(census)])
            if m.returncode != 0:
                msg = f"{name} failed:\n{m.stderr[-3000:]}"
                raise SystemExit(msg)
            results[name].append((m.seconds, m.peak_rss_bytes))
            print(
                f"  {name}: {m.seconds:.1f} s, peak RSS {gib(m.peak_rss_bytes)}; {m.stdout.strip()}"
            )
    best = {k: (min(s for s, _ in v), max(r for _, r in v)) for k, v in results.items()}
    (ts, rs), (tw, rw) = best["streamed report"], best["obs read whole"]
    print(f"\nscale, {n_cells:,} cells (best time, max peak RSS of {rounds} rounds):")
    print("| reader | seconds | peak RSS |\n| --- | ---: | ---: |")
    print(f"| streamed report (summarize_census) | {ts:.1f} | {gib(rs)} |")
    print(f"| obs columns read whole + numpy | {tw:.1f} | {gib(rw)} |")
    print(f"time ratio streamed / whole: {ts / tw:.2f}; memory ratio: {rs / rw:.2f}")


def publish_share(workdir: Path, cells: int) -> None:
    from cellcensus.release import publish
    from cellcensus.release._local import LocalRoot
    from cellcensus.report import stage_publish_report

    build = cached_build(workdir, cells)
    root = workdir / "root"
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    staged = stage_publish_report(
        LocalRoot(root), "2026-01-01", build, release_date=dt.date(2026, 1, 1)
    )
    report_s = time.perf_counter() - t
    staged.cleanup()
    t = time.perf_counter()
    publish(build, root, tag="2026-01-01")
    publish_s = time.perf_counter() - t
    total = json.loads((root / "2026-01-01" / "report.json").read_bytes())["totals"]
    html = (root / "2026-01-01" / "report.html").stat().st_size
    print(f"\npublish share, {total['cells']:,} cells, {total['store_bytes'] / 1e6:.0f} MB:")
    print(
        f"  report step alone {report_s:.1f} s; whole publish (incl. report) {publish_s:.1f} s "
        f"({100 * report_s / publish_s:.0f} %); report.html {html / 1e3:.0f} kB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--obs-cells",
        default="2000000,20000000",
        help="Comma-separated sizes of the obs-only census (memory should stay flat).",
    )
    ap.add_argument("--cells", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cellcensus-bench-report"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    for n in (int(x) for x in args.obs_cells.split(",") if x.strip()):
        scale(args.workdir, n, args.rounds)
    if args.cells:
        publish_share(args.workdir, args.cells)


if __name__ == "__main__":
    main()
