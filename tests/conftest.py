"""Shared fixtures: a small synthetic corpus and one census built from it (session-scoped).

Fixtures of the release tests (the SeaweedFS S3 server) live in ``tests/release/conftest.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cellcensus.builder import BuildOptions, BuildResult, build_census
from cellcensus.synth import SynthCorpus, demo_corpus_specs, synth_corpus

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

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
    """A validated census built from ``small_corpus`` with a small chunk size (many X tasks)."""
    out = tmp_path_factory.mktemp("build") / BUILD_TAG
    return build_census(
        small_corpus.manifest_path,
        out,
        options=BuildOptions(tag=BUILD_TAG, chunk_nnz=50_000, validation_sample_cells=64),
    )


@pytest.fixture(scope="session")
def census_build(small_build: BuildResult) -> Path:
    """Path of a finished build directory (``soma/``, ``h5ads/``, ``build.json``)."""
    return small_build.out_dir


@pytest.fixture
def no_env_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Remove AWS/CELLCENSUS settings from the environment for the test."""
    import os

    for key in list(os.environ):
        if key.startswith(("AWS_", "CELLCENSUS_")):
            monkeypatch.delenv(key)
    return
