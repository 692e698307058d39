"""Embedding benchmark: attach 1 M x 50 to a release, then ``find_nearest_obs`` for 100 queries.

Run by hand (not in CI), under ``nice`` on a shared machine:

    nice -n 10 .venv/bin/python benchmarks/bench_embeddings.py --cells 1000000 --dims 50

Steps, each timed:
  1. a release with --cells human cells published to a local root. By default a census
     *skeleton*: the collection layout and an ``obs`` with ``soma_joinid``, ``dataset_id`` and
     ``observation_joinid`` for every cell (all that attaching reads), no X. ``--build DIR``
     publishes a real build instead.
  2. vectors: a mixture of --clusters Gaussian clusters (embeddings of cells are clustered), saved
     as ``.npy`` (the input of ``cellcensus embeddings add``);
  3. attach without an index, then attach (under another name) with the IVFFlat index;
  4. 100 queries (stored vectors plus noise): ``find_nearest_obs(k=10)`` at the default
     ``nprobe`` (100) and a few others, against exact search (numpy, the baseline) over the same
     vectors: time per batch and recall@10.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path

import numpy as np
from _measure import machine

TAG = "2026-01-01"


def skeleton_build(out: Path, cells: int, datasets: int = 20) -> Path:
    """A census-shaped build directory with ``cells`` human cells in ``obs`` and no X."""
    import pyarrow as pa
    import tiledbsoma as soma

    if (out / "build.json").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    (out / "h5ads").mkdir(parents=True)
    root = (out / "soma").as_posix()
    soma.Collection.create(root).close()
    data = f"{root}/census_data"
    soma.Collection.create(data).close()
    exp_uri = f"{data}/homo_sapiens"
    soma.Experiment.create(exp_uri).close()
    ds = np.arange(cells) % datasets
    cat = pa.dictionary(pa.int8(), pa.large_string())
    schema = pa.schema(
        [
            ("soma_joinid", pa.int64()),
            ("dataset_id", cat),
            ("observation_joinid", pa.large_string()),
        ]
    )
    with soma.DataFrame.create(
        f"{exp_uri}/obs", schema=schema, index_column_names=["soma_joinid"], domain=[(0, cells - 1)]
    ) as obs:
        step = 250_000
        for start in range(0, cells, step):
            stop = min(cells, start + step)
            obs.write(
                pa.table(
                    {
                        "soma_joinid": pa.array(np.arange(start, stop), pa.int64()),
                        "dataset_id": pa.array([f"dataset-{d:02d}" for d in ds[start:stop]]).cast(
                            cat
                        ),
                        "observation_joinid": pa.array(
                            [f"c{j:09d}" for j in range(start, stop)], pa.large_string()
                        ),
                    },
                    schema=schema,
                )
            )
    ms = f"{exp_uri}/ms"
    soma.Collection.create(ms).close()
    soma.Measurement.create(f"{ms}/RNA").close()
    with soma.Measurement.open(f"{ms}/RNA", "w") as m, soma.Collection.open(ms, "w") as c:
        c.set("RNA", m, use_relative_uri=True)
    with soma.Experiment.open(exp_uri, "w") as e:
        e.set("obs", soma.DataFrame.open(f"{exp_uri}/obs"), use_relative_uri=True)
        e.set("ms", soma.Collection.open(ms), use_relative_uri=True)
    with soma.Collection.open(data, "w") as c:
        c.set("homo_sapiens", soma.Experiment.open(exp_uri), use_relative_uri=True)
    with soma.Collection.open(root, "w") as c:
        c.set("census_data", soma.Collection.open(data), use_relative_uri=True)
    (out / "build.json").write_text(
        json.dumps({"format_version": 1, "tag": TAG, "note": "skeleton"})
    )
    return out


def clustered(n: int, dims: int, clusters: int, centre_scale: float, seed: int = 0) -> np.ndarray:
    """Cluster centres ~ N(0, centre_scale^2), cells = centre + N(0, 1) per component."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=centre_scale, size=(clusters, dims)).astype(np.float32)
    which = rng.integers(0, clusters, n)
    out = centres[which]
    out += rng.normal(size=(n, dims)).astype(np.float32)
    return out


def exact_knn(vectors: np.ndarray, queries: np.ndarray, k: int, block: int = 100_000) -> np.ndarray:
    """Exact k nearest rows (squared L2) of each query, by blocks."""
    q2 = (queries**2).sum(axis=1)[:, None]
    best_d = np.full((len(queries), k), np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), block):
        v = vectors[start : start + block]
        d = q2 - 2 * queries @ v.T + (v**2).sum(axis=1)[None, :]
        part = np.argpartition(d, k, axis=1)[:, :k]
        cand_d = np.concatenate([best_d, np.take_along_axis(d, part, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, part + start], axis=1)
        order = np.argsort(cand_d, axis=1)[:, :k]
        best_d = np.take_along_axis(cand_d, order, axis=1)
        best_i = np.take_along_axis(cand_i, order, axis=1)
    return best_i


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth, strict=True)]))


