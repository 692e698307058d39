"""Defect 4: file-system errors ended in Python tracebacks.

Read-only output directories and release roots, full disks and a ROOT that is a regular file
must give one clear line (what, where, what to do) and exit 1, for ``build``, ``publish``,
``sync`` and ``export``; nothing is committed, and once the cause is fixed a re-run completes.

Full and read-only file systems are real: a tmpfs of a few hundred KB mounted in a private
mount namespace (``unshare --user --mount``; see ``_ns.py``), remounted larger or read-write for
the re-run. A sync that hits the full disk deletes its partial files (no ``.cellcensus-part``
file is left) and the re-run resumes with the objects already verified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from cellcensus.release import publish
from cellcensus.release._local import LocalRoot
from tests._cli import cli_env, run_cli

from ._ns import mount_namespaces_work, run_in_namespace

if TYPE_CHECKING:
    from pathlib import Path

needs_ns = pytest.mark.skipif(
    not mount_namespaces_work(), reason="no private mount namespaces (unshare) on this machine"
)


def _one_clear_line(res: dict[str, Any], *words: str) -> None:
    """Exit 1, no traceback, and the error is one line (the last; logs and bars may precede)."""
    assert res["rc"] == 1, res
    lines = res["err"].strip().splitlines()
    assert "Traceback" not in res["err"], res["err"]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, res["err"]
    assert lines[-1] == errors[0], res["err"]
    for w in words:
        assert w in errors[0], (w, errors[0])


@needs_ns
@pytest.mark.slow  # 49 s CPU measured (2026-12-02)
def test_read_only_targets_are_one_clear_line(
    census_build: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    local = LocalRoot(tmp_path / "src-root")
    publish(census_build, local, tag="2026-11-01")
    ro = tmp_path / "ro"
    ro.mkdir()
    res = run_in_namespace(
        f"""
        ro = Path({str(ro)!r})
        mount_tmpfs(ro, "1m", ro=True)
        RESULT["build"] = cli("build", {str(tiny_corpus)!r}, ro / "out", "--tag", "2026-11-01")
        RESULT["publish"] = cli("publish", {str(census_build)!r}, ro / "root", "--tag",
                                "2026-11-01")
        RESULT["sync"] = cli("sync", {str(local.path)!r}, "2026-11-01", ro / "dest")
        RESULT["export"] = cli("export", "Homo sapiens", "--to", ro / "x.h5ad", "--uri",
                               {str(census_build / "soma")!r}, "--no-progress")
        RESULT["left"] = files(ro)
        """,
        env=cli_env(),
    )
    for cmd in ("build", "publish", "sync", "export"):
        _one_clear_line(res[cmd], "read-only")
    assert res["left"] == []


@pytest.mark.slow  # 41 s CPU measured (2026-12-02)
def test_a_root_that_is_a_regular_file_is_one_clear_line(
    census_build: Path, tmp_path: Path
) -> None:
    f = tmp_path / "root.txt"
    f.write_text("not a directory")
    env = cli_env()
    for args in (
        ("publish", str(census_build), str(f), "--tag", "2026-11-01"),
        ("publish", str(census_build), str(f / "sub"), "--tag", "2026-11-01"),
        ("sync", str(f), "latest", str(tmp_path / "d")),
        ("releases", "list", "--root", str(f)),
        ("cleanup", "--root", str(f)),
        ("build", str(tmp_path / "none.csv"), str(f / "out")),
    ):
        proc = run_cli(*args, env=env)
        _one_clear_line({"rc": proc.returncode, "err": proc.stderr})
    assert f.read_text() == "not a directory"


@needs_ns
@pytest.mark.slow  # 38 s CPU measured (2026-12-02)
def test_full_disk_sync_and_publish_resume_once_space_is_freed(
    census_build: Path, tmp_path: Path
) -> None:
    local = LocalRoot(tmp_path / "src-root")
    publish(census_build, local, tag="2026-11-01")
    disk = tmp_path / "disk"
    disk.mkdir()
    res = run_in_namespace(
        f"""
        disk = Path({str(disk)!r})
        mount_tmpfs(disk, "256k")
        RESULT["sync1"] = cli("sync", {str(local.path)!r}, "2026-11-01", disk / "dest",
                              "--jobs", "2")
        RESULT["after_sync1"] = files(disk)
        RESULT["publish1"] = cli("publish", {str(census_build)!r}, disk / "root", "--tag",
                                 "2026-11-01")
        RESULT["after_publish1"] = files(disk / "root") if (disk / "root").exists() else []
        remount(disk, "size=8m")
        RESULT["sync2"] = cli("sync", {str(local.path)!r}, "2026-11-01", disk / "dest")
        RESULT["publish2"] = cli("publish", {str(census_build)!r}, disk / "root", "--tag",
                                 "2026-11-01")
        RESULT["verify"] = cli("verify", disk / "root", "2026-11-01")
        RESULT["verify_dest"] = cli("verify", {str(local.path)!r}, "2026-11-01")
        RESULT["after"] = files(disk)
        import hashlib
        RESULT["dest_sha"] = {{p: hashlib.sha256((disk / "dest" / p).read_bytes()).hexdigest()
                              for p in files(disk / "dest")}}
        """,
        env=cli_env(),
    )
    _one_clear_line(res["sync1"], "no space left")
    _one_clear_line(res["publish1"], "no space left")
    assert not [p for p in res["after_sync1"] if "cellcensus-part" in p]
    assert "release.json" not in res["after_publish1"]  # nothing committed
    assert not [p for p in res["after_publish1"] if "cellcensus-tmp" in p]
    for step in ("sync2", "publish2", "verify"):
        assert res[step]["rc"] == 0, res[step]
    assert not [p for p in res["after"] if "cellcensus-part" in p or "cellcensus-tmp" in p]
    # the resumed sync holds exactly the release
    from cellcensus.release import read_manifest

    want = {o.path: o.sha256 for o in read_manifest(local, "2026-11-01").objects}
    got = {p: s for p, s in res["dest_sha"].items() if p in want}
    assert got == want
    assert set(res["dest_sha"]) - set(want) == {"manifest.json", ".cellcensus-sync.json"}


@needs_ns
@pytest.mark.slow  # 92 s CPU measured (2026-12-02)
def test_full_disk_build_and_export_are_one_clear_line_and_resume(
    census_build: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    res = run_in_namespace(
        f"""
        disk = Path({str(disk)!r})
        mount_tmpfs(disk, "400k")
        RESULT["build1"] = cli("build", {str(tiny_corpus)!r}, disk / "out", "--tag",
                               "2026-11-01")
        RESULT["out_exists"] = (disk / "out").exists()
        small = Path({str(tmp_path / "small")!r})
        mount_tmpfs(small, "12k")
        for fmt in ("h5ad", "zarr", "parquet"):
            RESULT["export1-" + fmt] = cli(
                "export", "Homo sapiens", "--to", small / f"big.{{fmt}}", "--uri",
                {str(census_build / "soma")!r}, "--no-progress")
        RESULT["after1"] = files(disk) + files(small)
        remount(disk, "size=64m")
        RESULT["build2"] = cli("build", {str(tiny_corpus)!r}, disk / "out", "--tag",
                               "2026-11-01", "--resume")
        RESULT["export2"] = cli("export", "Homo sapiens", "--to", disk / "big.h5ad",
                                "--uri", {str(census_build / "soma")!r}, "--no-progress")
        RESULT["after2"] = files(disk)
        """,
        env=cli_env(),
    )
    _one_clear_line(res["build1"], "no space left")
    assert not res["out_exists"]  # nothing appears at OUT_DIR until the build is complete
    for step in ("build2", "export2"):
        assert res[step]["rc"] == 0, res[step]
    assert "out/build.json" in res["after2"]
    assert "big.h5ad" in res["after2"]
    # h5ad: refused before writing (HDF5 cannot survive a full disk); zarr and parquet hit it
    _one_clear_line(res["export1-h5ad"], "disk space is needed")
    _one_clear_line(res["export1-zarr"], "no space left")
    _one_clear_line(res["export1-parquet"], "no space left")
    assert not [p for p in res["after1"] if "partial" in p]  # no partial output
