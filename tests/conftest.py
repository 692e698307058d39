"""Shared fixtures of every test package, each defined once here.

- ``isolated_aws_env`` (autouse): no test sees the machine's AWS or CELLCENSUS settings;
- ``s3_server``: the one SeaweedFS S3 server of the session, and ``s3`` / ``*_settings`` /
  ``unique_prefix`` to use it;
- ``small_corpus`` / ``small_build`` / ``census_build``: a synthetic corpus and the census the
  builder makes of it; ``tiny_build``: a Census-shaped build written directly (seconds), which
  ``tests/release`` and ``tests/reliability`` use as their ``census_build``.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import pytest

from cellcensus.builder import BuildOptions, BuildResult, build_census
from cellcensus.synth import SynthCorpus, demo_corpus_specs, synth_corpus
from tests._s3server import S3Env, S3Server, WeedNotFoundError, make_settings
from tests._tinybuild import write_tiny_build

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from cellcensus.settings import Settings

#: Cells of the shared test corpus: large enough for every demo dataset kind, small enough to
#: build in seconds.
SMALL_CORPUS_CELLS = 4_000
BUILD_TAG = "2026-11-01"


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> SynthCorpus:
    """The demo corpus composition (human, mouse, rat, excluded assays, raw.X, Smart-seq2,
    duplicates, spike-ins) at 4,000 cells, written once per session."""
    root = tmp_path_factory.mktemp("corpus")
    return synth_corpus(root, seed=7, specs=demo_corpus_specs(SMALL_CORPUS_CELLS), chunk_size=700)


@pytest.fixture(scope="session")
def small_build(small_corpus: SynthCorpus, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """A validated census built from ``small_corpus`` with a small chunk size (many X tasks)
    and gene-major copies of both X layers (the default copies ``raw`` only)."""
    out = tmp_path_factory.mktemp("build") / BUILD_TAG
    return build_census(
        small_corpus.manifest_path,
        out,
        options=BuildOptions(
            tag=BUILD_TAG,
            chunk_nnz=50_000,
            validation_sample_cells=64,
            gene_major_layers=("normalized", "raw"),
        ),
    )


@pytest.fixture(scope="session")
def census_build(small_build: BuildResult) -> Path:
    """Path of a finished build directory (``soma/``, ``h5ads/``, ``build.json``)."""
    return small_build.out_dir


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Census-shaped build directory (``soma/``, ``h5ads/``, ``build.json``) written
    directly with tiledbsoma (see ``tests/_tinybuild.py``)."""
    return write_tiny_build(tmp_path_factory.mktemp("tinybuild") / "build")


@pytest.fixture
def build_copy(census_build: Path, tmp_path: Path) -> Path:
    """A private copy of ``census_build`` (the package's) that a test may modify."""
    dest = tmp_path / "build-copy"
    shutil.copytree(census_build, dest)
    return dest


# ---------------------------------------------------------------------------- environment
@pytest.fixture(autouse=True)
def isolated_aws_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every test runs without the machine's AWS/CELLCENSUS settings or credentials (no
    ``~/.aws`` files, no instance-metadata look-ups); a test sets what it needs."""
    for key in list(os.environ):
        if key.startswith(("AWS_", "CELLCENSUS_")):
            monkeypatch.delenv(key)
    empty = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# ---------------------------------------------------------------------------- S3 server
@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """The SeaweedFS S3 server of the session, on a free 127.0.0.1 port (one for all packages).

    Buckets ``public`` (anonymous Read/List) and ``private``; identities ``reader`` (Read, List)
    and ``publisher`` (Admin, Read, List, Tagging, Write). Stopped with SIGTERM at the end.
    A missing ``weed`` binary fails the tests (it is a test dependency), it does not skip them.
    """
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
    except WeedNotFoundError as e:
        pytest.fail(str(e), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def anon_settings(s3_server: S3Server) -> Settings:
    """Unsigned requests against the test server."""
    return make_settings(s3_server, "anonymous")


@pytest.fixture
def reader_settings(s3_server: S3Server) -> Settings:
    """The read-only identity."""
    return make_settings(s3_server, "reader")


@pytest.fixture
def publisher_settings(s3_server: S3Server) -> Settings:
    """The identity allowed to write."""
    return make_settings(s3_server, "publisher")


@pytest.fixture
def unique_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix unique to the test (the server is shared by the session)."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
    return f"t-{name[:60]}-{os.urandom(3).hex()}"


@pytest.fixture
def s3(s3_server: S3Server, unique_prefix: str) -> S3Env:
    """Everything an S3 test needs, in one fixture."""
    return S3Env(
        server=s3_server,
        anon=make_settings(s3_server, "anonymous"),
        reader=make_settings(s3_server, "reader"),
        publisher=make_settings(s3_server, "publisher"),
        prefix=unique_prefix,
    )
