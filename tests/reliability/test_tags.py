"""Defect 3: an empty tag was accepted as "no tag" (publishing under today's date and moving
``latest``), and ``build --tag`` and ``publish --tag`` accepted different tag sets. One rule
(``validate_tag``), one error, for both."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cellcensus.builder import BuildOptions, build_census
from cellcensus.errors import BadInputError
from cellcensus.release import publish, read_directory
from cellcensus.release._local import LocalRoot
from tests._cli import cli_env, run_cli

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("tag", "match"),
    [
        ("", "is empty"),
        ("  ", "is empty"),
        ("latest", "reserved"),
        ("stable", "reserved"),
        ("Latest", "reserved"),
        ("release.json", "reserved"),
        ("a/b", "path separator"),
        ("x" * 101, "not allowed"),
    ],
)
def test_build_and_publish_refuse_the_same_tags_with_the_same_error(
    tag: str, match: str, census_build: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    with pytest.raises(BadInputError, match=match) as built:
        build_census(tiny_corpus, tmp_path / "out", options=BuildOptions(tag=tag))
    root = LocalRoot(tmp_path / "root")
    with pytest.raises(BadInputError, match=match) as published:
        publish(census_build, root, tag=tag, allow_custom_tag=True)
    assert str(built.value) == str(published.value)
    assert not (tmp_path / "out").exists()
    assert not root.path.exists() or not (root.path / "release.json").exists()


def test_empty_tag_on_the_command_line_moves_nothing(
    census_build: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    publish(census_build, root, tag="2026-11-01")
    before = read_directory(root)
    env = cli_env()
    pub = run_cli("publish", str(census_build), str(root), "--tag", "", env=env)
    bld = run_cli("build", str(tiny_corpus), str(tmp_path / "out"), "--tag", "", env=env)
    for proc in (pub, bld):
        assert proc.returncode == 1, proc.stderr
        assert (
            proc.stderr.strip().splitlines()[-1].startswith("error: field 'tag': tag '' is empty")
        )
    assert read_directory(root) == before  # latest did not move


def test_a_custom_tag_the_builder_accepts_can_be_published(
    census_build: Path, tmp_path: Path
) -> None:
    publish(census_build, tmp_path / "root", tag="nightly-7", allow_custom_tag=True)
    with pytest.raises(BadInputError, match="--allow-custom-tag"):
        publish(census_build, tmp_path / "root", tag="nightly-8")
