"""The release directory on a plain directory root: publish, promote, retract, aliases, pins,
retention clean-up, and mirrors."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path  # noqa: TC003 - fixture annotations are resolved by pytest
from typing import TYPE_CHECKING

import cellxgene_census
import pytest

from cellcensus.errors import BadInputError, IntegrityError, NotFoundError, UnsupportedFormatError
from cellcensus.release import (
    add_mirror,
    cleanup,
    pin,
    promote,
    publish,
    read_directory,
    read_mirrors,
    remove_alias,
    retract,
    set_alias,
    set_default_mirror,
    show_release,
    unpin,
    verify,
)
from cellcensus.release._local import LocalRoot
from tests._cli import cli_env, run_cli
from tests._tinybuild import N_OBS

if TYPE_CHECKING:
    from cellcensus.release._root import Callback

TODAY = dt.datetime.now(dt.UTC).date()


def _tag(days_ago: int) -> str:
    return (TODAY - dt.timedelta(days=days_ago)).isoformat()


def test_publish_to_a_directory_root(census_build: Path, tmp_path: Path) -> None:
    root = LocalRoot(tmp_path / "releases")
    res = publish(census_build, root, tag="2026-01-05")
    base = (tmp_path / "releases").resolve()
    e = read_directory(root).builds["2026-01-05"]
    assert e.soma.uri == f"file://{base}/2026-01-05/soma/"
    assert e.soma.relative_uri == "releases/2026-01-05/soma/"
    assert e.soma.s3_region is None
    assert res.soma_uri == e.soma.uri
    mirrors = read_mirrors(root)
    assert mirrors.default == "origin"
    assert mirrors.mirrors["origin"].provider == "file"
    assert mirrors.mirrors["origin"].base_uri == f"file://{base.parent}/"
    # the build is byte-identical and opens with the official client at the absolute uri
    for p in (census_build / "h5ads").iterdir():
        assert (base / "2026-01-05" / "h5ads" / p.name).read_bytes() == p.read_bytes()
    with cellxgene_census.open_soma(uri=e.soma.uri) as c:
        assert c["census_data"]["homo_sapiens"].obs.count == N_OBS
    assert verify(root, "latest").ok
    assert not list(base.rglob("*.cellcensus-tmp-*"))

    # the same build again is a no-op (a re-run after a kill after the commit); another is refused
    again = publish(census_build, root, tag="2026-01-05")
    assert (again.uploaded, again.skipped) == (0, again.total_objects)
    changed = tmp_path / "changed"
    shutil.copytree(census_build, changed)
    (changed / "build.json").write_text((changed / "build.json").read_text() + " ")
    with pytest.raises(BadInputError, match="immutable"):
        publish(changed, root, tag="2026-01-05")
    with pytest.raises(BadInputError, match="allow-custom-tag"):
        publish(census_build, root, tag="nightly")
    publish(census_build, root, tag="nightly-7", allow_custom_tag=True, today=dt.date(2026, 2, 1))
    # a custom tag orders by its publish date
    assert read_directory(root).resolve("latest") == "nightly-7"


def test_bad_build_directories_are_refused(census_build: Path, tmp_path: Path) -> None:
    root = tmp_path / "r"
    with pytest.raises(BadInputError, match="does not exist"):
        publish(tmp_path / "nope", root, tag="2026-01-01")
    b = tmp_path / "b"
    shutil.copytree(census_build, b)
    (b / "build.json").write_text('{"format_version": 7}')
    with pytest.raises(UnsupportedFormatError, match=r"format_version 7.*upgrade cellcensus"):
        publish(b, root, tag="2026-01-01")
    shutil.rmtree(b / "h5ads")
    with pytest.raises(BadInputError, match="h5ads"):
        publish(b, root, tag="2026-01-01")
    shutil.rmtree(b / "soma" / "census_info")
    (b / "soma" / "__tiledb_group.tdb").unlink()
    with pytest.raises(BadInputError, match="not a TileDB-SOMA collection"):
        publish(b, root, tag="2026-01-01")
    assert not root.exists() or not (root / "release.json").exists()


def test_promote_retract_alias_pin(census_build: Path, tmp_path: Path) -> None:
    root = LocalRoot(tmp_path / "r")
    for tag, lts in (("2026-01-01", True), ("2026-01-08", False), ("2026-01-15", False)):
        publish(census_build, root, tag=tag, lts=lts)
    d = read_directory(root)
    assert (d.resolve("latest"), d.resolve("stable")) == ("2026-01-15", "2026-01-01")

    d = promote(root, "2026-01-08")
    assert d.resolve("stable") == "2026-01-08"
    assert d.builds["2026-01-08"].lts

    d = retract(
        root,
        "2026-01-15",
        reason="bad genes",
        replaced_by="2026-01-08",
        info_url="https://example.org/errata",
        today=dt.date(2026, 1, 20),
    )
    e = d.builds["2026-01-15"]
    assert e.retracted
    assert e.retraction is not None
    assert e.retraction.to_dict() == {
        "date": "2026-01-20",
        "reason": "bad genes",
        "info_url": "https://example.org/errata",
        "replaced_by": "2026-01-08",
    }
    assert d.resolve("latest") == "2026-01-08"  # latest moved off the retracted build
    assert (tmp_path / "r" / "2026-01-15" / "soma").is_dir()  # data kept
    with pytest.raises(BadInputError, match="retracted"):
        promote(root, "2026-01-15")
    with pytest.raises(BadInputError, match="needs a reason"):
        retract(root, "2026-01-08", reason=" ")
    with pytest.raises(NotFoundError):
        retract(root, "2026-01-08", reason="x", replaced_by="2099-01-01")

    d = set_alias(root, "V1", "2026-01-01")
    d = set_alias(root, "V-current", "V1")  # chains allowed
    assert d.resolve("V-current") == "2026-01-01"
    assert show_release(root, "V-current").aliases == ["V-current", "V1"]
    with pytest.raises(BadInputError, match="maintained automatically"):
        set_alias(root, "latest", "2026-01-01")
    with pytest.raises(BadInputError, match="is a build tag"):
        set_alias(root, "2026-01-08", "2026-01-01")
    with pytest.raises(NotFoundError):
        set_alias(root, "V2", "2099-01-01")
    with pytest.raises(BadInputError, match="alias loop"):
        set_alias(root, "V1", "V-current")
    d = remove_alias(root, "V-current")
    assert "V-current" not in d.aliases

    assert pin(root, "2026-01-08").builds["2026-01-08"].do_not_delete
    assert not unpin(root, "2026-01-08").builds["2026-01-08"].do_not_delete
    with pytest.raises(BadInputError, match="is an alias"):
        pin(root, "latest")
    with pytest.raises(NotFoundError, match="published builds"):
        pin(root, "2031-01-01")

    # the CLI drives the same functions
    env = cli_env(CELLCENSUS_RELEASE_ROOT=str(tmp_path / "r"))
    assert run_cli("pin", "2026-01-01", env=env).returncode == 0
    assert read_directory(root).builds["2026-01-01"].do_not_delete
    proc = run_cli("retract", "2026-01-01", env=env)
    assert proc.returncode == 2  # --reason is required
    proc = run_cli("alias", "set", "V9", "stable", env=env, check=True)
    assert read_directory(root).resolve("V9") == "2026-01-08"
    proc = run_cli("releases", "show", "V9", env=env, check=True)
    assert json.loads(proc.stdout)["tag"] == "2026-01-08"


class _SpyRoot(LocalRoot):
    """A directory root that records what release.json listed whenever data is deleted."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.seen_at_delete: list[tuple[str, set[str]]] = []

    def delete_prefix(self, prefix: str) -> int:
        listed = set(json.loads((self.path / "release.json").read_text()))
        self.seen_at_delete.append((prefix, listed))
        return super().delete_prefix(prefix)


