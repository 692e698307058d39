"""Fixtures of the report tests: the builder's census published to a local release root, and
two builds whose manifests differ by exactly one added, one removed and one changed dataset."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import anndata as ad
import pytest

from cellcensus.builder import BuildOptions, build_census
from cellcensus.release import publish

if TYPE_CHECKING:
    from cellcensus.synth import SynthCorpus

TAG = "2026-11-01"
TAG_A = "2026-12-01"
TAG_B = "2026-12-08"


@pytest.fixture(scope="session")
def published_root(census_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local release root with the builder's census (``census_build``) published as ``TAG``."""
    root = tmp_path_factory.mktemp("report-root") / "cell-census"
    publish(census_build, root, tag=TAG)
    return root


@dataclass(frozen=True)
class DiffCase:
    """Two builds published to one root, and the dataset ids that differ between them."""

    root: Path
    added: str
    removed: str
    changed: str
    kept: str


class _Sizes(TypedDict):
    """The small-build options both builds of ``diff_case`` share (``BuildOptions`` keywords)."""

    chunk_nnz: int
    validation_sample_cells: int


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def diff_case(small_corpus: SynthCorpus, tmp_path_factory: pytest.TempPathFactory) -> DiffCase:
    """Build A = {kept, changed, removed}; build B = {kept, changed', added}, where changed' is
    the same dataset id with a different H5AD (7 cells fewer). Both published to one root."""
    work = tmp_path_factory.mktemp("diff-case")
    with small_corpus.manifest_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    # human datasets of the demo corpus: 0 blood/spleen, 1 lung, 2 brain, 3 liver Smart-seq2
    kept, changed, removed, added = rows[0], rows[1], rows[2], rows[3]
    source = Path(changed["dataset_asset_h5ad_uri"])
    adata = ad.read_h5ad(source)
    revised = work / "revised.h5ad"
    adata[: adata.n_obs - 7].copy().write_h5ad(revised)
    changed_b = dict(changed, dataset_asset_h5ad_uri=str(revised))
    options: _Sizes = {"chunk_nnz": 200_000, "validation_sample_cells": 16}
    a = build_census(
        _write_manifest(work / "a.csv", [kept, changed, removed]),
        work / "a",
        options=BuildOptions(tag=TAG_A, **options),
    )
    b = build_census(
        _write_manifest(work / "b.csv", [kept, changed_b, added]),
        work / "b",
        options=BuildOptions(tag=TAG_B, **options),
    )
    root = work / "root"
    publish(a.out_dir, root, tag=TAG_A)
    publish(b.out_dir, root, tag=TAG_B)
    return DiffCase(
        root=root,
        added=added["dataset_id"],
        removed=removed["dataset_id"],
        changed=changed["dataset_id"],
        kept=kept["dataset_id"],
    )
