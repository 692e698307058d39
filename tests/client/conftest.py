"""Fixtures of the client tests: the builder's census published to a local release root (two
builds: an LTS and a weekly one), a local HTTP server for http(s) roots, and the SeaweedFS S3
server with the same release published to a bucket."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import socket
import threading
from collections.abc import Callable, Iterator  # noqa: TC003 - pytest resolves fixture annotations
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import cellcensus.client._directory as directory
from cellcensus.release import publish
from cellcensus.release._s3 import S3Root
from cellcensus.settings import Settings, reset_configuration

if TYPE_CHECKING:
    from tests._s3server import S3Server

LTS_TAG = "2026-11-01"
WEEKLY_TAG = "2026-11-08"
HUMAN = "homo_sapiens"
MOUSE = "mus_musculus"


# ---------------------------------------------------------------------------- isolation
@pytest.fixture(autouse=True)
def _isolated_client(isolated_aws_env: None) -> Iterator[None]:
    """A fresh client config and directory cache for every test (after the root's
    ``isolated_aws_env``: no AWS/CELLCENSUS settings from the machine)."""
    reset_configuration()
    directory.clear_cache()
    yield
    reset_configuration()
    directory.clear_cache()


# ---------------------------------------------------------------------------- local release root
@pytest.fixture(scope="session")
def release_root(census_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local release root with the builder's census published twice: ``LTS_TAG`` (LTS, so
    ``stable``) and ``WEEKLY_TAG`` (``latest``)."""
    root = tmp_path_factory.mktemp("client-root") / "cell-census"
    publish(census_build, root, tag=LTS_TAG, lts=True)
    publish(census_build, root, tag=WEEKLY_TAG)
    return root


@pytest.fixture(scope="session")
def soma_path(release_root: Path) -> Path:
    """The SOMA collection of the LTS build (for the official client's ``uri=``)."""
    return release_root / LTS_TAG / "soma"


# ---------------------------------------------------------------------------- HTTP
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    hits: list[str]
    ranges: bool = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        rng = self.headers.get("Range")
        if rng is None or not type(self).ranges:
            super().do_GET()
            return
        # "bytes=N-" only: what resumable downloads send
        start = int(rng.removeprefix("bytes=").rstrip("-"))
        data = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@dataclass
class HttpServer:
    """A static file server on 127.0.0.1 (byte ranges on unless ``handler.ranges`` is False) and
    the paths it was asked for."""

    url: str
    hits: list[str]
    handler: type[_QuietHandler]


@contextlib.contextmanager
def serve_http(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` from a thread on a free 127.0.0.1 port; yields ``http://host:port``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.block_on_close = False  # keep-alive connections must not delay teardown
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_root(release_root: Path) -> Iterator[HttpServer]:
    """``release_root``'s parent served over HTTP (``url`` is the release root's URL)."""

    class Handler(_QuietHandler):
        """A class per server: its own ``hits`` (and ``ranges``, which a test may turn off)."""

    Handler.hits = []
    Handler.ranges = True
    with serve_http(functools.partial(Handler, directory=str(release_root.parent))) as url:
        yield HttpServer(url=f"{url}/{release_root.name}/", hits=Handler.hits, handler=Handler)


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------- S3
@dataclass(frozen=True)
class S3Release:
    """The census published to ``s3://public/<prefix>/`` and settings to read it."""

    server: S3Server
    root_uri: str
    prefix: str
    anon: Settings
    reader: Settings

    def http_url(self, key: str) -> str:
        """Plain-HTTP URL of a key under the root (anonymous GET through the S3 API)."""
        return self.server.http_url("public", f"{self.prefix}/{key}")


@pytest.fixture(scope="session")
def s3_release(s3_server: S3Server, census_build: Path) -> S3Release:
    """The builder's census published to the S3 test server (LTS tag only)."""
    endpoint = s3_server.endpoint_url
    publisher = Settings(
        endpoint_url=endpoint,
        path_style=True,
        access_key_id=s3_server.publisher.access_key_id,
        secret_access_key=s3_server.publisher.secret_access_key,
    )
    prefix = "client-census"
    root_uri = f"s3://public/{prefix}/"
    publish(census_build, S3Root(root_uri, publisher), tag=LTS_TAG, lts=True)
    return S3Release(
        server=s3_server,
        root_uri=root_uri,
        prefix=prefix,
        anon=Settings(endpoint_url=endpoint, path_style=True, anonymous=True),
        reader=Settings(
            endpoint_url=endpoint,
            path_style=True,
            access_key_id=s3_server.reader.access_key_id,
            secret_access_key=s3_server.reader.secret_access_key,
        ),
    )


@pytest.fixture
def root_copy(release_root: Path, tmp_path: Path) -> Path:
    """A private copy of ``release_root`` a test may change; its ``origin`` mirror points at the
    copy (release.json's absolute ``uri`` values still name the original)."""
    dest = tmp_path / "copy" / release_root.name
    shutil.copytree(release_root, dest)
    mirrors = json.loads((dest / "mirrors.json").read_text())
    mirrors["origin"]["base_uri"] = dest.parent.as_uri() + "/"
    (dest / "mirrors.json").write_text(json.dumps(mirrors))
    return dest
