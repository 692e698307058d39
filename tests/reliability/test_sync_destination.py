"""Defect 1: ``sync`` into a folder that holds another build mixed the two and reported success.

A destination must end up exactly the release it was synced from, and a half-replaced one must
never look complete (``.cellcensus-sync.json`` says "incomplete" and ``manifest.json`` is absent
until every object is in place and every file of the other build is gone).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from cellcensus.errors import BadInputError
from cellcensus.release import publish, read_manifest, sync
from cellcensus.release._local import LocalRoot
from cellcensus.release.sync import PART_SUFFIX, SYNC_MARKER, read_sync_state
from tests._cli import cli_env, run_cli

from .conftest import tree_digest

if TYPE_CHECKING:
    from pathlib import Path


def _release_files(
    root: LocalRoot, tag: str, parts: tuple[str, ...] = ("soma", "h5ads")
) -> dict[str, str]:
    m = read_manifest(root, tag)
    return {
        o.path: o.sha256
        for o in m.objects
        if "/" not in o.path or o.path.split("/", 1)[0] in parts  # top level: build.json, report
    }


@pytest.fixture
def two_releases(census_build: Path, other_build: Path, tmp_path: Path) -> LocalRoot:
    root = LocalRoot(tmp_path / "root")
    publish(census_build, root, tag="2026-11-01")
    publish(other_build, root, tag="2026-11-08")
    return root


def test_sync_of_another_tag_replaces_the_destination_exactly(
    two_releases: LocalRoot, tmp_path: Path
) -> None:
    dest = tmp_path / "census"
    (dest).mkdir()
    (dest / "notes.txt").write_text("mine")  # not sync's: left alone
    sync(two_releases, "2026-11-01", dest)
    first = read_sync_state(dest)
    assert first is not None
    assert first.complete
    assert first.tag == "2026-11-01"

    res = sync(two_releases, "2026-11-08", dest)
    assert res.removed > 0
    got = tree_digest(dest, skip=(SYNC_MARKER, "manifest.json", "notes.txt"))
    assert got == _release_files(two_releases, "2026-11-08")
    state = read_sync_state(dest)
    assert state is not None
    assert state.complete
    assert state.tag == "2026-11-08"
    assert json.loads((dest / "manifest.json").read_text())["tag"] == "2026-11-08"
    assert (dest / "notes.txt").read_text() == "mine"
    # and back: the weekly `sync ROOT latest ./census` case
    sync(two_releases, "2026-11-01", dest)
    got = tree_digest(dest, skip=(SYNC_MARKER, "manifest.json", "notes.txt"))
    assert got == _release_files(two_releases, "2026-11-01")


def test_a_destination_with_foreign_files_is_refused_unless_delete(
    two_releases: LocalRoot, tmp_path: Path
) -> None:
    dest = tmp_path / "census"
    (dest / "soma" / "junk").mkdir(parents=True)
    (dest / "soma" / "junk" / "data.bin").write_bytes(b"x")
    with pytest.raises(BadInputError, match=r"not put there by `cellcensus sync`.*--delete"):
        sync(two_releases, "2026-11-01", dest)
    assert (dest / "soma" / "junk" / "data.bin").exists()  # nothing lost
    assert not (dest / SYNC_MARKER).exists()

    env = cli_env()
    proc = run_cli("sync", str(two_releases.path), "2026-11-01", str(dest), env=env)
    assert proc.returncode == 1
    assert "--delete" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("sync", str(two_releases.path), "2026-11-01", str(dest), "--delete", env=env)
    assert proc.returncode == 0, proc.stderr
    got = tree_digest(dest, skip=(SYNC_MARKER, "manifest.json"))
    assert got == _release_files(two_releases, "2026-11-01")


def test_only_keeps_the_other_part_only_if_it_is_this_builds(
    two_releases: LocalRoot, tmp_path: Path
) -> None:
    dest = tmp_path / "census"
    sync(two_releases, "2026-11-01", dest)
    sync(two_releases, "2026-11-01", dest, only="soma")  # same build: h5ads/ stays
    assert tree_digest(dest, skip=(SYNC_MARKER, "manifest.json")) == _release_files(
        two_releases, "2026-11-01"
    )
    sync(two_releases, "2026-11-08", dest, only="soma")  # other build: old h5ads/ goes
    assert tree_digest(dest, skip=(SYNC_MARKER, "manifest.json")) == _release_files(
        two_releases, "2026-11-08", ("soma",)
    )
    state = read_sync_state(dest)
    assert state is not None
    assert state.parts == frozenset({"soma"})


def test_a_half_replaced_destination_never_looks_complete(
    two_releases: LocalRoot, tmp_path: Path
) -> None:
    dest = tmp_path / "census"
    sync(two_releases, "2026-11-01", dest)
    proc = run_cli(
        "sync",
        str(two_releases.path),
        "2026-11-08",
        str(dest),
        "--jobs",
        "1",
        env=cli_env(CELLCENSUS_TEST_FAIL_AFTER_DOWNLOADS="3"),
    )
    assert proc.returncode == -9  # killed mid-way
    state = read_sync_state(dest)
    assert state is not None
    assert not state.complete
    assert state.tag == "2026-11-08"
    assert not (dest / "manifest.json").exists()
    # a re-run completes it, exactly, with no partial file left
    sync(two_releases, "2026-11-08", dest)
    assert not [p for p in dest.rglob("*") if PART_SUFFIX in p.name]
    assert tree_digest(dest, skip=(SYNC_MARKER, "manifest.json")) == _release_files(
        two_releases, "2026-11-08"
    )


def test_dest_that_is_a_file_is_one_clear_error(two_releases: LocalRoot, tmp_path: Path) -> None:
    dest = tmp_path / "file"
    dest.write_text("x")
    with pytest.raises(BadInputError, match="is a file"):
        sync(two_releases, "2026-11-01", dest)
    nested = dest / "sub"
    proc = run_cli("sync", str(two_releases.path), "2026-11-01", str(nested), env=cli_env())
    assert proc.returncode == 1
    assert "error:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
