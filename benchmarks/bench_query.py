"""Query benchmark: ``cellcensus.get_anndata`` vs ``cellxgene_census.get_anndata`` on one release.

Run by hand (not in CI):

    .venv/bin/python benchmarks/bench_query.py --cells 200000 --workdir /tmp/bench-query

Builds (or reuses) a census of --cells synthetic cells, then times three typical queries with both
clients on the same local copy, alternating the order, several rounds (median):
  1. a cell type across datasets (obs filter only, all genes)
  2. a tissue and 50 genes
  3. one whole dataset
Prints the ratio cellcensus / official (target <= 1.0: no slower).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _measure import cached_build, machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=200_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cellcensus-bench-query"))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    build = cached_build(args.workdir, args.cells)
    soma_uri = str(build / "soma")

    import cellxgene_census

    import cellcensus

    with cellxgene_census.open_soma(uri=soma_uri) as census:
        var = census["census_data"]["homo_sapiens"].ms["RNA"].var.read().concat().to_pandas()
        datasets = census["census_info"]["datasets"].read().concat().to_pandas()
    genes = sorted(var["feature_name"].astype(str))[:: max(1, len(var) // 50)][:50]
    one_dataset = str(datasets["dataset_id"].iloc[0])
    queries = {
        "cell type across datasets": {
            "obs_value_filter": "cell_type == 'CD8-positive, alpha-beta T cell'"
        },
        "tissue + 50 genes": {
            "obs_value_filter": "tissue_general == 'lung'",
            "var_value_filter": f"feature_name in {genes}",
        },
        "one whole dataset": {"obs_value_filter": f"dataset_id == '{one_dataset}'"},
    }

    def get_anndata_unchecked(census, organism, **kw):
        return cellcensus.get_anndata(census, organism, memory_check="off", **kw)

    clients = {
        "official": (cellxgene_census.open_soma, cellxgene_census.get_anndata),
        "cellcensus": (cellcensus.open_soma, cellcensus.get_anndata),
        "cellcensus, no estimate": (cellcensus.open_soma, get_anndata_unchecked),
    }
    print(f"machine: {machine()}")
    print(f"release: {build} ({args.cells} synthetic cells)")
    for qname, kwargs in queries.items():
        times: dict[str, list[float]] = {c: [] for c in clients}
        shapes: dict[str, tuple[int, int, int]] = {}
        for rnd in range(args.rounds):
            order = list(clients) if rnd % 2 == 0 else list(reversed(clients))
            for cname in order:
                open_soma, get_anndata = clients[cname]
                t0 = time.perf_counter()
                with open_soma(uri=soma_uri) as census:
                    adata = get_anndata(census, "Homo sapiens", **kwargs)
                times[cname].append(time.perf_counter() - t0)
                shapes[cname] = (adata.n_obs, adata.n_vars, int(adata.X.nnz))
        assert len(set(shapes.values())) == 1, shapes
        med = {c: statistics.median(t) for c, t in times.items()}
        base = med["official"]
        print(
            f"{qname:28s} {shapes['official'][0]:>8} cells x {shapes['official'][1]:>6} genes  "
            f"official {base:6.2f} s  cellcensus {med['cellcensus']:6.2f} s "
            f"(ratio {med['cellcensus'] / base:.2f})  without the memory estimate "
            f"{med['cellcensus, no estimate']:6.2f} s "
            f"(ratio {med['cellcensus, no estimate'] / base:.2f}); target <= 1.0"
        )


if __name__ == "__main__":
    main()
