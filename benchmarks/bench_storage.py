"""Storage benchmark: one large S3 download through boto3 (``cellcensus._storage``) vs s3fs.

Run by hand (not in CI):

    nice -n 10 .venv/bin/python benchmarks/bench_storage.py --mb 200 --rounds 3

Starts a local SeaweedFS S3 server on 127.0.0.1 (the tests' server helper), uploads one object of
--mb random megabytes to its public bucket, then downloads it anonymously, several rounds in
alternating order, with:

- ``cellcensus download``: :func:`cellcensus._storage.download` (boto3's transfer manager for a
  large object from the start, sha256 computed) — the baseline of the ratios;
- ``cellcensus stream``: the same with one ranged-GET stream (the resume path), sha256 while
  writing;
- ``s3fs get``: ``S3FileSystem.get`` (aiobotocore, concurrent ranged GETs) then ``sha256_file``;
- ``s3fs stream``: ``S3FileSystem.open`` read in 8 MiB blocks, sha256 while writing.

Prints the median seconds and MB/s of each, and each one's ratio to the baseline (> 1: faster).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

from _measure import machine
from _s3 import local_s3

if TYPE_CHECKING:
    from collections.abc import Callable

_BLOCK = 8 * 1024 * 1024


def main() -> None:  # noqa: PLR0915 - one linear benchmark script
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cellcensus-bench-storage"))
    args = ap.parse_args()
    import s3fs

    from cellcensus._storage import download, s3_client, sha256_file
    from cellcensus._storage import downloads as storage_downloads

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    src = args.workdir / "object.bin"
    with src.open("wb") as f:
        for _ in range(args.mb):
            f.write(os.urandom(1024 * 1024))
    size = src.stat().st_size
    expected = sha256_file(src)
    with local_s3(args.workdir) as server:
        pub, anon = server.publisher, server.anonymous
        s3_client(pub).upload_file(str(src), "public", "bench/object.bin")
        uri = "s3://public/bench/object.bin"
        fs = s3fs.S3FileSystem(anon=True, client_kwargs={"endpoint_url": server.endpoint_url})

        def ours(dest: Path) -> str:
            return download(uri, dest, settings=anon, size=size).sha256

        def ours_stream(dest: Path) -> str:
            saved = storage_downloads.PARALLEL_THRESHOLD
            storage_downloads.PARALLEL_THRESHOLD = 1 << 62
            try:
                return download(uri, dest, settings=anon, size=size).sha256
            finally:
                storage_downloads.PARALLEL_THRESHOLD = saved

        def s3fs_get(dest: Path) -> str:
            fs.get(uri, str(dest))
            return sha256_file(dest)

        def s3fs_stream(dest: Path) -> str:
            h = hashlib.sha256()
            with fs.open(uri, "rb", block_size=_BLOCK) as fin, dest.open("wb") as fout:
                while chunk := fin.read(_BLOCK):
                    fout.write(chunk)
                    h.update(chunk)
            return h.hexdigest()

        runs: dict[str, Callable[[Path], str]] = {
            "cellcensus download (boto3)": ours,
            "cellcensus stream (boto3)": ours_stream,
            "s3fs get": s3fs_get,
            "s3fs stream": s3fs_stream,
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        print(f"machine: {machine()}")
        print(f"object: {size / 1e6:.1f} MB on SeaweedFS at {server.endpoint_url}")
        for rnd in range(args.rounds):
            order = list(runs) if rnd % 2 == 0 else list(reversed(runs))
            for name in order:
                dest = args.workdir / "dest.bin"
                dest.unlink(missing_ok=True)
                t0 = time.perf_counter()
                digest = runs[name](dest)
                times[name].append(time.perf_counter() - t0)
                assert digest == expected, name
                assert dest.stat().st_size == size, name
        base = statistics.median(times["cellcensus download (boto3)"])
        print(f"{'run':32} {'median s':>9} {'MB/s':>8} {'speed vs baseline':>18}")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"{name:32} {med:9.2f} {size / 1e6 / med:8.1f} {base / med:17.2f}x")
    shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
