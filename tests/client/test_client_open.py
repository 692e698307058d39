"""Release-directory resolution and open_soma: roots given every way, versions, mirrors, errors."""

from __future__ import annotations

import http.server
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import cellxgene_census
import pytest
import requests
import tiledbsoma

import cellcensus
from cellcensus import client
from cellcensus._storage import http as storage_http
from cellcensus.errors import BadInputError, ConfigError, NotFoundError
from cellcensus.release import open_root, retract
from cellcensus.settings import Settings

from .conftest import HUMAN, LTS_TAG, WEEKLY_TAG, serve_http

if TYPE_CHECKING:
    import contextlib


def _tag_of(census: tiledbsoma.Collection) -> str:
    return Path(census.uri.removeprefix("file://").rstrip("/")).parent.name


# ---------------------------------------------------------------------------- where the root is
def test_release_root_by_argument_path_and_file_uri(release_root: Path) -> None:
    for given in (release_root, str(release_root), release_root.as_uri(), f"{release_root}/"):
        with cellcensus.open_soma(release_root=given) as census:
            assert _tag_of(census) == LTS_TAG
            assert census["census_data"][HUMAN].obs.count > 0


def test_release_root_precedence(
    release_root: Path, root_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    official = client.release_source()
    assert official.official
    assert (
        official.directory_uri
        == cellxgene_census._release_directory.CELL_CENSUS_RELEASE_DIRECTORY_URL
    )

    monkeypatch.setenv("CELLCENSUS_RELEASE_ROOT", str(release_root))
    assert client.release_source().root_uri == release_root.as_uri() + "/"
    client.configure(release_root=root_copy)
    assert client.release_source().root_uri == root_copy.as_uri() + "/"  # config beats env
    arg = client.release_source(release_root)  # argument beats config
    assert arg.root_uri == release_root.as_uri() + "/"
    client.configure(release_root="")  # unset: env again
    assert client.release_source().root_uri == release_root.as_uri() + "/"

    with cellcensus.open_soma() as census:  # resolved through the environment
        assert _tag_of(census) == LTS_TAG


def test_release_json_url_names_the_file(release_root: Path) -> None:
    src = client.release_source(f"{release_root.as_uri()}/release.json")
    assert src.directory_uri.endswith("/release.json")
    assert src.mirrors_uri == release_root.as_uri() + "/mirrors.json"
    with cellcensus.open_soma(census_version="latest", release_root=src.directory_uri) as c:
        assert _tag_of(c) == WEEKLY_TAG


def test_unsupported_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported scheme 'ftp'"):
        client.release_source("ftp://example.org/census/")


# ---------------------------------------------------------------------------- versions
def test_versions_and_aliases(release_root: Path) -> None:
    d = cellcensus.get_census_version_directory(release_root=release_root)
    assert list(d) == ["stable", "latest", WEEKLY_TAG, LTS_TAG]
    assert d["stable"]["release_build"] == LTS_TAG
    assert d["latest"]["release_build"] == WEEKLY_TAG
    assert set(cellcensus.get_census_version_directory(release_root=release_root, lts=True)) == {
        "stable",
        LTS_TAG,
    }
    desc = cellcensus.get_census_version_description(WEEKLY_TAG, release_root=release_root)
    assert desc["flags"] == {"lts": False, "retracted": False}
    assert "do_not_delete" not in desc  # only the official description fields
    for version, tag in (("stable", LTS_TAG), ("latest", WEEKLY_TAG), (WEEKLY_TAG, WEEKLY_TAG)):
        with cellcensus.open_soma(census_version=version, release_root=release_root) as c:
            assert _tag_of(c) == tag


def test_unknown_version_lists_known_ones(release_root: Path) -> None:
    with pytest.raises(client.CensusNotFoundError) as err:
        cellcensus.open_soma(census_version="2020-01-01", release_root=release_root)
    assert isinstance(err.value, ValueError)  # as the official client raises
    assert isinstance(err.value, LookupError)
    assert "2020-01-01" in str(err.value)
    assert LTS_TAG in str(err.value)
    assert "stable" in str(err.value)


def test_retracted_version_says_so(root_copy: Path) -> None:
    retract(open_root(root_copy), WEEKLY_TAG, reason="bad genes", replaced_by=LTS_TAG)
    with pytest.raises(client.CensusNotFoundError, match=r"retracted.*replaced by '2026-11-01'"):
        cellcensus.open_soma(census_version=WEEKLY_TAG, release_root=root_copy)
    assert set(cellcensus.get_census_version_directory(release_root=root_copy, retracted=True)) == {
        WEEKLY_TAG
    }


def test_missing_release_json(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no release directory"):
        cellcensus.open_soma(release_root=tmp_path)


# ---------------------------------------------------------------------------- mirrors
def test_mirrors(release_root: Path) -> None:
    mirrors = cellcensus.get_census_mirror_directory(release_root=release_root)
    assert set(mirrors) == {"origin"}
    assert mirrors["origin"]["provider"] == "file"
    with cellcensus.open_soma(mirror="origin", release_root=release_root) as c:
        assert _tag_of(c) == LTS_TAG


def test_unknown_mirror(release_root: Path) -> None:
    with pytest.raises(client.CensusNotFoundError, match=r"'nowhere'.*known mirrors: origin") as e:
        cellcensus.open_soma(mirror="nowhere", release_root=release_root)
    assert isinstance(e.value, ValueError)


def test_moved_local_root_falls_back_to_its_own_builds(root_copy: Path) -> None:
    """A local root copied elsewhere: its mirrors.json still names the old place."""
    mirrors = json.loads((root_copy / "mirrors.json").read_text())
    mirrors["origin"]["base_uri"] = "file:///nonexistent/old/place/"
    (root_copy / "mirrors.json").write_text(json.dumps(mirrors))
    with cellcensus.open_soma(release_root=root_copy) as c:
        assert c.uri.startswith(root_copy.as_uri())


def test_relative_uri_with_leading_slash_keeps_the_mirror_path(root_copy: Path) -> None:
    d = json.loads((root_copy / "release.json").read_text())
    for part in ("soma", "h5ads"):
        d[LTS_TAG][part]["relative_uri"] = "/" + d[LTS_TAG][part]["relative_uri"]
        d[LTS_TAG][part]["uri"] = "file:///nonexistent/"
    (root_copy / "release.json").write_text(json.dumps(d))
    mirrors = json.loads((root_copy / "mirrors.json").read_text())
    mirrors["origin"]["base_uri"] = root_copy.parent.as_uri() + "/"
    (root_copy / "mirrors.json").write_text(json.dumps(mirrors))
    r = client.resolve_release("stable", release_root=root_copy)
    assert r.soma_uri == f"{root_copy.as_uri()}/{LTS_TAG}/soma/"


# ---------------------------------------------------------------------------- open_soma arguments
def test_uri_with_explicit_version_is_an_error(soma_path: Path) -> None:
    with pytest.raises(BadInputError, match="census_version") as e:
        cellcensus.open_soma(uri=str(soma_path), census_version=WEEKLY_TAG)
    assert isinstance(e.value, ValueError)
    with pytest.raises(BadInputError, match="mirror"):
        cellcensus.open_soma(uri=str(soma_path), mirror="origin")
    # the default version (or None) with a uri is fine, as in the official client
    for version in ("stable", None):
        with cellcensus.open_soma(uri=str(soma_path), census_version=version) as c:
            assert c.soma_type == "SOMACollection"


def test_tiledb_config_with_context_is_an_error(soma_path: Path) -> None:
    ctx = cellcensus.get_default_soma_context()
    with pytest.raises(ConfigError, match="Only one of tiledb_config and context") as e:
        cellcensus.open_soma(uri=str(soma_path), tiledb_config={"a": "b"}, context=ctx)
    assert isinstance(e.value, ValueError)


def test_context_and_tiledb_config_are_applied(soma_path: Path) -> None:
    with cellcensus.open_soma(
        uri=str(soma_path), tiledb_config={"soma.init_buffer_bytes": 12345678}
    ) as c:
        assert str(c.context.tiledb_config["soma.init_buffer_bytes"]) == "12345678"
        assert c.context.tiledb_config["vfs.s3.region"] == "us-west-2"  # official default kept
    ctx = cellcensus.get_default_soma_context({"soma.init_buffer_bytes": 7654321})
    with cellcensus.open_soma(uri=str(soma_path), context=ctx) as c:
        assert str(c.context.tiledb_config["soma.init_buffer_bytes"]) == "7654321"


def test_storage_settings_reach_tiledb_for_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    from cellcensus.client._open import storage_config

    s = Settings(endpoint_url="http://127.0.0.1:9", path_style=True, anonymous=True)
    cfg = storage_config(s)
    assert cfg["vfs.s3.endpoint_override"] == "http://127.0.0.1:9"
    assert cfg["vfs.s3.no_sign_request"] == "true"
    # nothing configured: anonymous, and the official region default is left alone
    cfg = storage_config(None)
    assert cfg["vfs.s3.no_sign_request"] == "true"
    assert "vfs.s3.region" not in cfg
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert storage_config(None)["vfs.s3.region"] == "eu-west-1"


def test_neither_version_nor_uri() -> None:
    with pytest.raises(BadInputError, match="Must specify either a census version or an explicit"):
        cellcensus.open_soma(census_version=None)


def test_missing_uri_is_not_found(tmp_path: Path, soma_path: Path, release_root: Path) -> None:
    with pytest.raises(client.CollectionNotFoundError, match="does not exist") as e:
        cellcensus.open_soma(uri=str(tmp_path / "nothing"))
    assert isinstance(e.value, tiledbsoma.DoesNotExistError)  # as the official client raises
    assert isinstance(e.value, NotFoundError)
    with pytest.raises(BadInputError, match="release_root"):
        cellcensus.open_soma(uri=str(soma_path), release_root=release_root)


# ---------------------------------------------------------------------------- http(s) roots
def test_http_root_with_file_mirror_and_cache(release_root: Path, http_root) -> None:
    d = cellcensus.get_census_version_directory(release_root=http_root.url)
    assert d["stable"]["release_build"] == LTS_TAG
    with cellcensus.open_soma(release_root=http_root.url) as c:
        assert _tag_of(c) == LTS_TAG  # file mirror from the served mirrors.json
    fetched = [h for h in http_root.hits if h.endswith("release.json")]
    assert len(fetched) == 1  # the second look-up came from the cache
    client.clear_cache()
    cellcensus.get_census_version_directory(release_root=http_root.url)
    assert len([h for h in http_root.hits if h.endswith("release.json")]) == 2
    client.configure(cache_ttl=0)
    cellcensus.get_census_version_directory(release_root=http_root.url)
    cellcensus.get_census_version_directory(release_root=http_root.url)
    assert len([h for h in http_root.hits if h.endswith("release.json")]) == 4


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    """Serves one release.json: 503 for the first ``failures`` requests, 404 for other paths,
    or (``delay`` > 0) answers only after ``delay`` seconds."""

    body = b""
    failures = 0
    delay = 0.0
    calls: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        cls = type(self)
        cls.calls.append(self.path)
        if cls.delay:
            time.sleep(cls.delay)
        if self.path != "/root/release.json":
            status, body = 404, b"no such key"
        elif len(cls.calls) <= cls.failures:
            status, body = 503, b"busy"
        else:
            status, body = 200, cls.body
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout) and closed the connection
            pass


def _flaky_server(
    body: bytes, *, failures: int = 0, delay: float = 0.0
) -> tuple[contextlib.AbstractContextManager[str], list[str]]:
    """A server of ``_FlakyHandler`` (not started yet) and the list of paths it will be asked."""
    calls: list[str] = []
    attrs = {"body": body, "failures": failures, "delay": delay, "calls": calls}
    return serve_http(type("Handler", (_FlakyHandler,), attrs)), calls


def test_http_retries_transient_errors(monkeypatch: pytest.MonkeyPatch, release_root: Path) -> None:
    """A real server on 127.0.0.1 answers 503 twice, then the directory; 404 is not retried."""
    body = (release_root / "release.json").read_bytes()
    server, calls = _flaky_server(body, failures=2)
    with server as url:
        d = cellcensus.get_census_version_directory(release_root=f"{url}/root/")
        assert calls == ["/root/release.json"] * 3
        assert d["stable"]["release_build"] == LTS_TAG
        calls.clear()
        with pytest.raises(NotFoundError, match=r"no release directory at http://127\.0\.0\.1"):
            cellcensus.get_census_version_directory(release_root=f"{url}/other/")
        assert calls == ["/other/release.json"]


def test_http_read_timeout_is_applied(monkeypatch: pytest.MonkeyPatch, release_root: Path) -> None:
    """A server that accepts but answers only after a minute: each attempt gives up after
    READ_TIMEOUT."""
    monkeypatch.setattr(storage_http, "READ_TIMEOUT", 0.3)
    body = (release_root / "release.json").read_bytes()
    server, calls = _flaky_server(body, delay=60.0)
    with server as url:
        t0 = time.monotonic()
        with pytest.raises(client.ReleaseRootUnreachableError, match="attempts"):
            cellcensus.get_census_version_directory(release_root=f"{url}/root/")
        # gave up long before an answer (60 s) or the default read timeout (30 s) could come
        assert time.monotonic() - t0 < 20
        assert len(calls) >= 2  # and retried


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_unreachable_root_fails_fast_and_clearly(kind: str, closed_port: int) -> None:
    t0 = time.monotonic()
    if kind == "http":
        root, settings = f"http://127.0.0.1:{closed_port}/census/", None
    else:
        root = "s3://bucket/census/"
        settings = Settings(
            endpoint_url=f"http://127.0.0.1:{closed_port}", path_style=True, anonymous=True
        )
    with pytest.raises(client.ReleaseRootUnreachableError, match=f"127.0.0.1:{closed_port}") as e:
        cellcensus.open_soma(release_root=root, settings=settings)
    assert isinstance(e.value, requests.ConnectionError)  # what the official client raises
    assert "attempts" in str(e.value)
    assert time.monotonic() - t0 < 15


def test_unknown_organism(release_root: Path) -> None:
    with cellcensus.open_soma(release_root=release_root) as census:
        for call in (
            lambda: cellcensus.get_obs(census, "Danio rerio"),
            lambda: cellcensus.get_var(census, "Danio rerio"),
            lambda: cellcensus.get_anndata(census, "Danio rerio"),
            lambda: cellcensus.get_presence_matrix(census, "Danio rerio"),
            lambda: cellcensus.export(census, "Danio rerio", to="x.h5ad"),
        ):
            with pytest.raises(
                client.CensusNotFoundError, match="Unknown organism Danio rerio"
            ) as e:
                call()
            assert isinstance(e.value, ValueError)
            assert "homo_sapiens" in str(e.value)


def test_root_copy_without_mirrors_uses_absolute_locators(root_copy: Path) -> None:
    (root_copy / "mirrors.json").unlink()
    shutil.rmtree(root_copy / WEEKLY_TAG)
    with cellcensus.open_soma(release_root=root_copy) as c:
        # the absolute uri in release.json (the session root) still exists
        assert _tag_of(c) == LTS_TAG
    with pytest.raises(NotFoundError, match="no mirror directory"):
        cellcensus.get_census_mirror_directory(release_root=root_copy)
