"""``Settings`` froze a profile's temporary credentials into static keys, so SSO / assume-role
credentials expired in a long publish or sync. A profile's credentials are now read through a
refreshing boto3 session: a real ``credential_process`` (botocore's provider chain) hands out
short-lived keys, and every request signs with the current ones.

Also here: no secret in DEBUG logs, errors or release files (``publish -v`` with botocore at
DEBUG, against the real S3 server)."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import TYPE_CHECKING

import pytest

from cellcensus.release import publish, read_directory, verify
from cellcensus.release._local import LocalRoot
from cellcensus.settings import Settings
from tests._cli import publisher_env, run_cli, s3_cli_args

if TYPE_CHECKING:
    from pathlib import Path

    from tests._s3server import S3Env, S3Server

pytestmark = pytest.mark.s3


def _credential_process(tmp_path: Path, server: S3Server) -> tuple[Path, Path]:
    """A profile whose credential_process hands out the *reader's* keys first, about to
    expire, then the publisher's: what a rotation of temporary credentials looks like."""
    calls = tmp_path / "calls.txt"
    script = tmp_path / "creds.py"
    script.write_text(
        f"""
import datetime as dt, json, pathlib
calls = pathlib.Path({str(calls)!r})
n = len(calls.read_text().splitlines()) if calls.exists() else 0
calls.write_text(calls.read_text() + "x\\n" if calls.exists() else "x\\n")
now = dt.datetime.now(dt.timezone.utc)
first = n == 0
print(json.dumps({{
    "Version": 1,
    "AccessKeyId": {server.reader.access_key_id!r} if first else {server.publisher.access_key_id!r},
    "SecretAccessKey": {server.reader.secret_access_key!r} if first
        else {server.publisher.secret_access_key!r},
    "Expiration": (now + dt.timedelta(seconds=5 if first else 300)).isoformat(),
}}))
"""
    )
    config = tmp_path / "config"
    config.write_text(
        f"[profile census]\ncredential_process = {sys.executable} {script}\nregion = us-east-1\n"
    )
    return config, calls


@pytest.mark.slow  # 19 s CPU measured (2026-12-02)
def test_profile_credentials_are_refreshed_during_a_publish(
    s3: S3Env, census_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, calls = _credential_process(tmp_path, s3.server)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    settings = Settings.resolve(profile="census", endpoint_url=s3.server.endpoint_url, env={})
    assert settings.access_key_id is None  # nothing frozen into the settings
    assert settings.has_credentials
    assert not calls.exists()  # resolving reads no credentials yet
    uri = s3.root_uri("private")
    publish(census_build, uri, tag="2026-11-01", settings=settings)
    assert len(calls.read_text().splitlines()) >= 2  # refreshed while publishing
    assert read_directory(uri, settings).resolve("latest") == "2026-11-01"
    assert verify(uri, "2026-11-01", settings=settings).ok
    # TileDB gets the credentials in effect when its context is made
    cfg = settings.tiledb_config()
    assert cfg["vfs.s3.aws_access_key_id"] == s3.server.publisher.access_key_id
    assert s3.server.publisher.secret_access_key not in repr(settings)


@pytest.mark.slow  # 20 s CPU measured (2026-12-02)
def test_no_secret_in_debug_logs_errors_or_files(
    s3: S3Env, census_build: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = s3.server.publisher.secret_access_key
    token = "session-token-" + os.urandom(8).hex()
    uri = s3.root_uri("private")
    env = publisher_env(s3.server) | {"AWS_SESSION_TOKEN": token}
    proc = run_cli(
        "-v", "publish", str(census_build), uri, "--tag", "2026-11-01", *s3_cli_args(s3.server),
        env=env,
    )  # fmt: skip
    # SeaweedFS rejects the unknown session token or accepts it; either way nothing leaks
    for text in (proc.stdout, proc.stderr):
        assert secret not in text
        assert token not in text
    assert "DEBUG" in proc.stderr or "debug" in proc.stderr.lower()  # botocore logged
    # errors (a refused write, as the reader) carry no secret either
    reader = run_cli(
        "-v", "publish", str(census_build), uri, "--tag", "2026-11-02", *s3_cli_args(s3.server),
        env=publisher_env(s3.server) | {
            "AWS_ACCESS_KEY_ID": s3.server.reader.access_key_id,
            "AWS_SECRET_ACCESS_KEY": s3.server.reader.secret_access_key,
        },
    )  # fmt: skip
    assert reader.returncode == 1
    assert s3.server.reader.secret_access_key not in reader.stderr + reader.stdout
    # in-process at DEBUG: every logger, botocore's included
    caplog.set_level(logging.DEBUG)
    local = LocalRoot(tmp_path / "root", s3.publisher)
    publish(census_build, local, tag="2026-11-03")
    publish(census_build, uri.replace("private", "public"), tag="2026-11-03",
            settings=s3.publisher)  # fmt: skip
    assert secret not in caplog.text
    # nor in anything written to a release root
    for p in local.path.rglob("*"):
        if p.is_file():
            assert secret.encode() not in p.read_bytes(), p
    doc = json.loads((local.path / "release.json").read_text())
    assert secret not in json.dumps(doc)
