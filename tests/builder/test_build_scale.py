"""The builder at scale: bands, Dask (LocalCluster, scheduler + workers), resume, memory."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cellcensus.builder import BuildOptions, build_census
from cellcensus.synth import SynthCorpus, demo_corpus_specs, synth_corpus

from .expected_census import census_tables

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

TAG = "2026-02-02"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> SynthCorpus:
    return synth_corpus(tmp_path_factory.mktemp("scale"), seed=5, specs=demo_corpus_specs(2_000))


@pytest.fixture(scope="module")
def serial_tables(
    corpus: SynthCorpus, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, pa.Table]:
    out = tmp_path_factory.mktemp("serial") / "build"
    build_census(
        corpus.manifest_path,
        out,
        options=BuildOptions(tag=TAG, chunk_nnz=30_000, workers=1, validate=False),
    )
    return census_tables(out)


@pytest.fixture(scope="module")
def bulk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12,000 cells in 3 datasets (8,000 human): enough cells for several 2,048-row bands."""
    from cellcensus.synth import bulk_corpus

    return bulk_corpus(tmp_path_factory.mktemp("bulk"), n_cells=12_000, n_datasets=3)


@pytest.fixture(scope="module")
def bulk_tables(bulk: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    """The bulk corpus built in one band per experiment (one process)."""
    out = tmp_path_factory.mktemp("bulk-one") / "build"
    result = build_census(bulk, out, options=BuildOptions(tag=TAG, validate=False))
    assert result.organisms["homo_sapiens"]["x_fragments"] == 1
    return census_tables(out)


def _assert_same(a: dict[str, pa.Table], b: dict[str, pa.Table]) -> None:
    assert a.keys() == b.keys()
    for key, table in a.items():
        assert table.schema == b[key].schema, key
        assert table.equals(b[key]), key


@pytest.mark.slow  # 99 s CPU measured (2026-12-02)
def test_local_cluster_build_equals_serial_build(
    corpus: SynthCorpus, serial_tables: dict[str, pa.Table], tmp_path: Path
) -> None:
    out = tmp_path / "build"
    build_census(
        corpus.manifest_path,
        out,
        options=BuildOptions(tag=TAG, chunk_nnz=30_000, workers=2, validate=True),
    )
    _assert_same(census_tables(out), serial_tables)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A Dask scheduler and two single-threaded workers, each its own process, on 127.0.0.1."""
    bindir = Path(sys.executable).parent
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    log_files = [(logs / f"{name}.log").open("w") for name in ("scheduler", "worker0", "worker1")]
    procs = [
        subprocess.Popen(
            [
                str(bindir / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            stdout=log_files[0],
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    ]
    for i in range(2):
        procs.append(
            subprocess.Popen(
                [
                    str(bindir / "dask"),
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                    "--name",
                    f"w{i}",
                ],
                stdout=log_files[1 + i],
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        )
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=20)
        for f in log_files:
            f.close()


@pytest.mark.slow  # 95 s CPU measured (2026-12-02)
def test_build_on_a_separate_scheduler_and_workers_equals_serial(
    corpus: SynthCorpus, serial_tables: dict[str, pa.Table], dask_cluster: str, tmp_path: Path
) -> None:
    out = tmp_path / "build"
    build_census(
        corpus.manifest_path,
        out,
        options=BuildOptions(tag=TAG, chunk_nnz=30_000, scheduler=dask_cluster, validate=False),
    )
    _assert_same(census_tables(out), serial_tables)


def _build_cmd(manifest: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cellcensus",
        "--quiet",
        "build",
        str(manifest),
        str(out),
        "--tag",
        TAG,
        "--chunk-nnz",
        "3000",
        "--band-nnz",
        "6000",
        *extra,
    ]


def _kill_after(cmd: list[str], done_dir: Path, pattern: str, n: int) -> set[str]:
    """Run ``cmd``; SIGKILL it once ``n`` markers match; the markers finished before the kill."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if len(list(done_dir.glob(pattern))) >= n:
                break
            if proc.poll() is not None:
                pytest.fail("build ended before it could be killed")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return {p.name for p in done_dir.glob(pattern)}


@pytest.mark.slow  # 54 s CPU measured (2026-12-02)
def test_killed_then_resumed_build_equals_uninterrupted(
    bulk: Path, bulk_tables: dict[str, pa.Table], tmp_path: Path
) -> None:
    """Killed during the band stage (small bands: many tasks), resumed, equal to one band."""
    out = tmp_path / "build"
    staging = tmp_path / ".build.staging"
    cmd = _build_cmd(bulk, out, "--no-validate")
    finished_before = _kill_after(cmd, staging / "_work" / "done", "band.*", 3)
    assert not out.exists()
    assert finished_before
    resumed = subprocess.run(
        [*cmd, "--resume"], capture_output=True, text=True, timeout=600, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert not staging.exists()
    _assert_same(census_tables(out), bulk_tables)


@pytest.mark.slow  # killed build + resumed build
def test_resume_by_a_builder_that_cuts_bands_otherwise_redoes_the_bands(
    bulk: Path,
    bulk_tables: dict[str, pa.Table],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Finished bands are known by index: a build resumed by a cellcensus whose bands are cut
    elsewhere (here: one band per experiment) must not reuse them; it redoes them, rightly."""
    from cellcensus.builder import _plan

    out = tmp_path / "build"
    staging = tmp_path / ".build.staging"
    cmd = _build_cmd(bulk, out, "--no-validate")
    assert _kill_after(cmd, staging / "_work" / "done", "band.*", 3)
    cut = _plan._boundaries
    monkeypatch.setattr(_plan, "_boundaries", lambda plan, cost: cut(plan, 1000 * cost))
    options = BuildOptions(tag=TAG, chunk_nnz=3000, band_nnz=6000, validate=False, resume=True)
    result = build_census(bulk, out, options=options)
    assert result.organisms["homo_sapiens"]["x_fragments"] == 1  # one band now, four before
    _assert_same(census_tables(out), bulk_tables)


@pytest.mark.slow  # 61 s CPU measured (2026-12-02)
def test_resume_redoes_a_source_replaced_after_the_kill(tmp_path: Path) -> None:
    """A source overwritten at the same path between kill and resume is staged and read anew."""
    from cellcensus.synth import bulk_corpus

    manifest = bulk_corpus(tmp_path / "a", n_cells=12_000, n_datasets=3, seed=1)
    other = bulk_corpus(tmp_path / "b", n_cells=12_000, n_datasets=3, seed=2)
    out = tmp_path / "build"
    staging = tmp_path / ".build.staging"
    cmd = _build_cmd(manifest, out, "--no-validate")
    _kill_after(cmd, staging / "_work" / "done", "band.*", 2)
    # replace the first dataset's file with different data (same path, same dataset id)
    first = manifest.parent / "scale-000.h5ad"
    first.write_bytes((other.parent / "scale-000.h5ad").read_bytes())
    resumed = subprocess.run(
        [*cmd[:-1], "--validate", "--resume"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    fresh = tmp_path / "fresh"
    build_census(manifest, fresh, options=BuildOptions(tag=TAG, validate=False))
    _assert_same(census_tables(out), census_tables(fresh))
    doc = json.loads((out / "build.json").read_text())
    sha = {i["dataset_id"]: i["sha256"] for i in doc["inputs"]}
    import hashlib

    assert sha["scale-000"] == hashlib.sha256(first.read_bytes()).hexdigest()


@pytest.mark.parametrize("mode", [(1, 1, 1), (1, 3, 1), (1, 1, 2), (2, 1, 1)])
@pytest.mark.slow  # 18-23 s per worker count: three builds each
def test_many_bands_equal_one_band_table_by_table(
    bulk: Path, bulk_tables: dict[str, pa.Table], tmp_path: Path, mode: tuple[int, int, int]
) -> None:
    """X and obs cut into many bands (fragments) read the same as one band: one band at a time,
    three at once on threads of this process, on 2 worker processes of this machine, or on a
    Dask LocalCluster of 2 workers (``mode``: workers, threads, processes)."""
    workers, threads, processes = mode
    import tiledb

    out = tmp_path / "build"
    result = build_census(
        bulk,
        out,
        options=BuildOptions(
            tag=TAG,
            chunk_nnz=2_000,
            band_nnz=5_000,
            scan_rows=1_500,
            workers=workers,
            threads=threads,
            processes=processes,
            validate=workers == 1,
        ),
    )
    # each 4,000-cell dataset is scanned by a head, three parts and a finish
    timing = json.loads((out / "build.json").read_text())["summary"]["timing"]
    tasks = timing["tasks"]
    assert tasks["scan"]["count"] == 3 * 5
    assert timing["band_threads"] == (threads if workers == 1 else 1)
    assert timing["band_processes"] == processes
    bands = result.organisms["homo_sapiens"]["x_fragments"]
    assert bands >= 3
    exp = out / "soma" / "census_data" / "homo_sapiens"
    for array in (exp / "ms" / "RNA" / "X" / "raw", exp / "ms" / "RNA" / "X" / "normalized"):
        assert len(tiledb.array_fragments(str(array))) == bands
    assert len(tiledb.array_fragments(str(exp / "obs"))) == bands
    _assert_same(census_tables(out), bulk_tables)


@pytest.mark.slow  # a build killed by its worker's death, then resumed
def test_a_dead_band_worker_process_stops_the_build_and_resume_finishes_it(
    bulk: Path, bulk_tables: dict[str, pa.Table], tmp_path: Path
) -> None:
    """A worker process killed mid-stage (as the kernel's OOM killer would) fails the build with
    a clear message, losing nothing: the build resumes to the same tables."""
    import psutil

    out = tmp_path / "build"
    done = tmp_path / ".build.staging" / "_work" / "done"
    cmd = _build_cmd(bulk, out, "--no-validate", "--processes", "2")
    log = tmp_path / "build.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
    killed = None
    try:
        deadline = time.monotonic() + 300
        # once the first band is done (others remain: six bands here), kill a worker: a child
        # of the fork server (the driver's child), forked from it (same command line)
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            if any(done.glob("band.*")):
                with contextlib.suppress(psutil.NoSuchProcess):
                    for server in psutil.Process(proc.pid).children():
                        if "multiprocessing.forkserver" not in " ".join(server.cmdline()):
                            continue
                        for p in server.children():
                            if p.cmdline() == server.cmdline():
                                p.kill()
                                killed = p.pid
                                break
            time.sleep(0.002)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    err = log.read_text()
    assert killed is not None, f"no worker was killed before the build ended:\n{err[-2000:]}"
    assert proc.returncode != 0, f"the build succeeded without worker {killed}:\n{err[-2000:]}"
    assert "worker process died" in err, err[-2000:]
    assert not out.exists()
    assert any(done.glob("band.*"))  # the finished bands are kept for --resume
    resumed = subprocess.run(
        [*cmd, "--resume"], capture_output=True, text=True, timeout=600, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    _assert_same(census_tables(out), bulk_tables)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (BuildOptions(tag=TAG, processes=0), "processes must be at least 1"),
        (BuildOptions(tag=TAG, processes=2, threads=2), "not both"),
        (BuildOptions(tag=TAG, processes=2, workers=2), "workers 1, no scheduler"),
    ],
)
def test_band_process_options_are_checked(
    corpus: SynthCorpus, tmp_path: Path, options: BuildOptions, match: str
) -> None:
    from cellcensus.errors import BadInputError

    with pytest.raises(BadInputError, match=match):
        build_census(corpus.manifest_path, tmp_path / "out", options=options)


def test_resume_refuses_changed_settings(corpus: SynthCorpus, tmp_path: Path) -> None:
    out = tmp_path / "build"
    staging = tmp_path / ".build.staging"
    (staging / "_work").mkdir(parents=True)
    (staging / "_work" / "state.json").write_text(
        json.dumps({"format_version": 2, "fingerprint": "x"})
    )
    from cellcensus.errors import BadInputError

    with pytest.raises(BadInputError, match="cannot resume"):
        build_census(corpus.manifest_path, out, options=BuildOptions(tag=TAG, resume=True))


def _peak_tree_rss(cmd: list[str]) -> int:
    """Run ``cmd``; the peak of the summed RSS of its process tree (sampled every 50 ms)."""
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        total = 0
        try:
            for p in (parent, *parent.children(recursive=True)):
                total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
        peak = max(peak, total)
        time.sleep(0.05)
    _, err = proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    return peak


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.slow
def test_peak_memory_does_not_grow_with_census_or_dataset_size(
    tmp_path: Path, processes: int
) -> None:
    """Fixed chunk settings: 4x more cells per dataset, or 4x more datasets, same peak RSS, with
    the bands in the driver or on 2 worker processes (the tree: driver, fork server, workers).

    The old builder grew by ~0.4 KB per census cell and ~1 KB per cell of the largest dataset:
    +120 MB over the 300 k extra cells here, far above the 10 % allowed.
    """
    from cellcensus.synth import bulk_corpus

    runs = {
        "1 x 100k": (100_000, 1),
        "1 x 400k": (400_000, 1),
        "4 x 25k": (100_000, 4),
        "16 x 25k": (400_000, 16),
    }
    peaks = {}
    for name, (cells, datasets) in runs.items():
        manifest = bulk_corpus(tmp_path, n_cells=cells, n_datasets=datasets, values_per_cell=20)
        out = tmp_path / f"build-{cells}-{datasets}"
        cmd = [
            sys.executable, "-m", "cellcensus", "--quiet", "build", str(manifest), str(out),
            "--tag", TAG, "--chunk-nnz", "500000", "--processes", str(processes),
        ]  # fmt: skip
        peaks[name] = _peak_tree_rss(cmd)
    assert peaks["1 x 400k"] <= peaks["1 x 100k"] * 1.10, peaks
    assert peaks["16 x 25k"] <= peaks["4 x 25k"] * 1.10, peaks