def test_retention_deletes_exactly_the_right_builds(census_build: Path, tmp_path: Path) -> None:
    root = _SpyRoot(tmp_path / "r")
    builds = {
        "old_lts": _tag(200),
        "old_aliased": _tag(150),
        "old_pinned": _tag(120),
        "old_weekly_a": _tag(90),
        "old_weekly_b": _tag(33),
        "edge": _tag(32),
        "new_weekly": _tag(10),
        "newest": _tag(1),
    }
    for name, tag in builds.items():
        publish(census_build, root, tag=tag, lts=name == "old_lts")
    set_alias(root, "V1", builds["old_aliased"])
    pin(root, builds["old_pinned"])
    retract(root, builds["newest"], reason="oops")  # newest is still never deleted

    # dry run: report only
    proc = run_cli("cleanup", "--root", str(tmp_path / "r"), "--dry-run", check=True)
    assert f"would delete {builds['old_weekly_a']}" in proc.stdout
    assert f"would delete {builds['old_weekly_b']}" in proc.stdout
    assert all((tmp_path / "r" / t).is_dir() for t in builds.values())

    states: list[set[str]] = []
    plan = cleanup(
        root,
        days=32,
        today=TODAY,
        on_release_json_written=lambda d: states.append(
            {t for t in builds.values() if (tmp_path / "r" / t).is_dir()}
        ),
    )
    doomed = {builds["old_weekly_a"], builds["old_weekly_b"]}
    assert set(plan.delete) == doomed
    assert plan.keep[builds["old_lts"]] == "LTS"
    assert plan.keep[builds["old_aliased"]] == "aliased as V1"
    assert plan.keep[builds["old_pinned"]].startswith("pinned")
    assert plan.keep[builds["edge"]].startswith("younger than 32 days")
    assert plan.keep[builds["newest"]] == "newest build"
    assert plan.deleted_objects > 0

    # release.json was rewritten first: when it was written, all data still existed...
    assert states == [set(builds.values())]
    # ...and at every deletion it no longer listed the build being deleted
    assert sorted(p for p, _ in root.seen_at_delete) == sorted(f"{t}/" for t in doomed)
    for prefix, listed in root.seen_at_delete:
        assert prefix.rstrip("/") not in listed
    d = read_directory(root)
    assert set(d.builds) == set(builds.values()) - doomed
    for t in builds.values():
        assert (tmp_path / "r" / t).is_dir() == (t not in doomed)
    for t in d.builds:
        assert verify(root, t).ok
    # running it again deletes nothing more
    assert cleanup(root, days=32, today=TODAY).delete == []


