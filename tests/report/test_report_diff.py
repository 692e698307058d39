"""Diffs of two real builds whose manifests differ by one added, one removed and one changed
dataset: the published report, the library call and ``cellcensus diff`` report exactly those."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from cellcensus.errors import NotFoundError
from cellcensus.release._local import LocalRoot
from cellcensus.report import BuildReport, diff_builds, summarize_published
from tests._cli import python_path_env, run_cli

from .conftest import TAG_A, TAG_B, DiffCase

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

    from cellcensus.report import ReleaseDiff


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = python_path_env({"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    return run_cli(*args, env=env, timeout=300)


def _check(d: ReleaseDiff, case: DiffCase) -> None:
    assert (d.old_tag, d.new_tag) == (TAG_A, TAG_B)
    assert [x.dataset_id for x in d.added] == [case.added]
    assert [x.dataset_id for x in d.removed] == [case.removed]
    assert [c.dataset_id for c in d.changed] == [case.changed]
    change = d.changed[0]
    assert change.reasons == ("sha256",)  # same dataset_version_id, a different file
    assert change.old.sha256 != change.new.sha256
    assert change.old.cells is not None
    assert change.new.cells == change.old.cells - 7  # the revision dropped 7 cells
    assert d.schema_changes == ()
    assert (d.spatial_cells, d.spatial_organisms) == ((0, 0), ())


def test_published_report_carries_the_diff_against_the_previous_build(diff_case: DiffCase) -> None:
    report = BuildReport.from_json((diff_case.root / TAG_B / "report.json").read_bytes())
    assert report.diff is not None
    _check(report.diff, diff_case)
    first = BuildReport.from_json((diff_case.root / TAG_A / "report.json").read_bytes())
    assert first.diff is None
    # cell deltas per organism and category add up to the datasets' changes
    a = summarize_published(LocalRoot(diff_case.root), TAG_A)
    b = report.summary
    human = next(o for o in report.diff.organisms if o.name == "homo_sapiens")
    assert human.total_cells == (a.total_cells, b.total_cells)
    cells = {d.dataset_id: d.cells or 0 for d in b.datasets}
    old_cells = {d.dataset_id: d.cells or 0 for d in a.datasets}
    assert b.total_cells - a.total_cells == (
        cells[diff_case.added] - old_cells[diff_case.removed] - 7
    )
    for cat, rows in human.categories.items():
        assert sum(r.delta for r in rows) == b.total_cells - a.total_cells, cat
    assert human.datasets == (3, 3)
    assert human.genes == (a.organisms[0].genes, b.organisms[0].genes)


def test_diff_builds_equals_the_published_diff(diff_case: DiffCase) -> None:
    d = diff_builds(diff_case.root, TAG_A, TAG_B)
    _check(d, diff_case)
    stored = BuildReport.from_json((diff_case.root / TAG_B / "report.json").read_bytes()).diff
    assert d == stored
    # reversed: added and removed swap, the change stays
    r = diff_builds(diff_case.root, "latest", TAG_A)
    assert [x.dataset_id for x in r.added] == [diff_case.removed]
    assert [x.dataset_id for x in r.removed] == [diff_case.added]
    with pytest.raises(NotFoundError, match="2020-01-01"):
        diff_builds(diff_case.root, "2020-01-01", TAG_B)


def test_diff_cli_prints_tables_and_json(diff_case: DiffCase) -> None:
    proc = _cli("diff", str(diff_case.root), TAG_A, TAG_B)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for needle in (
        "datasets added: 1",
        "datasets removed: 1",
        "datasets changed: 1",
        diff_case.added,
        diff_case.removed,
        diff_case.changed,
        "per organism",
        "Homo sapiens",
    ):
        assert needle in text, needle
    proc = _cli("diff", str(diff_case.root), TAG_A, TAG_B, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["format_version"] == 2
    assert doc["spatial_cells"] == [0, 0]  # single-cell builds: nothing spatial
    assert doc["spatial_organisms"] == []
    assert [x["dataset_id"] for x in doc["datasets_added"]] == [diff_case.added]
    assert [x["dataset_id"] for x in doc["datasets_removed"]] == [diff_case.removed]
    assert [x["dataset_id"] for x in doc["datasets_changed"]] == [diff_case.changed]
    proc = _cli("diff", str(diff_case.root), TAG_A, "2031-01-01")
    assert proc.returncode == 1
    assert "2031-01-01" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow  # four CLI runs, one recomputing from the census: 20-80 s on 2 busy cores
def test_report_cli_writes_html_and_json(diff_case: DiffCase, tmp_path: Path) -> None:
    out = tmp_path / "r" / "b.html"
    proc = _cli("report", str(diff_case.root), TAG_B, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"compared with {TAG_A}" in proc.stdout
    doc = json.loads((tmp_path / "r" / "b.json").read_bytes())
    assert doc["diff"]["old_tag"] == TAG_A
    html = out.read_text()
    assert f"Changes since {TAG_A}" in html
    # the stored numbers and a recomputation from the census give the same report
    again = tmp_path / "again.html"
    proc = _cli("report", str(diff_case.root), TAG_B, "--out", str(again), "--recompute")
    assert proc.returncode == 0, proc.stderr
    assert again.read_bytes() == out.read_bytes()
    assert (diff_case.root / TAG_B / "report.html").read_bytes() == out.read_bytes()
    # --no-diff, and --against another build
    proc = _cli(
        "report", str(diff_case.root), TAG_A, "--out", str(tmp_path / "a.html"), "--against", TAG_B
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "a.json").read_bytes())["diff"]["old_tag"] == TAG_B
    proc = _cli(
        "report", str(diff_case.root), TAG_B, "--out", str(tmp_path / "n.html"), "--no-diff"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "n.json").read_bytes())["diff"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "x.txt"], "must name an .html file"),
        (["--against", TAG_A, "--no-diff"], "contradict"),
        (["--against", TAG_B], "same build"),
        (["--against", "2019-01-01"], "2019-01-01"),
    ],
)
def test_report_cli_bad_arguments_fail_with_one_line(
    diff_case: DiffCase, tmp_path: Path, args: list[str], message: str
) -> None:
    out = [] if "--out" in args else ["--out", str(tmp_path / "r.html")]
    proc = _cli("report", str(diff_case.root), TAG_B, *out, *args)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r.html").exists()
