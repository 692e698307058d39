"""Shared helpers of the benchmarks: run a command and sample its process tree's memory."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class Measurement:
    seconds: float
    peak_rss_bytes: int  # max over time of the summed RSS of the process and its children
    returncode: int
    stdout: str
    stderr: str
    process_peaks: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid: (name, peak)
    # (a process's peak is its exact VmHWM as last read, or the largest sampled RSS)
    peak_disk_bytes: int = 0  # max over time of the bytes under ``watch`` (if given)
    # user + system seconds of every process of the tree as last sampled (a process's last
    # interval before it ends is missed; counts processes nobody waits for, which
    # /usr/bin/time -v does not: workers forked by a multiprocessing fork server)
    cpu_seconds_sampled: float = 0.0

    @property
    def max_process_rss(self) -> int:
        """The largest peak RSS of any one process of the tree."""
        return max((peak for _, peak in self.process_peaks.values()), default=0)


def _high_water_mark(pid: int) -> int:
    """A process's peak RSS so far (Linux ``VmHWM``), 0 where unknown."""
    try:
        with Path(f"/proc/{pid}/status").open() as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _tree_bytes(path: Path) -> int:
    total = 0
    stack = [path]
    while stack:
        d = stack.pop()
        with contextlib.suppress(OSError), os.scandir(d) as it:
            for e in it:
                with contextlib.suppress(OSError):
                    if e.is_dir(follow_symlinks=False):
                        stack.append(Path(e.path))
                    else:
                        total += e.stat(follow_symlinks=False).st_blocks * 512
    return total


def run_measured(
    cmd: list[str],
    *,
    interval: float = 0.1,
    timeout: float | None = None,
    watch: list[Path] | None = None,
    env: dict[str, str] | None = None,
) -> Measurement:
    """Run ``cmd``; sample the RSS of its whole process tree every ``interval`` seconds.

    Each process's own peak is kept too; ``watch`` directories are sized every ~2 s.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    peaks: dict[int, tuple[str, int]] = {}
    disk = 0
    cpu: dict[int, float] = {}
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            parent = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            total = 0
            try:
                procs = [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss = p.memory_info().rss
                    total += rss
                    times = p.cpu_times()
                    cpu[p.pid] = times.user + times.system
                    # the kernel's exact high-water mark catches peaks between two samples
                    high = max(rss, _high_water_mark(p.pid))
                    name, before = peaks.get(p.pid, ("", 0))
                    if high > before:
                        label = name or " ".join(p.cmdline()[:3])[-60:]
                        peaks[p.pid] = (label, high)
            peak = max(peak, total)
            stop.wait(interval)

    def sample_disk() -> None:
        nonlocal disk
        while watch and not stop.is_set():
            disk = max(disk, sum(_tree_bytes(w) for w in watch))
            stop.wait(2.0)

    threads = [
        threading.Thread(target=sample, daemon=True),
        threading.Thread(target=sample_disk, daemon=True),
    ]
    for t in threads:
        t.start()
    out, err = proc.communicate(timeout=timeout)
    seconds = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join()
    return Measurement(seconds, peak, proc.returncode, out, err, peaks, disk, sum(cpu.values()))


def machine() -> str:
    """A one-line description of this machine."""
    mem = psutil.virtual_memory().total / 1024**3
    return (
        f"{platform.machine()}, {psutil.cpu_count(logical=True)} cores, {mem:.0f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB"


def cached_build(workdir: Path, cells: int) -> Path:
    """A census of the demo corpus at ``cells`` cells under ``workdir`` (built once)."""
    from cellcensus.builder import BuildOptions, build_census
    from cellcensus.synth import synth_corpus

    build = workdir / f"build-{cells}"
    if not (build / "build.json").exists():
        shutil.rmtree(build, ignore_errors=True)
        corpus = synth_corpus(workdir / f"corpus-{cells}", seed=0, n_cells=cells)
        build_census(
            corpus.manifest_path, build, options=BuildOptions(tag="2026-01-01", validate=False)
        )
    return build
