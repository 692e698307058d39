"""Malformed ``release.json`` / ``mirrors.json`` / ``manifest.json``, alias loops, dangling
aliases and unknown format versions, property-based: the release commands and the client
resolve or raise one ``CellCensusError``; nothing else escapes, nothing is rewritten."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cellcensus
import cellcensus.client
from cellcensus.errors import (
    BadInputError,
    CellCensusError,
    NotFoundError,
    UnsupportedFormatError,
)
from cellcensus.release import Manifest, ReleaseDirectory, publish, read_directory
from cellcensus.release import sync as do_sync
from cellcensus.release._local import LocalRoot
from tests._cli import cli_env, run_cli

if TYPE_CHECKING:
    from pathlib import Path

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=6)
)
_json = st.recursive(
    _scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=12,
)
_names = st.sampled_from(["latest", "stable", "2026-11-01", "V1", "V2", "x", ""])
_locator = st.one_of(
    _json,
    st.fixed_dictionaries(
        {},
        optional={
            "uri": st.one_of(st.text(max_size=10), st.integers(), st.none()),
            "relative_uri": st.one_of(
                st.sampled_from(["root/2026-11-01/soma/", "/", ""]), st.integers(), st.none()
            ),
            "s3_region": _scalars,
        },
    ),
)
_entry = st.fixed_dictionaries(
    {},
    optional={
        "release_build": st.one_of(_names, _scalars),
        "release_date": _scalars,
        "soma": _locator,
        "h5ads": _locator,
        "flags": st.one_of(_json, st.fixed_dictionaries({"lts": _scalars, "retracted": _scalars})),
        "retraction": _json,
        "do_not_delete": _scalars,
    },
)
_directory = st.dictionaries(_names, st.one_of(_names, _entry, _json), max_size=5)
_mirrors = st.dictionaries(
    st.sampled_from(["default", "origin", "m2"]),
    st.one_of(
        st.sampled_from(["origin", "m2", "nope"]),
        st.fixed_dictionaries(
            {},
            optional={
                "provider": st.sampled_from(["S3", "file", "gcs", ""]),
                "base_uri": st.one_of(st.text(max_size=8), st.integers()),
                "region": _scalars,
            },
        ),
        _json,
    ),
    max_size=3,
)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, census_build: Path) -> LocalRoot:
    root = LocalRoot(tmp_path_factory.mktemp("dirfiles") / "root")
    publish(census_build, root, tag="2026-11-01")
    return root


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=_directory, name=_names)
def test_release_json_parses_or_is_one_error(doc: object, name: str) -> None:
    data = json.dumps(doc).encode()
    try:
        d = ReleaseDirectory.from_json(data)
    except BadInputError as e:
        assert "release.json" in str(e)  # noqa: PT017 - an error is one allowed outcome
        return
    try:
        tag = d.resolve(name)
    except NotFoundError as e:
        assert "release.json" in str(e) or "alias loop" in str(e)  # noqa: PT017 - an error is one allowed outcome
        return
    assert tag in d.builds


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=st.one_of(_directory, _json), mirrors=st.one_of(_mirrors, _json), name=_names)
def test_the_client_resolves_or_raises_one_error(
    published: LocalRoot, tmp_path: Path, doc: object, mirrors: object, name: str
) -> None:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    (root / "release.json").write_text(json.dumps(doc))
    (root / "mirrors.json").write_text(json.dumps(mirrors))
    cellcensus.client.clear_cache()
    for call in (
        lambda: cellcensus.get_census_version_directory(release_root=str(root)),
        lambda: cellcensus.get_census_mirror_directory(release_root=str(root)),
        lambda: cellcensus.client.resolve_release(name, release_root=str(root)),
    ):
        try:
            call()
        except CellCensusError as e:
            assert str(e)  # noqa: PT017 - an error is one allowed outcome


def test_alias_loops_dangling_aliases_and_unknown_versions_are_clear(
    published: LocalRoot, tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "root"
    shutil.copytree(published.path, root)
    doc = json.loads((root / "release.json").read_text())
    doc.update({"V1": "V2", "V2": "V1", "V3": "gone"})
    (root / "release.json").write_text(json.dumps(doc))
    d = read_directory(root)
    with pytest.raises(NotFoundError, match="alias loop"):
        d.resolve("V1")
    with pytest.raises(NotFoundError, match="V3"):
        d.resolve("V3")
    env = cli_env()
    for args in (
        ("releases", "show", "V1", "--root", str(root)),
        ("sync", str(root), "V3", str(tmp_path / "d")),
        ("verify", str(root), "V2"),
    ):
        proc = run_cli(*args, env=env)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("error:")
    assert run_cli("releases", "list", "--root", str(root), env=env).returncode == 0
    # a manifest of an unknown format version: upgrade, not a crash
    m = json.loads((root / "2026-11-01" / "manifest.json").read_text())
    m["format_version"] = 99
    (root / "2026-11-01" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UnsupportedFormatError, match="upgrade cellcensus"):
        do_sync(root, "2026-11-01", tmp_path / "d2")
    proc = run_cli("verify", str(root), "latest", env=env)
    assert proc.returncode == 1
    assert "upgrade cellcensus" in proc.stderr


@settings(max_examples=200, deadline=None)
@given(
    objects=st.lists(
        st.one_of(
            _json,
            st.fixed_dictionaries(
                {
                    "path": st.one_of(
                        st.sampled_from(["soma/a", "../x", "/abs", "a//b", "manifest.json",
                                         ".cellcensus-sync.json", "soma/./a", "h5ads/x.h5ad"]),
                        st.text(max_size=8),
                    ),
                    "size": st.one_of(st.integers(-2, 10), st.booleans(), st.text(max_size=2)),
                    "sha256": st.one_of(st.just("0" * 64), st.text(max_size=4)),
                }
            ),
        ),
        max_size=4,
    ),
    version=st.one_of(st.just(1), _scalars),
)  # fmt: skip
def test_manifest_json_parses_or_is_one_error(objects: object, version: object) -> None:
    data = json.dumps({"format_version": version, "tag": "t", "objects": objects}).encode()
    try:
        m = Manifest.from_json(data)
    except CellCensusError:
        return
    for o in m.objects:
        assert not o.path.startswith("/")
        assert ".." not in o.path.split("/")
