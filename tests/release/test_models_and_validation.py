"""Tag/name/path validation (table-driven) and the JSON models (formats, versions, round trips)."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pytest

from cellcensus._formats.build import BuildInfo
from cellcensus._formats.directory import Locator
from cellcensus._formats.manifest import ManifestObject
from cellcensus.errors import (
    BadInputError,
    IntegrityError,
    NotFoundError,
    UnsupportedFormatError,
)
from cellcensus.release import (
    Manifest,
    MirrorDirectory,
    ReleaseDirectory,
    ReleaseEntry,
    open_root,
    plan_cleanup,
)
from cellcensus.release._validate import (
    tag_date,
    validate_name,
    validate_relative_path,
    validate_tag,
)
from tests._cli import run_cli

if TYPE_CHECKING:
    from pathlib import Path

    from cellcensus.release import ReleaseRoot


# ---------------------------------------------------------------------------- tags
@pytest.mark.parametrize("tag", ["2024-07-01", "1999-12-31", "2024-02-29"])
def test_date_tags_are_accepted(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(
    ("tag", "custom", "match"),
    [
        ("nightly", False, "not a date of the form YYYY-MM-DD"),
        ("2024-7-1", False, "not a date"),
        ("2024-02-30", False, "not a valid calendar date"),
        ("2024-13-01", True, "not a valid calendar date"),
        ("../2024-07-01", True, "path separator"),
        ("a/b", True, "path separator"),
        ("a\\b", True, "path separator"),
        ("a..b", True, "contains '..'"),
        ("..", True, "contains '..'"),
        ("", True, "is empty"),
        ("", False, "is empty"),
        ("   ", True, "is empty"),
        ("Latest", True, "reserved"),
        (".hidden", True, "not allowed"),
        ("-dash", True, "not allowed"),
        ("has space", True, "not allowed"),
        ("ünïcode", True, "not allowed"),
        ("x" * 101, True, "not allowed"),
        ("latest", True, "reserved"),
        ("stable", True, "reserved"),
        ("release.json", True, "reserved"),
        ("mirrors.json", True, "reserved"),
    ],
)
def test_bad_tags_are_refused_clearly(tag: str, custom: bool, match: str) -> None:
    with pytest.raises(BadInputError, match=match) as e:
        validate_tag(tag, allow_custom=custom)
    assert "tag" in str(e.value)


@pytest.mark.parametrize("tag", ["nightly-1", "2024-07-01-rc1", "v1.2.3", "A_b"])
def test_custom_tags_need_the_flag(tag: str) -> None:
    with pytest.raises(BadInputError, match="allow-custom-tag"):
        validate_tag(tag)
    assert validate_tag(tag, allow_custom=True) == tag


@pytest.mark.parametrize(
    ("tag", "date"),
    [
        ("2024-07-01", dt.date(2024, 7, 1)),
        ("2024-07-01-rc1", dt.date(2024, 7, 1)),
        ("nightly", None),
        ("2024-07-011", None),
    ],
)
def test_tag_date(tag: str, date: dt.date | None) -> None:
    assert tag_date(tag) == date


@pytest.mark.parametrize("name", ["default", "a/b", "..", "release.json", ""])
def test_bad_alias_names(name: str) -> None:
    with pytest.raises(BadInputError):
        validate_name(name)


@pytest.mark.parametrize(
    "path",
    ["../x", "/etc/passwd", "soma/../../x", "soma//x", "./soma", "soma\\x", "C:/x", "a\x00b", ""],
)
def test_unsafe_manifest_paths_are_refused(path: str) -> None:
    with pytest.raises(BadInputError, match="unsafe object path"):
        validate_relative_path(path, where="manifest.json")


@pytest.mark.parametrize(
    ("root", "match"),
    [
        ("gs://bucket/x", "unsupported scheme"),
        ("http://host/x", "unsupported scheme"),
        ("s3:///nobucket", "not an s3://bucket"),
        ("s3://bucket/a/../b", "invalid object key"),
        ("file://otherhost/x", "names a host"),
        ("file:///tmp/a/../b", "contains '..'"),
        ("/", "file-system root"),
    ],
)
def test_bad_release_roots(root: ReleaseRoot, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        open_root(root)


def test_cli_reports_a_bad_tag_without_traceback(census_build: Path, tmp_path: Path) -> None:
    proc = run_cli("publish", str(census_build), str(tmp_path / "root"), "--tag", "../evil")
    assert proc.returncode == 1
    assert "path separator" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "root").exists()
    proc = run_cli("publish", str(census_build), str(tmp_path / "root"), "--tag", "nightly")
    assert proc.returncode == 1
    assert "--allow-custom-tag" in proc.stderr


# ---------------------------------------------------------------------------- release.json
def _entry(tag: str, **kw: object) -> ReleaseEntry:
    loc = Locator(uri=f"s3://b/cc/{tag}/soma/", relative_uri=f"cc/{tag}/soma/", s3_region="r")
    return ReleaseEntry(release_build=tag, soma=loc, h5ads=loc, **kw)  # type: ignore[arg-type]


def test_release_directory_round_trip_and_official_shape() -> None:
    d = ReleaseDirectory()
    d = d.with_build(_entry("2024-01-01", lts=True))
    d = d.with_build(_entry("2024-02-01"))
    d = d.with_alias("V1", "2024-01-01")
    raw = json.loads(d.to_json())
    assert raw["latest"] == "2024-02-01"
    assert raw["stable"] == "2024-01-01"
    assert raw["V1"] == "2024-01-01"
    e = raw["2024-01-01"]
    assert e["flags"] == {"lts": True, "retracted": False}
    assert e["soma"]["relative_uri"] == "cc/2024-01-01/soma/"
    assert not e["soma"]["relative_uri"].startswith("/")
    assert set(e) >= {"release_date", "release_build", "soma", "h5ads", "flags", "do_not_delete"}
    assert ReleaseDirectory.from_json(d.to_json()) == d


def test_release_directory_reads_official_files_and_keeps_unknown_keys() -> None:
    official = {
        "stable": "V2",
        "V2": "2023-12-15",
        "latest": "2024-07-01",
        "2023-12-15": {
            "release_date": None,
            "release_build": "2023-12-15",
            "soma": {
                "uri": "s3://cellxgene-census-public-us-west-2/cell-census/2023-12-15/soma/",
                "relative_uri": "/cell-census/2023-12-15/soma/",
                "s3_region": "us-west-2",
            },
            "h5ads": {
                "uri": "s3://cellxgene-census-public-us-west-2/cell-census/2023-12-15/h5ads/",
                "relative_uri": "/cell-census/2023-12-15/h5ads/",
                "s3_region": "us-west-2",
            },
            "do_not_delete": True,
            "flags": {"lts": True},
            "something_new": {"x": 1},
        },
        "2024-07-01": {
            "release_build": "2024-07-01",
            "soma": {"uri": "s3://b/cell-census/2024-07-01/soma/"},
            "h5ads": {"uri": "s3://b/cell-census/2024-07-01/h5ads/"},
        },
    }
    d = ReleaseDirectory.from_json(json.dumps(official).encode())
    assert d.resolve("stable") == "2023-12-15"
    assert d.builds["2023-12-15"].soma.relative_uri == "/cell-census/2023-12-15/soma/"
    again = json.loads(d.to_json())
    assert again["2023-12-15"]["something_new"] == {"x": 1}
    assert again["2023-12-15"]["do_not_delete"] is True


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ([], "top level must be an object"),
        ({"x": 3}, "must be an alias"),
        ({"a": {"release_build": "b", "soma": {}, "h5ads": {}}}, "entry is named"),
        ({"a": {"release_build": "a", "h5ads": {"uri": "x"}}}, "'soma' is missing"),
    ],
)
def test_malformed_release_json(doc: object, match: str) -> None:
    with pytest.raises(BadInputError, match=match):
        ReleaseDirectory.from_json(json.dumps(doc).encode())


def test_alias_resolution_errors() -> None:
    d = ReleaseDirectory(builds={"2024-01-01": _entry("2024-01-01")}, aliases={"a": "b", "b": "a"})
    with pytest.raises(NotFoundError, match="alias loop"):
        d.resolve("a")
    with pytest.raises(NotFoundError, match="known names"):
        d.resolve("2099-01-01")


def test_latest_and_stable_skip_retracted_builds() -> None:
    d = ReleaseDirectory().with_build(_entry("2024-01-01", lts=True))
    d = d.with_build(_entry("2024-02-01", lts=True, retracted=True))
    d = d.with_build(_entry("2024-03-01", retracted=True))
    assert d.aliases == {"latest": "2024-01-01", "stable": "2024-01-01"}


def test_cleanup_plan_is_pure_and_exact() -> None:
    today = dt.date(2024, 6, 30)
    d = ReleaseDirectory()
    for tag, kw in [
        ("2024-01-01", {"lts": True}),  # old LTS: kept
        ("2024-02-01", {}),  # old weekly: deleted
        ("2024-03-01", {"do_not_delete": True}),  # old pinned: kept
        ("2024-04-01", {}),  # old, aliased V9: kept
        ("2024-05-01", {}),  # old weekly: deleted
        ("2024-05-29", {}),  # exactly 32 days old: kept
        ("2024-06-20", {}),  # young weekly: kept
        ("2024-06-25", {}),  # newest: kept
    ]:
        d = d.with_build(_entry(tag, **kw))
    d = d.with_alias("V9", "2024-04-01")
    plan = plan_cleanup(d, days=32, today=today)
    assert plan.delete == ["2024-05-01", "2024-02-01"]
    assert plan.keep["2024-01-01"] == "LTS"
    assert plan.keep["2024-03-01"].startswith("pinned")
    assert plan.keep["2024-04-01"] == "aliased as V9"
    assert plan.keep["2024-05-29"].startswith("younger")
    assert plan.keep["2024-06-25"].startswith("aliased as latest")


def test_newest_build_is_never_deleted_even_if_old() -> None:
    d = ReleaseDirectory(builds={"2020-01-01": _entry("2020-01-01")})
    assert plan_cleanup(d, days=1, today=dt.date(2024, 1, 1)).delete == []


# ------------------------------------------------------------------ manifest / build / mirrors
def test_manifest_round_trip_and_version_check() -> None:
    m = Manifest(
        tag="2024-01-01",
        objects=(ManifestObject(path="soma/a", size=3, sha256="ab" * 32),),
        created_at="now",
    )
    assert Manifest.from_json(m.to_json()) == m
    raw = json.loads(m.to_json())
    raw["format_version"] = 99
    with pytest.raises(UnsupportedFormatError, match=r"format_version 99.*upgrade cellcensus"):
        Manifest.from_json(json.dumps(raw).encode())
    raw["format_version"] = 1
    raw["objects"][0]["path"] = "../../etc/passwd"
    with pytest.raises(BadInputError, match="unsafe object path"):
        Manifest.from_json(json.dumps(raw).encode())
    raw["objects"] = [raw["objects"][0] | {"path": "a"}] * 2
    with pytest.raises(IntegrityError, match="listed twice"):
        Manifest.from_json(json.dumps(raw).encode())


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        (b'{"format_version": 2}', UnsupportedFormatError, "format_version 2"),
        (b'{"no_version": 1}', BadInputError, "'format_version' is None"),
        (b"[1]", BadInputError, "JSON object"),
        (b"{not json", BadInputError, "not valid JSON"),
    ],
)
def test_build_json_versions(content: bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        BuildInfo.from_json(content)
    assert BuildInfo.from_json(b'{"format_version": 1, "x": [1]}').data["x"] == [1]


def test_mirrors_round_trip() -> None:
    raw: dict[str, Any] = {
        "default": "a",
        "a": {
            "provider": "S3",
            "base_uri": "s3://b/",
            "region": "r",
            "embeddings_base_uri": "s3://e/",
        },
        "b": {"provider": "file", "base_uri": "file:///x/", "region": None, "extra": 1},
    }
    m = MirrorDirectory.from_json(json.dumps(raw).encode())
    assert m.default == "a"
    assert json.loads(m.to_json()) == raw | {"b": raw["b"] | {"embeddings_base_uri": "file:///x/"}}