@pytest.mark.slow  # 30 s CPU measured (2026-12-02)
def test_interrupted_local_publish_resumes_and_a_different_build_is_refused(
    census_build: Path, build_copy: Path, tmp_path: Path
) -> None:
    root = tmp_path / "r"
    proc = run_cli(
        "publish",
        str(census_build),
        str(root),
        "--tag",
        "2026-03-01",
        env=cli_env(CELLCENSUS_TEST_FAIL_AFTER_UPLOADS="25", TMPDIR=str(tmp_path)),
    )
    assert proc.returncode == -9
    assert not (root / "release.json").exists()
    assert (root / "2026-03-01" / "manifest.json").is_file()

    # a different build under the same tag is refused unless asked to discard the leftovers
    bj = build_copy / "build.json"
    bj.write_text(bj.read_text().replace('"tiny"', '"other"'))
    with pytest.raises(BadInputError, match="unpublished, different build"):
        publish(build_copy, root, tag="2026-03-01")
    res = publish(build_copy, root, tag="2026-03-01", discard_partial=True)
    assert res.uploaded == res.total_objects
    assert b'"other"' in (root / "2026-03-01" / "build.json").read_bytes()

    # the same build resumes: only what is missing is copied
    proc = run_cli(
        "publish",
        str(census_build),
        str(root),
        "--tag",
        "2026-03-02",
        env=cli_env(CELLCENSUS_TEST_FAIL_AFTER_UPLOADS="25", TMPDIR=str(tmp_path)),
    )
    assert proc.returncode == -9
    done = {
        p
        for p in (root / "2026-03-02").rglob("*")
        if p.is_file() and ".cellcensus-tmp-" not in p.name
    }
    res = publish(census_build, root, tag="2026-03-02")
    assert res.skipped == len(done) - 1 >= 25  # manifest.json is not an upload
    assert res.uploaded == res.total_objects - res.skipped
    assert not list(root.rglob("*.cellcensus-tmp-*"))  # partial copies of the killed run are gone
    assert set(read_directory(root).builds) == {"2026-03-01", "2026-03-02"}


class _CorruptingRoot(LocalRoot):
    """A root whose storage silently corrupts one file on write (fault injection)."""

    def upload_file(
        self,
        path: Path,
        key: str,
        *,
        sha256: str,
        callback: Callback | None = None,
    ) -> None:
        super().upload_file(path, key, sha256=sha256, callback=callback)
        if key.endswith(".h5ad"):
            p = self.path / key
            data = bytearray(p.read_bytes())
            data[100] ^= 0xFF
            p.write_bytes(bytes(data))


def test_publish_refuses_to_commit_what_did_not_land_intact(
    census_build: Path, tmp_path: Path
) -> None:
    root = _CorruptingRoot(tmp_path / "r")
    with pytest.raises(IntegrityError, match=r"h5ads/.*sha256.*release.json was not changed"):
        publish(census_build, root, tag="2026-04-01")
    assert not (tmp_path / "r" / "release.json").exists()


def test_mirrors(census_build: Path, tmp_path: Path) -> None:
    root = LocalRoot(tmp_path / "r")
    publish(census_build, root, tag="2026-05-01")
    d = add_mirror(root, "s3-copy", "s3://bucket", region="eu-west-1")
    assert d.default == "origin"
    assert d.mirrors["s3-copy"].base_uri == "s3://bucket/"
    assert d.mirrors["s3-copy"].provider == "S3"
    d = add_mirror(root, "disk", str(tmp_path / "copy"), make_default=True)
    assert d.default == "disk"
    assert d.mirrors["disk"].base_uri == f"file://{tmp_path}/copy/"
    with pytest.raises(BadInputError, match="--replace"):
        add_mirror(root, "disk", "s3://other/")
    with pytest.raises(BadInputError, match="unsupported scheme"):
        add_mirror(root, "web", "https://example.org/")
    with pytest.raises(BadInputError, match="relative path"):
        add_mirror(root, "rel", "some/dir")
    with pytest.raises(BadInputError, match="does not match"):
        add_mirror(root, "x", "s3://b/", provider="file")
    assert set_default_mirror(root, "origin").default == "origin"
    with pytest.raises(NotFoundError):
        set_default_mirror(root, "nope")
    env = cli_env(CELLCENSUS_RELEASE_ROOT=str(tmp_path / "r"))
    run_cli("mirrors", "set-default", "s3-copy", env=env, check=True)
    proc = run_cli("mirrors", "list", "--json", env=env, check=True)
    raw = json.loads(proc.stdout)
    assert raw["default"] == "s3-copy"
    assert raw["s3-copy"] == {
        "provider": "S3",
        "base_uri": "s3://bucket/",
        "region": "eu-west-1",
        "embeddings_base_uri": "s3://bucket/",
    }
