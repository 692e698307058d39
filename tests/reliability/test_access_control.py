"""Access control on the real S3 test server, through the command line, for the three
identities of ``tests/_s3server.py``: anonymous reads public releases only; the reader reads
everything and changes nothing (publish, retract, alias, pin, promote, cleanup, mirrors are all
refused with one clear line, and ``release.json`` is untouched); the publisher may do it all."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cellcensus.release import publish
from tests._cli import cli_env, run_cli, s3_cli_args

if TYPE_CHECKING:
    from pathlib import Path

    from tests._s3server import S3Env, S3Server

pytestmark = pytest.mark.s3


def _env(server: S3Server, who: str) -> dict[str, str]:
    if who == "anonymous":
        return cli_env(CELLCENSUS_S3_NO_SIGN_REQUEST="true")
    ident = {"reader": server.reader, "publisher": server.publisher}[who]
    return cli_env(
        AWS_ACCESS_KEY_ID=ident.access_key_id, AWS_SECRET_ACCESS_KEY=ident.secret_access_key
    )


def _changes(root: str, build: str) -> list[tuple[str, ...]]:
    return [
        ("publish", build, root, "--tag", "2026-11-08"),
        ("alias", "set", "V1", "2026-11-01", "--root", root),
        ("retract", "2026-10-01", "--reason", "test", "--root", root),
        ("pin", "2026-11-01", "--root", root),
        ("promote", "2026-11-01", "--root", root),
        ("cleanup", "--days", "0", "--root", root),
        ("mirrors", "add", "copy", "s3://elsewhere/", "--root", root),
    ]


@pytest.mark.slow
def test_who_may_read_and_change_what(s3: S3Env, census_build: Path, tmp_path: Path) -> None:
    public, private = s3.root_uri("public"), s3.root_uri("private")
    for root in (public, private):
        publish(census_build, root, tag="2026-10-01", settings=s3.publisher)
        publish(census_build, root, tag="2026-11-01", settings=s3.publisher)
    client = s3.publisher.boto3_client()

    def release_json(bucket: str) -> bytes:
        return client.get_object(Bucket=bucket, Key=f"{s3.prefix}/release.json")["Body"].read()

    endpoint = s3_cli_args(s3.server)

    def reads(root: str) -> list[tuple[str, ...]]:
        return [
            ("releases", "list", "--root", root),
            ("verify", root, "latest"),
            ("sync", root, "latest", str(tmp_path / "dest"), "--only", "soma", "--delete"),
        ]

    anon, reader = _env(s3.server, "anonymous"), _env(s3.server, "reader")
    for env, root, allowed in (
        (anon, public, True),
        (anon, private, False),
        (reader, private, True),
    ):
        for args in reads(root):
            proc = run_cli(*args, *endpoint, env=env)
            assert proc.returncode == (0 if allowed else 1), (root, args, proc.stderr)
            if not allowed:
                assert "refused" in proc.stderr or "denied" in proc.stderr.lower(), proc.stderr

    for env, bucket, root in ((anon, "public", public), (reader, "private", private)):
        before = release_json(bucket)
        for args in _changes(root, str(census_build)):
            proc = run_cli(*args, *endpoint, env=env)
            assert proc.returncode == 1, (args, proc.stdout)
            assert proc.stderr.strip().splitlines()[-1].startswith("error:"), proc.stderr
            assert "Traceback" not in proc.stderr
            assert s3.server.reader.secret_access_key not in proc.stderr
        assert release_json(bucket) == before, f"{root} changed"
        listed = client.list_objects_v2(Bucket=bucket, Prefix=s3.prefix).get("Contents", [])
        assert not [o for o in listed if "2026-11-08" in o["Key"] or "cleanup" in o["Key"]]

    before = release_json("private")
    env = _env(s3.server, "publisher")
    for args in _changes(private, str(census_build)):
        proc = run_cli(*args, *endpoint, env=env)
        assert proc.returncode == 0, (args, proc.stderr)
    assert release_json("private") != before
