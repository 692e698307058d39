"""Shared helpers of the benchmarks: run a command and sample its process tree's memory."""

from __future__ import annotations

import contextlib
import platform
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from pathlib import Path


@dataclass
class Measurement:
    seconds: float
    peak_rss_bytes: int  # max over time of the summed RSS of the process and its children
    returncode: int
    stdout: str
    stderr: str


def run_measured(
    cmd: list[str], *, interval: float = 0.1, timeout: float | None = None
) -> Measurement:
    """Run ``cmd``; sample the RSS of its whole process tree every ``interval`` seconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
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
                    total += p.memory_info().rss
            peak = max(peak, total)
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate(timeout=timeout)
    seconds = time.perf_counter() - t0
    stop.set()
    thread.join()
    return Measurement(seconds, peak, proc.returncode, out, err)


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
