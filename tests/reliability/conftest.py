"""Fixtures of the reliability suites: the release tests' tiny build as ``census_build``, a
second small build, and a one-dataset corpus.

The S3 server, the AWS isolation, ``build_copy`` and the tiny build are the root's
(``tests/conftest.py``): one server for the whole session.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from tests._tinybuild import write_tiny_build


@pytest.fixture(scope="session")
def census_build(tiny_build: Path) -> Path:
    """Path of a finished build directory (``soma/``, ``h5ads/``, ``build.json``)."""
    return tiny_build


@pytest.fixture(scope="session")
def other_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second build whose objects differ from ``census_build``'s (other h5ads, other
    build.json, one extra object in soma/): two different builds to publish side by side."""
    out = tmp_path_factory.mktemp("otherbuild") / "build"
    write_tiny_build(out, note="other")
    extra = out / "h5ads" / "0a1b2c3d-0000-4000-8000-000000000003.h5ad"
    shutil.copy(out / "h5ads" / "0a1b2c3d-0000-4000-8000-000000000001.h5ad", extra)
    with extra.open("ab") as f:
        f.write(b"\0" * 17)  # different bytes, same kind of file
    doc = json.loads((out / "build.json").read_text())
    doc["note"] = "other build"
    (out / "build.json").write_text(json.dumps(doc))
    return out


def tree_digest(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (names in ``skip`` left out)."""
    out: dict[str, str] = {}
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            rel = p.relative_to(root).as_posix()
            if any(part in skip for part in rel.split("/")):
                continue
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of one real CELLxGENE-schema human dataset of 300 cells (builds in seconds)."""
    from cellcensus.synth import DatasetSpec, synth_corpus
    from cellcensus.synth._random import uuid4

    root = tmp_path_factory.mktemp("tinycorpus")
    spec = DatasetSpec(
        dataset_id=uuid4("dataset", 3, 0), organism_ontology_term_id="NCBITaxon:9606", n_cells=300
    )
    return synth_corpus(root, seed=3, specs=[spec]).manifest_path
