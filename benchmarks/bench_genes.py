"""Gene benchmark: gene queries on the gene-major copies vs the cell-major X; build overhead.

Run by hand (not in CI):

    .venv/bin/python benchmarks/bench_genes.py --cells 200000 --workdir /tmp/bench-genes

1. Builds the same synthetic corpus twice in subprocesses, alternating: with gene-major copies
   (the default) and with ``--no-gene-major`` (the baseline; both write the expression summary).
   Prints the time, peak RSS and storage of each and the ratios (extra time, copies / X size).
2. On the build with copies, times ``get_anndata`` for 1, 2, 10 and 100 genes across all human
   cells (and 2 genes in one tissue) with the official client (cell-major X), ours with
   ``x_layout="cell-major"`` and ours routed (``"auto"``), alternating the order, several rounds
   (median). Checks the three give the same matrix. Ratio = official / routed (target >= 10 for
   <= 10 genes). Then the same queries *cold*: each the first query of a fresh process (after
   ``import cellcensus, cellxgene_census``; open + query timed), official and routed alternating.
   Then the floor of any client that returns the same AnnData: reading obs of the selected cells
   (all columns) and making its frame, measured alone.
3. Times ``cellcensus.experimental.summarize`` of 10 genes (first call and repeated calls), on
   this release and on ``--summary-uri`` (e.g. a 1 M-cell build).

At 1 M cells (``--bulk-cells 1000000``: a ``bulk_corpus`` of 16 datasets, 20 values a cell, built
into ``--workdir`` once), with ``--baseline-uri`` a release of the same corpus built by an earlier
commit (the layout to compare with), the *layout* part compares, in one run and alternating:

- ``summarize`` of 10 genes on both releases, reading the summary with its read settings
  (``_READ_CONFIG``) and through the census's own context (TileDB's default read batching and the
  official client's 1 GiB buffers: the way it read before);
- the gene-major copies: 1, 2, 10 and 100 genes across all human cells (``SparseNDArray.read``),
  and each release's storage of the copies and of the summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _measure import _tree_bytes, gib, machine, run_measured

TAG = "2026-01-01"


def _build(corpus: Path, out: Path, *, gene_major: bool) -> tuple[float, int]:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    cmd = [
        sys.executable, "-m", "cellcensus", "--quiet", "build", str(corpus), str(out),
        "--tag", TAG, "--no-validate", "--gene-major" if gene_major else "--no-gene-major",
    ]  # fmt: skip
    m = run_measured(cmd)
    if m.returncode != 0:
        msg = f"build failed: {m.stderr[-2000:]}"
        raise SystemExit(msg)
    return m.seconds, m.peak_rss_bytes


def _build_part(args: argparse.Namespace) -> Path:
    from cellcensus.synth import synth_corpus

    corpus_dir = args.workdir / f"corpus-{args.cells}"
    manifest = corpus_dir / "manifest.csv"
    if not manifest.exists():
        manifest = synth_corpus(corpus_dir, seed=0, n_cells=args.cells).manifest_path
    with_copies = args.workdir / f"build-{args.cells}-genes"
    without = args.workdir / f"build-{args.cells}-plain"
    runs: dict[str, list[tuple[float, int]]] = {"gene-major": [], "baseline": []}
    if args.build_rounds == 0 and (with_copies / "build.json").exists():
        return with_copies
    for rnd in range(max(args.build_rounds, 1)):
        order = [True, False] if rnd % 2 == 0 else [False, True]
        for gene_major in order:
            out = with_copies if gene_major else without
            runs["gene-major" if gene_major else "baseline"].append(
                _build(manifest, out, gene_major=gene_major)
            )
    soma = with_copies / "soma"
    x_bytes = sum(
        _tree_bytes(soma / "census_data" / org / "ms" / "RNA" / "X")
        for org in ("homo_sapiens", "mus_musculus")
    )
    copy_bytes = sum(
        _tree_bytes(soma / "cellcensus_genes" / org / "X")
        for org in ("homo_sapiens", "mus_musculus")
    )
    summary_bytes = _tree_bytes(soma / "cellcensus_genes") - copy_bytes
    timing = json.loads((with_copies / "build.json").read_text())["summary"].get("timing", {})
    base_t = statistics.median(t for t, _ in runs["baseline"])
    gm_t = statistics.median(t for t, _ in runs["gene-major"])
    print(f"\n## build ({len(runs['baseline'])} round(s) each, alternating; median)")
    print("| build | time | peak RSS |")
    print("| --- | ---: | ---: |")
    for name, rs in runs.items():
        print(
            f"| {name} | {statistics.median(t for t, _ in rs):.1f} s | "
            f"{gib(max(p for _, p in rs))} |"
        )
    print(f"extra build time of the copies: {gm_t / base_t - 1:+.1%} (target <= +30 %)")
    print(f"steps of the build with copies (build.json timing): {timing}")
    print(
        f"storage: X {gib(x_bytes)}, gene-major copies {gib(copy_bytes)} "
        f"({copy_bytes / x_bytes:.2f}x of X; target <= 1x), summary {gib(summary_bytes)}"
    )
    return with_copies


def _same(a: Any, b: Any) -> bool:
    return bool(
        a.shape == b.shape
        and a.X.nnz == b.X.nnz
        and (a.X != b.X).nnz == 0
        and a.obs.equals(b.obs)
        and a.var.equals(b.var)
        and a.obs.index.equals(b.obs.index)
    )


def _queries(uri: str) -> tuple[dict[str, dict[str, Any]], Any, Any, int]:
    """The gene queries (same genes every run), the expressed gene names, the rng, human cells."""
    import cellxgene_census
    import numpy as np

    with cellxgene_census.open_soma(uri=uri) as census:
        var = (
            census["census_data"]["homo_sapiens"]
            .ms["RNA"]
            .var.read(column_names=["soma_joinid", "feature_name", "nnz"])
            .concat()
            .to_pandas()
        )
        n_obs = int(census["census_data"]["homo_sapiens"].obs.count)
    expressed = var[var["nnz"] > 0].sort_values("soma_joinid")
    rng = np.random.default_rng(0)
    picks = expressed["feature_name"].astype(str).to_numpy()
    queries: dict[str, dict[str, Any]] = {}
    for n in (1, 2, 10, 100):
        names = sorted(rng.choice(picks, size=n, replace=False).tolist())
        queries[f"{n} gene(s) x all cells"] = {"var_value_filter": f"feature_name in {names}"}
    queries["2 genes x all cells, obs cell_type only"] = {
        "var_value_filter": queries["2 gene(s) x all cells"]["var_value_filter"],
        "obs_column_names": ["cell_type"],
    }
    queries["2 genes x lung"] = {
        "var_value_filter": queries["2 gene(s) x all cells"]["var_value_filter"],
        "obs_value_filter": "tissue_general == 'lung'",
    }
    return queries, picks, rng, n_obs


def _query_part(build: Path, rounds: int) -> None:
    import warnings

    import cellxgene_census
    from anndata import ImplicitModificationWarning

    import cellcensus

    warnings.filterwarnings("ignore", category=ImplicitModificationWarning)
    uri = str(build / "soma")
    queries, picks, rng, n_obs = _queries(uri)

    def ours(layout: str):
        def run(census: Any, organism: str, **kw: Any) -> Any:
            return cellcensus.get_anndata(census, organism, x_layout=layout, **kw)

        return run

    clients = {
        "official": (cellxgene_census.open_soma, cellxgene_census.get_anndata),
        "cellcensus cell-major": (cellcensus.open_soma, ours("cell-major")),
        "cellcensus routed": (cellcensus.open_soma, ours("auto")),
    }
    print(f"\n## gene queries ({n_obs:,} human cells; median of {rounds}, alternating order)")
    print(
        "| query | result | official | cellcensus cell-major | cellcensus routed | "
        "official / routed |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for qname, kwargs in queries.items():
        times: dict[str, list[float]] = {c: [] for c in clients}
        results: dict[str, Any] = {}
        for rnd in range(rounds):
            order = list(clients) if rnd % 2 == 0 else list(reversed(clients))
            for cname in order:
                open_soma, get_anndata = clients[cname]
                t0 = time.perf_counter()
                with open_soma(uri=uri) as census:
                    adata = get_anndata(census, "Homo sapiens", **kwargs)
                times[cname].append(time.perf_counter() - t0)
                results[cname] = adata
        base = results["official"]
        if not all(_same(r, base) for r in results.values()):
            msg = f"{qname}: the clients returned different results"
            raise SystemExit(msg)
        med = {c: statistics.median(t) for c, t in times.items()}
        print(
            f"| {qname} | {base.n_obs:,} x {base.n_vars} ({base.X.nnz:,} values) | "
            f"{med['official']:.3f} s | {med['cellcensus cell-major']:.3f} s | "
            f"{med['cellcensus routed']:.3f} s | "
            f"{med['official'] / med['cellcensus routed']:.1f}x |"
        )

    _x_only(uri, queries, rounds)
    _cold_part(uri, queries, max(rounds // 2, 3))
    _obs_floor(uri, rounds)
    _summarize_part(uri, picks, rng, rounds)


_COLD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import cellcensus, cellxgene_census
import cellcensus.client, cellcensus.experimental  # cellcensus imports these on first use
client, uri, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
t0 = time.perf_counter()
if client == "official":
    with cellxgene_census.open_soma(uri=uri) as census:
        adata = cellxgene_census.get_anndata(census, "Homo sapiens", **kwargs)
else:
    with cellcensus.open_soma(uri=uri) as census:
        adata = cellcensus.get_anndata(census, "Homo sapiens", **kwargs)
print(json.dumps({"seconds": time.perf_counter() - t0, "nnz": int(adata.X.nnz)}))
"""