def main() -> None:  # noqa: PLR0915 - a linear script
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=50)
    ap.add_argument("--clusters", type=int, default=300)
    ap.add_argument(
        "--centre-scale",
        type=float,
        default=4.0,
        help="spread of the cluster centres relative to the within-cluster noise (1.0: clusters "
        "overlap, a harder search)",
    )
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument(
        "--query-noise",
        type=float,
        default=0.5,
        help="queries are stored vectors plus N(0, q^2) noise; 1.41 makes a query like a new cell "
        "of the same cluster",
    )
    ap.add_argument("--skip-plain", action="store_true", help="skip the attach without index")
    ap.add_argument("--only-plain", action="store_true", help="stop after the attach without index")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[10, 30, 100, 300])
    ap.add_argument("--build", type=Path, default=None, help="publish this real build instead")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cellcensus-bench-embeddings"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    import anndata as ad
    import pandas as pd
    import tiledb.vector_search  # noqa: F401 - imported before timing, as in a running client
    import tiledbsoma  # noqa: F401

    from cellcensus import experimental
    from cellcensus.embeddings import add_embedding
    from cellcensus.release import publish

    print(machine())
    t0 = time.perf_counter()
    build = args.build or skeleton_build(args.workdir / f"skeleton-{args.cells}", args.cells)
    root = args.workdir / "root"
    shutil.rmtree(root, ignore_errors=True)
    publish(build, root, tag=TAG)
    kind = "real build" if args.build else "skeleton"
    print(f"release ready ({kind}): {time.perf_counter() - t0:.1f} s")

    vectors = clustered(args.cells, args.dims, args.clusters, args.centre_scale)
    src = args.workdir / "vectors.npy"
    np.save(src, vectors)
    print(
        f"vectors: {vectors.shape} float32, {src.stat().st_size / 1e6:.0f} MB; "
        f"{args.clusters} clusters, centre scale {args.centre_scale}"
    )

    attach_s = float("nan")
    if not args.skip_plain:
        t = time.perf_counter()
        plain = add_embedding(root, TAG, src, name="plain", organism="homo_sapiens")
        attach_s = time.perf_counter() - t
        print(f"attach, no index: {attach_s:.1f} s ({plain.total_bytes / 1e6:.0f} MB stored)")
        if args.only_plain:
            return
    t = time.perf_counter()
    indexed = add_embedding(root, TAG, src, name="scvi", organism="homo_sapiens", index=True)
    attach_ix = time.perf_counter() - t
    print(
        f"attach with IVFFlat index: {attach_ix:.1f} s (index {indexed.seconds_index:.1f} s; "
        f"{indexed.total_bytes / 1e6:.0f} MB stored)"
    )

    rng = np.random.default_rng(1)
    picks = rng.choice(args.cells, args.queries, replace=False)
    queries = vectors[picks] + rng.normal(
        scale=args.query_noise, size=(args.queries, args.dims)
    ).astype(np.float32)
    t = time.perf_counter()
    truth = exact_knn(vectors, queries, 10)
    exact_s = time.perf_counter() - t
    print(f"exact search (numpy, baseline): {exact_s:.2f} s for {args.queries} queries")

    query = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in picks]))
    query.obsm["scvi"] = queries
    md = experimental.get_embedding_metadata_by_name("scvi", "homo_sapiens", TAG, release_root=root)
    rows = []
    for nprobe in args.nprobe:
        # first call opens the index (loads centroids); time it apart from a warm repeat
        t = time.perf_counter()
        nn = experimental.find_nearest_obs(
            "scvi",
            "homo_sapiens",
            TAG,
            query,
            k=10,
            nprobe=nprobe,
            embedding_metadata=md,
            release_root=root,
        )
        cold = time.perf_counter() - t
        t = time.perf_counter()
        experimental.find_nearest_obs(
            "scvi",
            "homo_sapiens",
            TAG,
            query,
            k=10,
            nprobe=nprobe,
            embedding_metadata=md,
            release_root=root,
        )
        warm = time.perf_counter() - t
        r = recall(nn.neighbor_ids.astype(np.int64), truth)
        rows.append((nprobe, cold, warm, r))
        print(
            f"find_nearest_obs nprobe={nprobe}: {cold:.2f} s (repeat {warm:.2f} s), recall {r:.3f}"
        )
    print()
    print("| step | time |\n| --- | ---: |")
    print(f"| attach {args.cells:,} x {args.dims}, no index | {attach_s:.1f} s |")
    ix = f"{attach_ix:.1f} s (index {indexed.seconds_index:.1f} s)"
    print(f"| attach {args.cells:,} x {args.dims}, with IVFFlat index | {ix} |")
    print(f"| exact search, {args.queries} queries (numpy) | {exact_s:.2f} s |")
    print()
    print("| nprobe | find_nearest_obs, 100 queries | repeat | vs exact | recall@10 |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for nprobe, cold, warm, r in rows:
        print(
            f"| {nprobe} | {cold:.2f} s | {warm:.2f} s | {exact_s / warm:.1f}x faster | {r:.3f} |"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"\npeak RSS of the process: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
