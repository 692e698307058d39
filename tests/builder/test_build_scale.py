"""The builder on Dask (LocalCluster, scheduler + workers as processes), resumed; its memory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from expected_census import census_tables

from cellcensus.builder import BuildOptions, build_census
from cellcensus.synth import DatasetSpec, SynthCorpus, demo_corpus_specs, synth_corpus

if TYPE_CHECKING:
    from collections.abc import Iterator

TAG = "2026-02-02"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> SynthCorpus:
    return synth_corpus(tmp_path_factory.mktemp("scale"), seed=5, specs=demo_corpus_specs(2_000))


@pytest.fixture(scope="module")
def serial_tables(corpus: SynthCorpus, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("serial") / "build"
    build_census(
        corpus.manifest_path,
        out,
        options=BuildOptions(tag=TAG, chunk_nnz=30_000, workers=1, validate=False),
    )
    return census_tables(out)


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, table in a.items():
        assert table.schema == b[key].schema, key
        assert table.equals(b[key]), key


def test_local_cluster_build_equals_serial_build(corpus, serial_tables, tmp_path: Path) -> None:
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
            stdout=(logs / "scheduler.log").open("w"),
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
                stdout=(logs / f"worker{i}.log").open("w"),
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        )
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
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


def test_build_on_a_separate_scheduler_and_workers_equals_serial(
    corpus, serial_tables, dask_cluster: str, tmp_path: Path
) -> None:
    out = tmp_path / "build"
    build_census(
        corpus.manifest_path,
        out,
        options=BuildOptions(tag=TAG, chunk_nnz=30_000, scheduler=dask_cluster, validate=False),
    )
    _assert_same(census_tables(out), serial_tables)


def test_killed_then_resumed_build_equals_uninterrupted(
    corpus, serial_tables, tmp_path: Path
) -> None:
    """Killed during the X stage (small chunks: many tasks), resumed, equal to a serial build."""
    out = tmp_path / "build"
    staging = tmp_path / ".build.staging"
    cmd = [
        sys.executable,
        "-m",
        "cellcensus",
        "--quiet",
        "build",
        str(corpus.manifest_path),
        str(out),
        "--tag",
        TAG,
        "--chunk-nnz",
        "3000",
        "--no-validate",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            done = list((staging / "_work" / "done").glob("x.*"))
            if len(done) >= 3:
                break
            if proc.poll() is not None:
                pytest.fail("build ended before it could be killed")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    finished_before = {p.name for p in (staging / "_work" / "done").glob("x.*")}
    assert finished_before
    resumed = subprocess.run(
        [*cmd, "--resume"], capture_output=True, text=True, timeout=600, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert not staging.exists()
    _assert_same(census_tables(out), serial_tables)


def test_resume_refuses_changed_settings(corpus, tmp_path: Path) -> None:
    out = tmp_path / "build"
    staging = tmp_path / ".build.staging"
    (staging / "_work").mkdir(parents=True)
    (staging / "_work" / "state.json").write_text(
        json.dumps({"format_version": 1, "fingerprint": "x"})
    )
    from cellcensus.errors import BadInputError

    with pytest.raises(BadInputError, match="cannot resume"):
        build_census(corpus.manifest_path, out, options=BuildOptions(tag=TAG, resume=True))


_RSS_SCRIPT = """
import json, resource, sys
from cellcensus.builder import BuildOptions, build_census
build_census(sys.argv[1], sys.argv[2], options=BuildOptions(
    tag="2026-03-03", chunk_nnz=int(sys.argv[3]), validate=False))
print(json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_dataset_size(tmp_path: Path) -> None:
    """Building a dataset 2x and 4x larger keeps peak RSS within 10 % (chunk size fixed)."""
    peaks = {}
    for factor in (1, 2, 4):
        spec = DatasetSpec(
            dataset_id=f"big{factor}",
            organism_ontology_term_id="NCBITaxon:9606",
            n_cells=25_000 * factor,
            n_genes=2_000,
        )
        corpus = synth_corpus(tmp_path / f"c{factor}", seed=1, specs=[spec], chunk_size=5_000)
        res = subprocess.run(
            [
                sys.executable,
                "-c",
                _RSS_SCRIPT,
                str(corpus.manifest_path),
                str(tmp_path / f"b{factor}"),
                "1000000",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            env={**os.environ},
        )
        assert res.returncode == 0, res.stderr
        peaks[factor] = json.loads(res.stdout.strip().splitlines()[-1])["maxrss_kib"]
    assert peaks[2] <= peaks[1] * 1.10, peaks
    assert peaks[4] <= peaks[1] * 1.10, peaks
