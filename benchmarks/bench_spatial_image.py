"""Peak memory of ``cellcensus._spatial.write_scene`` against image size and block size.

    python benchmarks/bench_spatial_image.py [--side 6000] [--blocks 16,64,100000]

Writes one Visium-like H5AD with a ``side x side x 3`` uint8 hires image, then, per block budget
(MiB), writes its scene in a fresh process and reports time and peak RSS. The baseline row is the
same process reading the whole image into memory once (what a non-streaming writer needs at least).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _measure import run_measured

WRITE = """
import sys, warnings, h5py, numpy as np, tiledbsoma
warnings.simplefilter("ignore")
from cellcensus._spatial import write_scene
h5ad, uri, block = sys.argv[1], sys.argv[2], int(sys.argv[3])
with tiledbsoma.Experiment.create(uri) as exp:
    exp.add_new_collection("spatial")
with h5py.File(h5ad, "r") as f:
    if block == 0:  # baseline: the image read whole
        image = f["uns/spatial/lib/images/hires"][...]
        print(image.nbytes)
    else:
        write_scene(f, uri, dataset_id="d", soma_joinids=np.arange(f["obsm/spatial"].shape[0]),
                    image_block_bytes=block << 20)
"""

MAKE = """
import sys, anndata, numpy as np, pandas as pd, scipy.sparse as sp
side, path = int(sys.argv[1]), sys.argv[2]
n = 100
image = np.empty((side, side, 3), dtype=np.uint8)
for r in range(0, side, 512):
    rows = np.arange(r, min(r + 512, side))[:, None, None]
    image[r:r + len(rows)] = (rows + np.arange(side)[None, :, None] * 3) % 251
a = anndata.AnnData(
    X=sp.csr_matrix((n, 3), dtype=np.float32),
    obs=pd.DataFrame({"assay_ontology_term_id": pd.Categorical(["EFO:0022857"] * n)},
                     index=[str(i) for i in range(n)]),
    obsm={"spatial": np.random.default_rng(0).uniform(0, side * 10, (n, 2))},
    uns={"spatial": {"is_single": np.bool_(True), "lib": {"images": {"hires": image},
         "scalefactors": {"spot_diameter_fullres": 90.0, "tissue_hires_scalef": 0.1}}}},
)
a.write_h5ad(path)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--side", type=int, default=6000)
    parser.add_argument("--blocks", default="16,64,100000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        h5ad = str(Path(tmp) / "image.h5ad")
        made = run_measured([sys.executable, "-c", MAKE, str(args.side), h5ad])
        if made.returncode:
            raise SystemExit(made.stderr)
        mib = args.side * args.side * 3 / 2**20
        print(f"image {args.side} x {args.side} x 3 uint8 = {mib:.0f} MiB")
        print("| run | time | peak RSS |")
        print("| --- | ---: | ---: |")
        for block in [0, *(int(b) for b in args.blocks.split(","))]:
            uri = str(Path(tmp) / f"exp{block}")
            m = run_measured([sys.executable, "-c", WRITE, h5ad, uri, str(block)])
            if m.returncode:
                raise SystemExit(m.stderr)
            name = "baseline: read whole" if block == 0 else f"write_scene, {block} MiB blocks"
            print(f"| {name} | {m.seconds:.1f} s | {m.peak_rss_bytes / 2**20:.0f} MiB |")


if __name__ == "__main__":
    main()
