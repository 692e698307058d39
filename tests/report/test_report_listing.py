"""``releases list``: cells and size from each build's report.json head, or, for builds
published before reports existed, from build.json and manifest.json."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

from cellcensus.release import read_manifest
from cellcensus.release._local import LocalRoot
from cellcensus.report import BuildReport, list_releases
from tests._cli import python_path_env, run_cli

from .conftest import TAG

if TYPE_CHECKING:
    from pathlib import Path


def test_listing_reads_report_totals_and_falls_back_for_old_builds(
    published_root: Path, census_build: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(published_root, root)
    report = BuildReport.from_json((root / TAG / "report.json").read_bytes())
    manifest = read_manifest(LocalRoot(root), TAG)
    store = sum(o.size for o in manifest.objects if o.path.startswith(("soma/", "h5ads/")))
    build = json.loads((census_build / "build.json").read_bytes())

    [row] = list_releases(root)
    assert (row.tag, row.kind, row.aliases, row.retracted) == (TAG, "weekly", ("latest",), False)
    assert row.cells == report.summary.total_cells == build["summary"]["total_cell_count"]
    assert row.unique_cells == report.summary.unique_cells == build["summary"]["unique_cell_count"]
    # the build has spatial datasets: their cells are part of the total, and shown apart
    spatial = sum(v["cells"] for v in build["summary"]["spatial"].values())
    assert row.spatial_cells == report.summary.spatial_cells == spatial > 0
    assert row.datasets == len(report.summary.datasets)
    assert row.store_bytes == store

    # a build published before reports: numbers from build.json and manifest.json
    (root / TAG / "report.json").unlink()
    [old] = list_releases(root)
    assert (old.cells, old.unique_cells, old.store_bytes) == (row.cells, row.unique_cells, store)
    assert old.spatial_cells == spatial
    assert old.datasets == build["summary"]["datasets_included"]
    # nothing readable: the row is still listed, without numbers
    (root / TAG / "build.json").unlink()
    [bare] = list_releases(root)
    assert (bare.tag, bare.cells, bare.store_bytes) == (TAG, None, None)

    proc = run_cli(
        "releases",
        "list",
        "--root",
        str(published_root),
        env=python_path_env({"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": "/tmp"}),
    )
    assert proc.returncode == 0, proc.stderr
    for needle in (TAG, "weekly", "latest", f"{row.cells:,}", "spatial", f"{spatial:,}", "MB"):
        assert needle in proc.stdout, needle
