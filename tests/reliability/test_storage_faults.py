"""Storage faults on the real S3 test server: stopped mid-upload and mid-download, then
restarted; hung (SIGSTOP). Each ends in one clear error, nothing half-done is committed, and
once the server is back the same command resumes and completes. Timeouts and attempts are
configurable (``CELLCENSUS_S3_CONNECT_TIMEOUT`` / ``READ_TIMEOUT`` / ``MAX_ATTEMPTS``) and the
error says which one ran out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from cellcensus.release import publish, read_directory, verify
from cellcensus.release.sync import PART_SUFFIX, read_sync_state
from tests._s3server import S3Server, make_settings
from tests._tinybuild import write_tiny_build

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.s3

#: Short limits so a dead server fails the command in seconds.
FAST_FAIL = {
    "CELLCENSUS_S3_CONNECT_TIMEOUT": "2",
    "CELLCENSUS_S3_READ_TIMEOUT": "3",
    "CELLCENSUS_S3_MAX_ATTEMPTS": "2",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A server of this module's own: the tests kill, pause and restart it."""
    srv = S3Server(tmp_path_factory.mktemp("faulty-s3"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def big_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build with three 24 MB h5ads: long enough to stop the server in the middle."""
    out = write_tiny_build(tmp_path_factory.mktemp("bigbuild") / "build", note="big")
    for i in range(3):
        (out / "h5ads" / f"big-{i}.h5ad").write_bytes(os.urandom(24 * 1024 * 1024))
    return out


def _env(server: S3Server, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        COLUMNS="200",
        AWS_ACCESS_KEY_ID=server.publisher.access_key_id,
        AWS_SECRET_ACCESS_KEY=server.publisher.secret_access_key,
        CELLCENSUS_S3_ENDPOINT_URL=server.endpoint_url,
        **extra,
    )
    return env


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cellcensus._cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(cond: Callable[[], object], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            msg = "condition not reached"
            raise AssertionError(msg)
        time.sleep(0.02)


def _one_clear_error(err: str, *words: str) -> str:
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error:"), err
    for w in words:
        assert w in line, line
    return line


@pytest.mark.slow  # 22 s: a server killed and restarted
def test_server_killed_mid_upload_then_restarted(
    server: S3Server, big_build: Path, tmp_path: Path
) -> None:
    uri = f"s3://private/upload-{os.urandom(3).hex()}/"
    settings = make_settings(server, "publisher")
    client = settings.boto3_client()
    prefix = uri.split("/", 3)[3]
    proc = _cli("publish", str(big_build), uri, "--tag", "2026-11-01", "--jobs", "2",
                env=_env(server, **FAST_FAIL))  # fmt: skip

    def uploading() -> bool:
        got = client.list_objects_v2(Bucket="private", Prefix=prefix + "2026-11-01/")
        return got.get("KeyCount", 0) >= 3  # the claim and some objects

    _wait_for(uploading)
    server.kill()  # a crash in the middle of the upload
    _out, err = proc.communicate(timeout=300)
    server.restart()
    assert proc.returncode == 1, err
    _one_clear_error(err, "S3 endpoint")
    assert "2026-11-01" not in read_directory(uri, settings).builds  # nothing committed
    done = _cli("publish", str(big_build), uri, "--tag", "2026-11-01", env=_env(server))
    _out, err = done.communicate(timeout=600)
    assert done.returncode == 0, err
    assert verify(uri, "2026-11-01", settings=settings).ok


@pytest.mark.slow  # 12.5 s: a server killed and restarted
def test_server_killed_mid_download_then_restarted(
    server: S3Server, big_build: Path, tmp_path: Path
) -> None:
    uri = f"s3://private/download-{os.urandom(3).hex()}/"
    settings = make_settings(server, "publisher")
    publish(big_build, uri, tag="2026-11-01", settings=settings)
    dest = tmp_path / "dest"
    proc = _cli("sync", uri, "2026-11-01", str(dest), "--jobs", "2", env=_env(server, **FAST_FAIL))

    def downloading() -> bool:
        return dest.is_dir() and any(p.name.endswith(PART_SUFFIX) for p in dest.rglob("*.h5ad*"))

    _wait_for(downloading)
    server.kill()
    _out, err = proc.communicate(timeout=300)
    server.restart()
    assert proc.returncode == 1, err
    _one_clear_error(err)
    assert not [p for p in dest.rglob("*") if PART_SUFFIX in p.name]  # no partial file kept
    state = read_sync_state(dest)
    assert state is not None
    assert not state.complete
    done = _cli("sync", uri, "2026-11-01", str(dest), env=_env(server))
    _out, err = done.communicate(timeout=600)
    assert done.returncode == 0, err
    assert read_sync_state(dest).complete  # type: ignore[union-attr]
    for p in (big_build / "h5ads").iterdir():
        assert (dest / "h5ads" / p.name).read_bytes() == p.read_bytes()
    shutil.rmtree(dest)


@pytest.mark.slow  # 20 s: waits out the configured timeouts
def test_a_hung_server_times_out_as_configured(
    server: S3Server, census_build: Path, tmp_path: Path
) -> None:
    uri = f"s3://private/hung-{os.urandom(3).hex()}/"
    settings = make_settings(server, "publisher")
    publish(census_build, uri, tag="2026-11-01", settings=settings)
    server.pause()
    try:
        env = _env(server, CELLCENSUS_S3_READ_TIMEOUT="1.5", CELLCENSUS_S3_MAX_ATTEMPTS="1")
        t0 = time.monotonic()
        listing = _cli("releases", "list", "--root", uri, env=env)
        _out, err = listing.communicate(timeout=120)
        seconds = time.monotonic() - t0
        sync = _cli("sync", uri, "2026-11-01", str(tmp_path / "d"), env=env)
        _out, sync_err = sync.communicate(timeout=120)
    finally:
        server.resume()
    assert listing.returncode == 1
    line = _one_clear_error(err, "read timeout of 1.5 s", "CELLCENSUS_S3_READ_TIMEOUT")
    assert "(1 attempt)" in line
    assert seconds < 60  # the configured limit applied, not the default 60 s x 5 attempts
    assert sync.returncode == 1
    _one_clear_error(sync_err, "timeout")
    # and once it answers again, the same commands work
    assert verify(uri, "2026-11-01", settings=settings).ok
