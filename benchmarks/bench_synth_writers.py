"""Synth's matrix writers: the current source tree against another one (e.g. a checkout of the
commit before a change), same datasets, alternating runs in one invocation.

    python benchmarks/bench_synth_writers.py --baseline-src /path/to/other/checkout/src \
        [--cells 50000] [--rounds 3]

Each run is a fresh process writing one published-form dataset (CSR counts in X; CSC with counts in
raw.X; dense); the table gives the fastest of ``--rounds`` runs per tree and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _measure import run_measured

HERE = Path(__file__).resolve().parent
CURRENT_SRC = HERE.parent / "src"

CASES = {
    "csr, X": {"x_format": "csr", "raw_location": "X", "share": 1.0},
    "csc, raw.X": {"x_format": "csc", "raw_location": "raw", "share": 0.4},
    "dense, X": {"x_format": "dense", "raw_location": "X", "share": 0.2},
}

SCRIPT = """
import sys, time
from cellcensus.synth import DatasetSpec, write_dataset
from cellcensus.synth._catalog import term_label
term_label("EFO:0009922", "7.0.0")  # ontology loading is not what is measured
spec = DatasetSpec(dataset_id="bench", organism_ontology_term_id="NCBITaxon:9606",
                   n_cells=int(sys.argv[1]), n_genes=2000, x_format=sys.argv[2],
                   raw_location=sys.argv[3])
t = time.perf_counter()
write_dataset(spec, sys.argv[4], seed=1, chunk_size=10_000)
print(time.perf_counter() - t)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-src", type=Path, required=True)
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trees = {"baseline": args.baseline_src.resolve(), "current": CURRENT_SRC}
    best: dict[tuple[str, str], tuple[float, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for case, params in CASES.items():
                cells = max(1, int(args.cells * float(params["share"])))
                for tree, src in trees.items():
                    out = str(Path(tmp) / "bench.h5ad")
                    env_cmd = [
                        sys.executable,
                        "-c",
                        f"import sys; sys.path.insert(0, {str(src)!r}); exec({SCRIPT!r})",
                        str(cells),
                        str(params["x_format"]),
                        str(params["raw_location"]),
                        out,
                    ]
                    m = run_measured(env_cmd)
                    if m.returncode != 0:
                        raise SystemExit(m.stderr)
                    seconds = float(m.stdout.strip().splitlines()[-1])
                    previous = best.get((case, tree))
                    if previous is None or seconds < previous[0]:
                        best[(case, tree)] = (seconds, m.peak_rss_bytes)
                    Path(out).unlink()
    print(f"| case ({args.cells:,} cells x 2,000 genes scaled) | baseline | current | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for case in CASES:
        base, cur = best[(case, "baseline")], best[(case, "current")]
        print(
            f"| {case} | {base[0]:.2f} s, {base[1] / 2**20:.0f} MiB "
            f"| {cur[0]:.2f} s, {cur[1] / 2**20:.0f} MiB | {cur[0] / base[0]:.2f}x |"
        )


if __name__ == "__main__":
    main()
