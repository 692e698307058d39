"""Sync benchmark: ``cellcensus sync`` (verified) vs ``aws s3 sync --no-sign-request``.

Run by hand (not in CI):

    .venv/bin/python benchmarks/bench_sync.py --cells 200000 --workdir /tmp/bench-sync

Builds (or reuses) a census of --cells synthetic cells, starts a local SeaweedFS S3 server on
127.0.0.1 (the tests' server helper), publishes the build to its public bucket, then downloads the
release's soma/ and h5ads/ with each tool into empty directories, several rounds, alternating the
order. Prints MB/s and the ratio cellcensus / aws (target >= 1.0 with verification on).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

from _measure import cached_build, machine, run_measured
from _s3 import local_s3


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=200_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/cellcensus-bench-sync"))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    build = cached_build(args.workdir, args.cells)
    from cellcensus.release import publish

    bindir = Path(sys.executable).parent
    with local_s3(args.workdir) as server:  # a fresh server each run
        pub = server.publisher
        root = "s3://public/cell-census/"
        publish(build, root, tag="2026-01-01", settings=pub)
        total = _size(build / "soma") + _size(build / "h5ads")
        print(f"machine: {machine()}")
        print(f"release: {total / 1e6:.1f} MB in soma/ + h5ads/")
        times: dict[str, list[float]] = {"cellcensus sync": [], "aws s3 sync": []}
        for rnd in range(args.rounds):
            order = list(times) if rnd % 2 == 0 else list(reversed(times))
            for name in order:
                dest = args.workdir / f"dest-{name.split()[0]}"
                shutil.rmtree(dest, ignore_errors=True)
                if name == "cellcensus sync":
                    cmd = [
                        str(bindir / "cellcensus"),
                        "--quiet",
                        "sync",
                        root,
                        "2026-01-01",
                        str(dest),
                        "--endpoint-url",
                        server.endpoint_url,
                        "--no-sign-request",
                    ]
                    m = run_measured(cmd)
                else:
                    m = None
                    for part in ("soma", "h5ads"):
                        cmd = [
                            str(bindir / "aws"),
                            "s3",
                            "sync",
                            "--no-sign-request",
                            "--endpoint-url",
                            server.endpoint_url,
                            "--only-show-errors",
                            f"{root}2026-01-01/{part}/",
                            str(dest / part),
                        ]
                        r = run_measured(cmd)
                        if r.returncode != 0:
                            print(r.stderr[-2000:])
                        m = (
                            r
                            if m is None
                            else type(r)(
                                m.seconds + r.seconds,
                                max(m.peak_rss_bytes, r.peak_rss_bytes),
                                r.returncode,
                                "",
                                "",
                            )
                        )
                assert m is not None
                if m.returncode != 0:
                    print(f"{name} failed: {m.stderr[-2000:]}")
                    continue
                got = _size(dest / "soma") + _size(dest / "h5ads")
                if got != total:
                    print(f"{name}: downloaded {got} bytes, expected {total}")
                times[name].append(m.seconds)
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"{name:16s} median {med:6.2f} s  {total / 1e6 / med:8.1f} MB/s  runs {ts}")
        ratio = statistics.median(times["aws s3 sync"]) / statistics.median(
            times["cellcensus sync"]
        )
        print(f"speed ratio cellcensus / aws s3 sync: {ratio:.2f}x (target >= 1.0, verified)")


if __name__ == "__main__":
    main()
