"""cellcensus build vs the official CZI Census builder, side by side on one manifest.

Run by hand (not in CI); needs the official builder in its own Python 3.11 environment
(see docs/official-builder.md, "Repeating it", step 2):

    .venv/bin/python benchmarks/bench_official.py \
        --official-python /work/official/venv/bin/python \
        --official-checkout /work/official/cellxgene-census \
        --workdir /work/official/bench --cells 60000 --seed 1 --rounds 2

Synthesizes `cellcensus synth corpus --cells N --seed S` (reused if present), then runs, each in a
fresh process wrapped in `/usr/bin/time -v`, alternating so that load drifts hit both sides:

    ours, official, ours[, official, ours ...]          (--rounds official runs)

ours is `cellcensus build MANIFEST DIR --tag 2026-11-01` (default settings: band tasks on 2 worker
processes when the sources hold at least 64 MiB — the 200 k-cell corpus holds 166 MB —, one band
thread, gene-major copies on, validation on; `--processes N` passes a number); official is its
development entry point as docs/official-builder.md step 4 gives it (`--max_worker_processes 2`,
validate and consolidate). Each run records wall time, the peak RSS of its largest process
(`/usr/bin/time -v`, which covers every waited-for descendant) and of the whole process tree
(summed, sampled every 0.2 s), and the 1-minute load average just before it. It prints the ratio
official/ours for every adjacent pair and their median, then checks the first builds of each side
with `cellcensus compare` (exit 0 = equal).

If the official environment or checkout is absent, it says so and exits 0.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from _measure import gib, machine, run_measured

TAG = "2026-11-01"


@dataclass
class Run:
    label: str
    side: str  # "ours" | "official"
    seconds: float
    # bytes: /usr/bin/time -v's, or a larger VmHWM of a process it does not wait for
    max_process_rss: int
    tree_rss: int  # bytes, summed over the process tree, sampled
    # user + system time of the process tree: /usr/bin/time -v's (the processes it waits for),
    # or the sampled sum over every process of the tree when larger (workers forked by a fork
    # server: nobody waits for them; each one's last 0.2 s is missed)
    cpu_seconds: float
    load: float  # 1-minute load average before the run
    returncode: int


def _time_v_rss(stderr: str) -> int:
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return int(m.group(1)) * 1024 if m else 0


def _time_v_cpu(stderr: str) -> float:
    user = re.search(r"User time \(seconds\): ([\d.]+)", stderr)
    system = re.search(r"System time \(seconds\): ([\d.]+)", stderr)
    return sum(float(m.group(1)) for m in (user, system) if m)


def _cellcensus() -> list[str]:
    return [sys.executable, "-m", "cellcensus"]


def _corpus(workdir: Path, cells: int, seed: int) -> Path:
    manifest = workdir / "corpus" / "manifest.csv"
    if not manifest.exists():
        shutil.rmtree(workdir / "corpus", ignore_errors=True)
        subprocess.run(
            [*_cellcensus(), "synth", "corpus", "--cells", str(cells), "--seed", str(seed)],
            cwd=workdir,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return manifest


def _measure(label: str, side: str, cmd: list[str], env: dict[str, str] | None) -> Run:
    load = os.getloadavg()[0]
    print(f"{label}: load {load:.2f}, running ...", flush=True)
    m = run_measured(["/usr/bin/time", "-v", *cmd], interval=0.2, env=env)
    run = Run(
        label,
        side,
        m.seconds,
        max(_time_v_rss(m.stderr), m.max_process_rss),
        m.peak_rss_bytes,
        max(_time_v_cpu(m.stderr), m.cpu_seconds_sampled),
        load,
        m.returncode,
    )
    print(
        f"{label}: {run.seconds:.1f} s ({run.cpu_seconds:.1f} s CPU), "
        f"largest process {gib(run.max_process_rss)}, process tree {gib(run.tree_rss)}, "
        f"exit {run.returncode}",
        flush=True,
    )
    if m.returncode != 0:
        print(m.stderr[-3000:], file=sys.stderr)
    return run


def _report(runs: list[Run]) -> None:
    """Print the runs as a markdown table and the ratio official/ours of adjacent pairs."""
    print(
        "\n| run | time | CPU time | peak RSS, largest process | peak RSS, process tree "
        "| load before |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        ok = "" if r.returncode == 0 else f" (exit {r.returncode})"
        print(
            f"| {r.label}{ok} | {r.seconds:.1f} s | {r.cpu_seconds:.1f} s | "
            f"{gib(r.max_process_rss)} | {gib(r.tree_rss)} | {r.load:.2f} |"
        )
    ratios, cpu_ratios = [], []
    for a, b in itertools.pairwise(runs):
        if a.returncode or b.returncode:
            continue
        o, f = (a, b) if a.side == "ours" else (b, a)
        ratios.append(f.seconds / o.seconds)
        cpu_ratios.append(f.cpu_seconds / o.cpu_seconds)
        print(f"{f.label} / {o.label}: time {ratios[-1]:.2f}x, CPU time {cpu_ratios[-1]:.2f}x")
    if ratios:
        print(
            f"median ratio official/ours: time {statistics.median(ratios):.2f}x, "
            f"CPU time {statistics.median(cpu_ratios):.2f}x"
        )


def _compare(runs: list[Run], workdir: Path) -> int:
    """`cellcensus compare` the first successful build of each side; its exit code."""
    ok_ours = next((r for r in runs if r.side == "ours" and r.returncode == 0), None)
    ok_off = next((r for r in runs if r.side == "official" and r.returncode == 0), None)
    if ok_ours is None or ok_off is None:
        print("no pair of successful builds to compare")
        return 1
    a = workdir / ok_ours.label
    b = workdir / ok_off.label / TAG
    code = subprocess.run([*_cellcensus(), "compare", str(a), str(b)], check=False).returncode
    verdict = "equal" if code == 0 else "DIFFERENT"
    print(f"cellcensus compare {a} {b}: exit {code} ({verdict})")
    return code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official-python", type=Path, required=True)
    ap.add_argument("--official-checkout", type=Path, required=True)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/bench-official"))
    ap.add_argument("--cells", type=int, default=60000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1, help="official runs (ours runs: rounds + 1)")
    ap.add_argument("--official-workers", type=int, default=2)
    ap.add_argument(
        "--threads", type=int, default=1, help="cellcensus build --threads (1: the default build)"
    )
    ap.add_argument(
        "--processes", type=int, default=None, help="cellcensus build --processes (default: none)"
    )
    args = ap.parse_args()

    builder = args.official_checkout / "tools" / "cellxgene_census_builder"
    if not args.official_python.exists() or not (builder / "dataset_blocklist.txt").exists():
        print(
            f"skipped: the official builder is not installed ({args.official_python} / {builder} "
            "missing); see docs/official-builder.md, 'Repeating it', step 2"
        )
        return 0
    commit = subprocess.run(
        ["git", "-C", str(args.official_checkout), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    args.workdir.mkdir(parents=True, exist_ok=True)
    manifest = _corpus(args.workdir, args.cells, args.seed).resolve()
    print(f"machine: {machine()}")
    print(
        f"official builder commit {commit}; corpus {manifest}; ours --threads {args.threads} "
        f"--processes {args.processes or 'default'}"
    )

    env = {**os.environ, "COMMIT_SHA": commit}
    runs: list[Run] = []
    n_ours = n_official = 0

    def ours() -> None:
        nonlocal n_ours
        n_ours += 1
        out = args.workdir / f"ours-{n_ours}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [*_cellcensus(), "build", str(manifest), str(out), "--tag", TAG]
        cmd += ["--threads", str(args.threads)]
        if args.processes is not None:
            cmd += ["--processes", str(args.processes)]
        runs.append(_measure(f"ours-{n_ours}", "ours", cmd, None))

    def official() -> None:
        nonlocal n_official
        n_official += 1
        out = args.workdir / f"official-{n_official}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        cmd = [
            str(args.official_python), "-m", "cellxgene_census_builder.build_soma", str(out),
            "--build-tag", TAG, "--max_worker_processes", str(args.official_workers),
            "build", "--manifest", str(manifest),
            "--dataset_id_blocklist_uri", str(builder / "dataset_blocklist.txt"),
            "--no-dashboard", "--validate", "--consolidate",
        ]  # fmt: skip
        runs.append(_measure(f"official-{n_official}", "official", cmd, env))

    ours()
    for _ in range(args.rounds):
        official()
        ours()

    _report(runs)
    return _compare(runs, args.workdir)


if __name__ == "__main__":
    sys.exit(main())
