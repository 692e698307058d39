"""Release reports in the publish flow, on a local root and on the S3 server: every published
build gets report.html/report.json in its manifest; verify and sync still pass; a resumed
publish reproduces the same report; ``releases list`` shows cells and size; a census without
``summary_cell_counts`` still gets a report (categories from obs, with notes)."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import pytest

from cellcensus.errors import IntegrityError
from cellcensus.release import publish, read_manifest, retract, sync, verify
from cellcensus.release._local import LocalRoot
from cellcensus.release._s3 import S3Root
from cellcensus.report import BuildReport, build_report, list_releases
from tests._cli import publisher_env, run_cli, s3_cli_args
from tests._tinybuild import N_OBS

if TYPE_CHECKING:
    from pathlib import Path

    from cellcensus.release import ReleaseRoot
    from cellcensus.release._root import Callback
    from tests._s3server import S3Env


class _SomaFailsRoot(LocalRoot):
    """A root whose uploads under soma/ fail (an interrupted publish, deterministically)."""

    def upload_file(
        self, path: Path, key: str, *, sha256: str, callback: Callback | None = None
    ) -> None:
        if "/soma/" in key:
            msg = f"injected failure uploading {key}"
            raise OSError(msg)
        super().upload_file(path, key, sha256=sha256, callback=callback)


def _report(root: ReleaseRoot, tag: str) -> BuildReport:
    return BuildReport.from_json(root.read_bytes(f"{tag}/report.json"))


def test_tiny_census_without_summary_cell_counts_gets_a_report(
    census_build: Path, tmp_path: Path
) -> None:
    root = LocalRoot(tmp_path / "root")
    publish(census_build, root, tag="2026-01-01")
    rep = _report(root, "2026-01-01")
    s = rep.summary
    assert s.total_cells == N_OBS
    assert [o.name for o in s.organisms] == ["homo_sapiens"]
    human = s.organisms[0]
    # no summary_cell_counts: the categories come from obs (no disease column there)
    assert {c.label: c.total_cells for c in human.categories["cell_type"]} == {
        "T cell": 20,
        "B cell": 20,
        "monocyte": 20,
    }
    assert "disease" not in human.categories
    assert any("summary_cell_counts is missing" in n for n in s.notes)
    assert any("no 'nnz' column" in n for n in s.notes)
    assert human.unique_cells == N_OBS
    assert human.genes == 25
    assert human.nnz is not None
    assert human.nnz > 0  # from X (obs has no nnz column)
    assert {d.dataset_id: d.cells for d in s.datasets} == {
        d: N_OBS // 2 for d in (x.dataset_id for x in s.datasets)
    }
    assert "summary_cell_counts is missing" in root.read_bytes("2026-01-01/report.html").decode()


def test_resumed_publish_reproduces_the_report_and_retraction_moves_the_baseline(
    census_build: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    publish(census_build, root, tag="2026-02-01")
    # an interrupted publish: the report and the H5ADs landed, soma/ did not
    with pytest.raises(OSError, match="injected"):
        publish(census_build, _SomaFailsRoot(root), tag="2026-02-08")
    assert not (root / "2026-02-08" / "soma").exists()
    claimed = (root / "2026-02-08" / "report.json").read_bytes()
    # a build published meanwhile (between the two) does not change the resumed report
    publish(census_build, root, tag="2026-02-05")
    res = publish(census_build, root, tag="2026-02-08")
    assert res.skipped > 0
    assert (root / "2026-02-08" / "report.json").read_bytes() == claimed
    diff = _report(LocalRoot(root), "2026-02-08").diff
    assert diff is not None
    assert diff.old_tag == "2026-02-01"
    assert verify(root, "2026-02-08").ok
    # a fresh publish compares with the newest non-retracted build before it
    retract(LocalRoot(root), "2026-02-08", reason="test")
    publish(census_build, root, tag="2026-02-15")
    diff = _report(LocalRoot(root), "2026-02-15").diff
    assert diff is not None
    assert diff.old_tag == "2026-02-05"


def test_unreadable_previous_build_stops_publish_with_advice(
    census_build: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    publish(census_build, root, tag="2026-03-01")
    (root / "2026-03-01" / "report.json").write_text('{"format_version": 1, "summary": 5}')
    shutil.rmtree(
        root / "2026-03-01" / "soma" / "census_data" / "homo_sapiens" / "obs" / "__schema"
    )
    with pytest.raises(IntegrityError, match="retract it"):
        publish(census_build, root, tag="2026-03-08")
    assert set(json.loads((root / "release.json").read_text())) >= {"2026-03-01"}
    assert "2026-03-08" not in json.loads((root / "release.json").read_text())
    retract(LocalRoot(root), "2026-03-01", reason="broken")
    publish(census_build, root, tag="2026-03-08")
    assert _report(LocalRoot(root), "2026-03-08").diff is None


@pytest.mark.s3
@pytest.mark.slow  # two publishes, a sync and a recompute over S3, two CLI runs: ~60 s
def test_reports_on_s3_publish_verify_sync_list_and_recompute(
    s3: S3Env, census_build: Path, tmp_path: Path
) -> None:
    root_uri = s3.root_uri("public")
    publish(census_build, root_uri, tag="2026-04-01", lts=True, settings=s3.publisher)
    res = publish(census_build, root_uri, tag="2026-04-08", settings=s3.publisher)
    r = S3Root(root_uri, s3.anon)
    manifest = read_manifest(r, "2026-04-08").by_path()
    assert {"report.html", "report.json"} <= set(manifest)
    assert res.total_objects == len(manifest)
    assert verify(root_uri, "2026-04-08", settings=s3.anon).ok
    # served with their content types: a browser shows the page straight from the bucket
    head = s3.reader.boto3_client().head_object(
        Bucket="public", Key=f"{s3.prefix}/2026-04-08/report.html"
    )
    assert head["ContentType"] == "text/html; charset=utf-8"
    dest = tmp_path / "copy"
    sync(root_uri, "latest", dest, settings=s3.anon)
    assert (dest / "report.html").read_bytes() == r.read_bytes("2026-04-08/report.html")
    rep = _report(r, "2026-04-08")
    assert rep.diff is not None
    assert rep.diff.old_tag == "2026-04-01"
    assert rep.diff.identical_datasets
    assert rep.diff.total_cells == (N_OBS, N_OBS)

    rows = list_releases(root_uri, settings=s3.anon)
    assert [(x.tag, x.kind, x.aliases, x.cells) for x in rows] == [
        ("2026-04-08", "weekly", ("latest",), N_OBS),
        ("2026-04-01", "LTS", ("stable",), N_OBS),
    ]
    soma = sum(o.size for o in manifest.values() if o.path.startswith(("soma/", "h5ads/")))
    assert rows[0].store_bytes == soma

    proc = run_cli(
        "releases",
        "list",
        "--root",
        root_uri,
        "--json",
        "--no-sign-request",
        *s3_cli_args(s3.server),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [x["cells"] for x in doc["releases"]] == [N_OBS, N_OBS]
    proc = run_cli(
        "releases", "list", "--root", root_uri, "--no-sign-request", *s3_cli_args(s3.server)
    )
    assert proc.returncode == 0, proc.stderr
    for needle in ("2026-04-08", "weekly", "LTS", "latest", "stable", f"{N_OBS}"):
        assert needle in proc.stdout

    # recomputed from the census over S3 (TileDB reads), the same report
    again = build_report(root_uri, "2026-04-08", recompute=True, settings=s3.anon)
    assert again == rep
    out = tmp_path / "r.html"
    proc = run_cli(
        "report",
        root_uri,
        "latest",
        "--out",
        str(out),
        "--recompute",
        *s3_cli_args(s3.server),
        env=publisher_env(s3.server),
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == r.read_bytes("2026-04-08/report.html")
