"""Fixtures of the reliability suites: the release fixtures (S3 server, tiny build, CLI runner)
plus a second, small build and helpers to run commands in a private mount namespace.

The S3 server fixture here is a separate instance from ``tests/release``'s (a session fixture
is per conftest), started only when a test here needs it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from release.conftest import (  # noqa: F401 - fixtures re-used by the reliability suites
    _isolated_aws_env,
    anon_settings,
    build_copy,
    census_build,
    cli_env,
    make_settings,
    publisher_env,
    publisher_settings,
    reader_settings,
    run_cli,
    s3,
    s3_cli_args,
    s3_server,
    unique_prefix,
    write_tiny_build,
)


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
    import hashlib

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
