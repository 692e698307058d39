"""Retraction and alias misuse, the secret-leak check, error counts and sizes, and concurrent
``publish --discard-partial``: each was accepted silently, misfired, or crashed."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from cellcensus.errors import BadInputError, CellCensusError, NotFoundError
from cellcensus.release import publish, read_directory, remove_alias, retract, set_alias, verify
from cellcensus.release._local import LocalRoot
from cellcensus.settings import Settings
from tests._cli import cli_env, run_cli

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def three_builds(tmp_path_factory: pytest.TempPathFactory, census_build: Path) -> Path:
    """A directory root with three published builds (the test copies it before changing it)."""
    root = tmp_path_factory.mktemp("misuse") / "root"
    for tag in ("2026-01-01", "2026-01-08", "2026-01-15"):
        publish(census_build, root, tag=tag)
    return root


@pytest.fixture
def root(three_builds: Path, tmp_path: Path) -> LocalRoot:
    import shutil

    dest = tmp_path / "root"
    shutil.copytree(three_builds, dest)
    return LocalRoot(dest)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reason": "line one\nline two"}, "control characters"),
        ({"reason": "x" * 5000}, "keep it under 1000"),
        ({"reason": "bad", "info_url": "javascript:alert(1)"}, "not an http"),
        ({"reason": "bad", "info_url": "see the wiki"}, "not an http"),
        ({"reason": "bad", "replaced_by": "2026-01-15"}, "cannot be replaced by itself"),
        ({"reason": "bad", "replaced_by": "latest"}, "cannot be replaced by itself"),
    ],
)
def test_retraction_misuse_is_refused(root: LocalRoot, kwargs: dict[str, Any], match: str) -> None:
    before = root.read_bytes("release.json")
    with pytest.raises(BadInputError, match=match):
        retract(root, "2026-01-15", **kwargs)
    assert root.read_bytes("release.json") == before  # nothing changed


def test_retraction_rules(root: LocalRoot) -> None:
    with pytest.raises(NotFoundError, match="--replaced-by 'nope'"):
        retract(root, "2026-01-15", reason="x", replaced_by="nope")
    set_alias(root, "V1", "2026-01-08")
    d = retract(root, "2026-01-15", reason="wrong genes", replaced_by="V1")
    retraction = d.builds["2026-01-15"].retraction
    assert retraction is not None
    assert retraction.replaced_by == "2026-01-08"  # the tag, not an alias that may move
    # the same retraction again (a re-run) is a no-op; a different one is refused
    same = root.read_bytes("release.json")
    retract(root, "2026-01-15", reason="wrong genes", replaced_by="2026-01-08")
    assert root.read_bytes("release.json") == same
    with pytest.raises(BadInputError, match="already retracted"):
        retract(root, "2026-01-15", reason="another reason")
    # a retracted build cannot replace another one
    with pytest.raises(BadInputError, match="retracted itself"):
        retract(root, "2026-01-08", reason="x", replaced_by="2026-01-15")


def test_alias_misuse_is_refused(root: LocalRoot) -> None:
    retract(root, "2026-01-15", reason="wrong genes")
    before = root.read_bytes("release.json")
    with pytest.raises(BadInputError, match="retracted build"):
        set_alias(root, "V3", "2026-01-15")
    with pytest.raises(BadInputError, match="looks like a date tag"):
        set_alias(root, "2026-02-01", "2026-01-08")
    with pytest.raises(BadInputError, match="confused with 'latest'"):
        set_alias(root, "Latest", "2026-01-08")
    with pytest.raises(BadInputError, match="empty"):
        set_alias(root, "", "2026-01-08")
    assert root.read_bytes("release.json") == before
    set_alias(root, "V1", "2026-01-08")
    set_alias(root, "V2", "V1")
    with pytest.raises(BadInputError, match="loop"):
        set_alias(root, "V1", "V2")
    with pytest.raises(BadInputError, match="dangling"):
        remove_alias(root, "V1")
    with pytest.raises(NotFoundError, match="it is a build tag"):
        remove_alias(root, "2026-01-08")
    remove_alias(root, "V2")
    remove_alias(root, "V1")
    assert set(read_directory(root).aliases) == {"latest"}


def test_cli_misuse_is_one_line(root: LocalRoot) -> None:
    env = cli_env(CELLCENSUS_RELEASE_ROOT=str(root.path))
    for args in (
        ("retract", "2026-01-08", "--reason", "x", "--info-url", "ftp://x"),
        ("retract", "latest", "--reason", "x"),
        ("alias", "set", "stable", "2026-01-08"),
        ("alias", "remove", "latest"),
        ("pin", "V9"),
        ("promote", "nope"),
    ):
        proc = run_cli(*args, env=env)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr.startswith("error:"), proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_secret_check_does_not_misfire_on_short_secrets(build_copy: Path, tmp_path: Path) -> None:
    # a short secret (a test server's "2026") appears in any build.json: it must not refuse
    doc = json.loads((build_copy / "build.json").read_text())
    assert "2026" in json.dumps(doc)
    short = Settings(access_key_id="AK", secret_access_key="2026")  # noqa: S106 - a test key
    publish(build_copy, LocalRoot(tmp_path / "r1", short), tag="2026-11-01")
    # a real secret is found raw, and inside JSON string escapes
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: S105 - the AWS docs' example
    long = Settings(access_key_id="AKIDEXAMPLE", secret_access_key=secret)
    for text in (secret, secret.replace("/", "\\/")):
        doc["config"] = f"endpoint with key {text}"
        (build_copy / "build.json").write_text(json.dumps(doc).replace("\\\\/", "\\/"))
        with pytest.raises(BadInputError, match="contains the S3 secret"):
            publish(build_copy, LocalRoot(tmp_path / "r2", long), tag="2026-11-02")


def test_verify_counts_missing_and_unexpected_objects_apart(root: LocalRoot) -> None:
    build = root.path / "2026-01-08"
    victim = next(p for p in sorted(build.rglob("*.tdb")) if p.is_file())
    victim.unlink()
    for i in range(3):
        (build / "soma" / f"stray-{i}.bin").write_bytes(b"x")
    report = verify(root, "2026-01-08")
    assert (report.mismatched, report.unexpected) == (1, 3)
    proc = run_cli("verify", str(root.path), "2026-01-08", env=cli_env())
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()[-1]
    total = report.checked
    assert f"1 of the {total} objects under" in err
    assert "do not match manifest.json (missing or changed)" in err
    assert "3 objects under" in err
    assert "not in manifest.json" in err


@pytest.mark.parametrize(
    "args",
    [
        ("publish", "{build}", "{root}", "--tag", "x" * 20000, "--allow-custom-tag"),
        ("alias", "set", "V" * 20000, "2026-01-08", "--root", "{root}"),
        ("retract", "2026-01-08", "--reason", "y" * 20000, "--root", "{root}"),
        ("releases", "show", "z" * 20000, "--root", "{root}"),
    ],
)
def test_errors_stay_short_whatever_the_input(
    root: LocalRoot, census_build: Path, args: list[str]
) -> None:
    argv = [a.format(build=census_build, root=root.path) for a in args]
    proc = run_cli(*argv, env=cli_env())
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("error:")
    assert len(err.splitlines()) == 1
    assert len(err) < 3000, len(err)


@pytest.mark.slow  # 14.5 s: concurrent publishes in subprocesses
def test_concurrent_discard_partial_publishes_never_crash(
    census_build: Path, other_build: Path, tmp_path: Path
) -> None:
    """Two publishers of different builds under one tag, both with --discard-partial: each
    ends with success or one clear error, never a traceback, and release.json never lists a
    build that does not verify."""
    env = cli_env()
    for trial in range(3):
        root = tmp_path / f"root{trial}"
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cellcensus._cli",
                    "publish",
                    str(b),
                    str(root),
                    "--tag",
                    "2026-11-01",
                    "--discard-partial",
                    "--jobs",
                    "2",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for b in (census_build, other_build)
        ]
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (_out, err) in zip(procs, outs, strict=True):
            assert "Traceback" not in err, err
            assert p.returncode in (0, 1), err
            if p.returncode:
                assert err.strip().splitlines()[-1].startswith("error:"), err
        d = read_directory(root)
        for tag in d.builds:
            assert verify(root, tag).ok
        try:
            d.resolve("latest")
        except CellCensusError:
            assert not d.builds