def _cold_part(uri: str, queries: dict[str, dict[str, Any]], rounds: int) -> None:
    """Each query as the first of a fresh process, official vs routed, alternating."""
    import compileall
    import subprocess

    import cellcensus

    # as an installed wheel: byte-compiled (a source checkout run with PYTHONDONTWRITEBYTECODE
    # compiles cellcensus's modules in every process, the dependencies' are compiled)
    compileall.compile_dir(str(Path(cellcensus.__file__).parent), quiet=1)
    print(
        f"\n## cold: the first query of a fresh process, modules imported (median of {rounds}, "
        "alternating)"
    )
    print("| query | official | cellcensus routed | official / routed |")
    print("| --- | ---: | ---: | ---: |")
    for qname, kwargs in queries.items():
        if qname.startswith("100") or not qname.endswith("x all cells"):
            continue
        times: dict[str, list[float]] = {"official": [], "routed": []}
        for rnd in range(rounds):
            order = list(times) if rnd % 2 == 0 else list(reversed(times))
            for client in order:
                out = subprocess.run(
                    [sys.executable, "-c", _COLD, client, uri, json.dumps(kwargs)],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                times[client].append(json.loads(out.stdout.splitlines()[-1])["seconds"])
        med = {c: statistics.median(t) for c, t in times.items()}
        print(
            f"| {qname} | {med['official']:.3f} s | {med['routed']:.3f} s | "
            f"{med['official'] / med['routed']:.1f}x |"
        )


def _obs_floor(uri: str, rounds: int) -> None:
    """What returning the same AnnData costs whatever X is read from: obs of every human cell
    (all columns) read and made into its frame, by tiledbsoma's ``to_anndata`` path (the
    official client), by the routed path's from obs, and by the routed path's from the obs
    copy (what it does for a query of every cell of a local release)."""
    import tiledbsoma
    from anndata import AnnData

    from cellcensus._obscopy import OBS_COPY, read_obs_copy
    from cellcensus.client._genemajor import _frame, _read_table

    every = tiledbsoma.AxisQuery(coords=(slice(None),))
    copy = Path(uri) / "cellcensus_genes" / "homo_sapiens" / OBS_COPY
    times: dict[str, list[float]] = {"tiledbsoma": [], "cellcensus": [], "obs copy": []}
    if not copy.is_file():
        del times["obs copy"]
    with tiledbsoma.open(uri) as census:
        obs = census["census_data"]["homo_sapiens"].obs
        for rnd in range(rounds):
            order = list(times) if rnd % 2 == 0 else list(reversed(times))
            for name in order:
                t0 = time.perf_counter()
                if name == "tiledbsoma":
                    frame = obs.read().concat().to_pandas()
                    AnnData(obs=frame)  # makes the string index, checks it
                elif name == "cellcensus":
                    table, _ = _read_table(obs, every, None)
                    AnnData(obs=_frame(obs, table, "obs_id"))
                else:
                    AnnData(obs=_frame(obs, read_obs_copy(copy, None), "obs_id"))
                times[name].append(time.perf_counter() - t0)
    med = {c: statistics.median(t) for c, t in times.items()}
    print(
        f"\nobs of all human cells, read and made into the AnnData's frame (median of {rounds}): "
        f"tiledbsoma's way {med['tiledbsoma'] * 1000:.0f} ms, the routed path's from obs "
        f"{med['cellcensus'] * 1000:.0f} ms"
        + (f", from the obs copy {med['obs copy'] * 1000:.0f} ms" if "obs copy" in med else "")
    )


def _summarize_part(uri: str, picks: Any, rng: Any, rounds: int) -> None:
    """``summarize`` of 10 genes: the first call and repeated ones."""
    import cellcensus
    from cellcensus.experimental import _summary, summarize

    ten = sorted(rng.choice(picks, size=10, replace=False).tolist())
    with cellcensus.open_soma(uri=uri) as census:
        _summary._CACHE.clear()
        t0 = time.perf_counter()
        frame = summarize(census, "Homo sapiens", ten, by=["tissue_general", "cell_type"])
        first = time.perf_counter() - t0
        warm = []
        for _ in range(max(rounds, 3)):
            t0 = time.perf_counter()
            summarize(census, "Homo sapiens", ten, by=["tissue_general", "cell_type"])
            warm.append(time.perf_counter() - t0)
    others = []
    with cellcensus.open_soma(uri=uri) as census:
        for _ in range(max(rounds, 5)):
            genes = sorted(rng.choice(picks, size=10, replace=False).tolist())
            t0 = time.perf_counter()
            summarize(census, "Homo sapiens", genes, by=["tissue_general", "cell_type"])
            others.append(time.perf_counter() - t0)
    print(
        f"\nsummarize on {uri}: 10 genes by tissue_general x cell_type: {len(frame)} rows; "
        f"other sets of 10 genes {statistics.median(others) * 1000:.0f} ms (median); first call "
        f"{first * 1000:.0f} ms (reads the groups and var), then "
        f"{statistics.median(warm) * 1000:.0f} ms (median; target <= 50 ms on a 1 M-cell release)"
    )


def _x_only(uri: str, queries: dict[str, dict[str, Any]], rounds: int) -> None:
    """X alone (no obs, no AnnData): the genes' values across all cells, from each array."""
    import tiledbsoma

    print(f"\n## X only: the genes' values across all human cells (median of {rounds})")
    print("| query | values | cell-major X | gene-major copy | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tiledbsoma.open(uri) as census:
        var = census["census_data"]["homo_sapiens"].ms["RNA"].var
        arrays = {
            "cell-major": census["census_data"]["homo_sapiens"].ms["RNA"].X["raw"],
            "gene-major": census["cellcensus_genes"]["homo_sapiens"]["X"]["raw"],
        }
        for qname, kwargs in queries.items():
            if "obs_value_filter" in kwargs or "obs_column_names" in kwargs:
                continue
            ids = (
                var.read(value_filter=kwargs["var_value_filter"], column_names=["soma_joinid"])
                .concat()["soma_joinid"]
                .to_numpy()
            )
            times: dict[str, list[float]] = {k: [] for k in arrays}
            n: dict[str, int] = {}
            for rnd in range(rounds):
                names = list(arrays) if rnd % 2 == 0 else list(reversed(arrays))
                for name in names:
                    t0 = time.perf_counter()
                    table = arrays[name].read((slice(None), ids)).tables().concat()
                    times[name].append(time.perf_counter() - t0)
                    n[name] = table.num_rows
            if len(set(n.values())) != 1:
                msg = f"{qname}: different values read {n}"
                raise SystemExit(msg)
            med = {k: statistics.median(t) for k, t in times.items()}
            print(
                f"| {qname} | {n['gene-major']:,} | {med['cell-major']:.3f} s | "
                f"{med['gene-major']:.3f} s | {med['cell-major'] / med['gene-major']:.1f}x |"
            )


def _bulk_release(workdir: Path, cells: int) -> str:
    """A release of ``bulk_corpus(cells, 16 datasets, 20 values a cell)``, built once."""
    from cellcensus.synth import bulk_corpus

    manifest = bulk_corpus(workdir, n_cells=cells, n_datasets=16, values_per_cell=20)
    out = workdir / f"build-bulk-{cells}"
    if not (out / "build.json").exists():
        seconds, peak = _build(manifest, out, gene_major=True)
        print(f"built {out} in {seconds:.1f} s, peak RSS {gib(peak)}")
    return str(out / "soma")


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def _layout_part(uri: str, baseline: str, rounds: int) -> None:
    """The release under test against ``baseline`` (same corpus, earlier layout), alternating."""
    import numpy as np
    import tiledbsoma

    import cellcensus
    from cellcensus.experimental import _summary, summarize

    releases = {"this": uri, "baseline": baseline}
    with tiledbsoma.open(uri) as census:
        var = census["census_data"]["homo_sapiens"].ms["RNA"].var
        frame = var.read(column_names=["soma_joinid", "feature_name", "nnz"]).concat().to_pandas()
    expressed = frame[frame["nnz"] > 0]
    rng = np.random.default_rng(0)
    sets = [
        sorted(rng.choice(expressed["feature_name"].astype(str), 10, replace=False).tolist())
        for _ in range(max(rounds, 5) * 6)
    ]
    by = ["tissue_general", "cell_type"]
    configs = {"read settings": dict(_summary._READ_CONFIG), "census context": {}}
    times: dict[tuple[str, str], list[float]] = {}
    frames: dict[str, Any] = {}
    handles = {name: cellcensus.open_soma(uri=u) for name, u in releases.items()}
    try:
        for name, census in handles.items():  # first calls: groups and var read, then cached
            frames[name] = summarize(census, "Homo sapiens", sets[0], by=by)
        for rnd in range(max(rounds, 5)):
            order = [(r, c) for r in releases for c in configs]
            for release, config in order if rnd % 2 == 0 else list(reversed(order)):
                _summary._READ_CONFIG = configs[config]
                _summary._HANDLES.clear()
                census = handles[release]
                summarize(census, "Homo sapiens", sets[0], by=by)  # opens the summary handle
                for genes in sets[1 + rnd * 5 : 6 + rnd * 5]:
                    t0 = time.perf_counter()
                    summarize(census, "Homo sapiens", genes, by=by)
                    times.setdefault((release, config), []).append(time.perf_counter() - t0)
    finally:
        _summary._READ_CONFIG = configs["read settings"]
        _summary._HANDLES.clear()
        for census in handles.values():
            census.close()
    import pandas as pd

    pd.testing.assert_frame_equal(frames["this"], frames["baseline"])
    print(
        f"\n## summarize, 10 genes by tissue_general x cell_type ({len(frames['this'])} rows, "
        "equal on both releases); median ms over other sets of 10 genes, alternating"
    )
    print("| release | read settings | census context | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for release in releases:
        tuned = _median_ms(times[(release, "read settings")])
        plain = _median_ms(times[(release, "census context")])
        print(f"| {release} | {tuned:.1f} ms | {plain:.1f} ms | {plain / tuned:.1f}x |")
    base = _median_ms(times[("baseline", "census context")])
    now = _median_ms(times[("this", "read settings")])
    print(f"this release, read settings vs baseline release, census context: {base / now:.1f}x")
    _copies_part(releases, frame, rounds)


def _copies_part(releases: dict[str, str], var: Any, rounds: int) -> None:
    """Reads of 1, 2, 10 and 100 genes across all cells from each release's gene-major copy."""
    import numpy as np
    import tiledbsoma

    expressed = var[var["nnz"] > 0]["soma_joinid"].to_numpy()
    rng = np.random.default_rng(1)
    arrays = {}
    opened = {name: tiledbsoma.open(u) for name, u in releases.items()}
    try:
        copies = {
            name: census["cellcensus_genes"]["homo_sapiens"]["X"] for name, census in opened.items()
        }
        # the layers both releases copy (builds copy raw only by default since the gene-major
        # layers setting; an older release may hold both)
        layers = [
            layer for layer in ("raw", "normalized") if all(layer in c for c in copies.values())
        ]
        for name, coll in copies.items():
            arrays[name] = {layer: coll[layer] for layer in layers}
        print(f"\n## gene-major copies: genes x all human cells (median of {rounds * 3} sets)")
        print("| genes | layer | values | this | baseline | baseline / this |")
        print("| ---: | --- | ---: | ---: | ---: | ---: |")
        for n in (1, 2, 10, 100):
            gene_sets = [
                np.sort(rng.choice(expressed, n, replace=False)) for _ in range(rounds * 3)
            ]
            for layer in layers:
                times: dict[str, list[float]] = {name: [] for name in releases}
                values: dict[str, int] = {name: 0 for name in releases}
                for i, ids in enumerate(gene_sets):
                    names = list(releases) if i % 2 == 0 else list(reversed(releases))
                    for name in names:
                        t0 = time.perf_counter()
                        table = arrays[name][layer].read((slice(None), ids)).tables().concat()
                        times[name].append(time.perf_counter() - t0)
                        values[name] += table.num_rows
                if values["this"] != values["baseline"]:
                    msg = f"copies of {n} genes: different values read {values}"
                    raise SystemExit(msg)
                t, b = _median_ms(times["this"]), _median_ms(times["baseline"])
                print(
                    f"| {n} | {layer} | {values['this'] // len(gene_sets):,} | {t:.1f} ms | "
                    f"{b:.1f} ms | {b / t:.2f}x |"
                )
    finally:
        for census in opened.values():
            census.close()
    print("\n| release | X | gene-major copies | copies / X | summary |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, u in releases.items():
        soma = Path(u.removeprefix("file://"))
        x = sum(
            _tree_bytes(soma / "census_data" / o / "ms" / "RNA" / "X")
            for o in ("homo_sapiens", "mus_musculus")
        )
        copies = sum(
            _tree_bytes(soma / "cellcensus_genes" / o / "X")
            for o in ("homo_sapiens", "mus_musculus")
        )
        summary = _tree_bytes(soma / "cellcensus_genes") - copies
        print(
            f"| {name} | {x / 1e6:.1f} MB | {copies / 1e6:.1f} MB | {copies / x:.3f}x | "
            f"{summary / 1e6:.1f} MB |"
        )


def _summary_release(uri: str, rounds: int) -> None:
    import numpy as np
    import tiledbsoma

    with tiledbsoma.open(uri) as census:
        exp = census["census_data"]["homo_sapiens"]
        var = exp.ms["RNA"].var.read(column_names=["feature_name", "nnz"]).concat().to_pandas()
        n_cells = sum(int(census["census_data"][o].obs.count) for o in census["census_data"])
    picks = var[var["nnz"] > 0]["feature_name"].astype(str).to_numpy()
    print(f"\n## summarize on a {n_cells:,}-cell release")
    _summarize_part(uri, picks, np.random.default_rng(0), rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=200_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cellcensus-bench-genes"))
    ap.add_argument("--rounds", type=int, default=5, help="rounds of each query")
    ap.add_argument(
        "--build-rounds",
        type=int,
        default=1,
        help="builds of each kind (0: reuse an existing build with copies, no build timing)",
    )
    ap.add_argument("--no-queries", action="store_true", help="measure the builds only")
    ap.add_argument(
        "--cold-only", action="store_true", help="only the cold queries, on an existing build"
    )
    ap.add_argument(
        "--summary-uri",
        help="also time summarize on this release's soma/ (e.g. a 1 M-cell build)",
    )
    ap.add_argument(
        "--bulk-cells",
        type=int,
        help="build (once) a bulk_corpus release of this many cells and use it as --summary-uri",
    )
    ap.add_argument(
        "--baseline-uri",
        help="a release of the same corpus by an earlier commit: compare summarize and the "
        "gene-major copies of --summary-uri (or --bulk-cells) with it",
    )
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    import os

    print(f"load average at start: {os.getloadavg()}")
    if args.cold_only:
        uri = str(args.workdir / f"build-{args.cells}-genes" / "soma")
        _cold_part(uri, _queries(uri)[0], args.rounds)
        return
    if args.bulk_cells:
        args.summary_uri = _bulk_release(args.workdir, args.bulk_cells)
    if args.build_rounds or not args.no_queries:
        build = _build_part(args)
        if not args.no_queries:
            _query_part(build, args.rounds)
    if args.summary_uri:
        _summary_release(args.summary_uri, args.rounds)
        if args.baseline_uri:
            _layout_part(args.summary_uri, args.baseline_uri, args.rounds)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
