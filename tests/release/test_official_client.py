"""The official ``cellxgene_census`` client resolves versions through our release.json and
mirrors.json: served over HTTP (by the S3 server, or ``python -m http.server`` for a directory
root), with an S3 mirror and a ``file`` mirror."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator  # noqa: TC003
from pathlib import Path  # noqa: TC003 - fixture annotations are resolved by pytest
from typing import TYPE_CHECKING, Any

import cellxgene_census
import cellxgene_census._release_directory as rd
import pytest

from cellcensus.release import (
    add_mirror,
    publish,
    read_mirrors,
    retract,
    set_alias,
    set_default_mirror,
    sync,
)
from cellcensus.release._local import LocalRoot
from cellcensus.release._s3 import S3Root
from tests._tinybuild import N_OBS

if TYPE_CHECKING:
    import tiledbsoma

    from tests._s3server import S3Env

LTS_TAG, WEEKLY_TAG, BAD_TAG = "2026-10-01", "2026-10-08", "2026-10-15"


def _point_client_at(monkeypatch: pytest.MonkeyPatch, release_url: str, mirrors_url: str) -> None:
    monkeypatch.setattr(rd, "CELL_CENSUS_RELEASE_DIRECTORY_URL", release_url)
    monkeypatch.setattr(rd, "CELL_CENSUS_MIRRORS_DIRECTORY_URL", mirrors_url)


def _version_of(census: tiledbsoma.Collection[Any]) -> str:
    return cellxgene_census._util._extract_census_version(census)  # tag from the path


@pytest.mark.s3
def test_official_client_through_s3_and_file_mirrors(
    s3: S3Env, census_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"cell-census-{int(time.time() * 1000) % 10**8}"
    root = S3Root(f"s3://public/{prefix}/", s3.publisher)
    publish(census_build, root, tag=LTS_TAG, lts=True)
    publish(census_build, root, tag=WEEKLY_TAG)
    publish(census_build, root, tag=BAD_TAG)
    set_alias(root, "V1", LTS_TAG)
    retract(root, BAD_TAG, reason="broken", replaced_by=WEEKLY_TAG)

    # a file mirror: copies laid out as <base>/<relative_uri>
    mirror_base = tmp_path / "mirror"
    for tag in (LTS_TAG, WEEKLY_TAG):
        sync(root, tag, mirror_base / prefix / tag, settings=s3.anon)
    add_mirror(root, "local-copy", f"file://{mirror_base}/")
    mirrors = read_mirrors(root)
    assert mirrors.default == "origin"
    assert mirrors.mirrors["origin"].base_uri == "s3://public/"

    _point_client_at(
        monkeypatch,
        s3.server.http_url("public", f"{prefix}/release.json"),
        s3.server.http_url("public", f"{prefix}/mirrors.json"),
    )

    directory = cellxgene_census.get_census_version_directory()
    assert set(directory) == {"stable", "latest", "V1", LTS_TAG, WEEKLY_TAG}  # retracted hidden
    assert directory["stable"]["release_build"] == LTS_TAG
    assert directory["latest"]["release_build"] == WEEKLY_TAG
    assert directory[LTS_TAG]["flags"] == {"lts": True, "retracted": False}
    assert directory[WEEKLY_TAG]["flags"] == {"lts": False, "retracted": False}
    assert set(cellxgene_census.get_census_version_directory(lts=True)) == {
        "stable",
        "V1",
        LTS_TAG,
    }
    retracted = cellxgene_census.get_census_version_directory(retracted=True)
    assert set(retracted) == {BAD_TAG}
    assert retracted[BAD_TAG]["retraction"]["replaced_by"] == WEEKLY_TAG
    assert set(cellxgene_census.get_census_mirror_directory()) == {"origin", "local-copy"}

    # the S3 mirror (default): endpoint settings come from our tiledb_config
    cfg = s3.anon.tiledb_config()
    for version, tag in (
        ("stable", LTS_TAG),
        ("latest", WEEKLY_TAG),
        (WEEKLY_TAG, WEEKLY_TAG),
        ("V1", LTS_TAG),
    ):
        with cellxgene_census.open_soma(census_version=version, tiledb_config=cfg) as c:
            assert c.uri.rstrip("/") == f"s3://public/{prefix}/{tag}/soma"
            assert _version_of(c) == tag
            assert c["census_data"]["homo_sapiens"].obs.count == N_OBS

    # the file mirror, chosen explicitly and then as the default
    with cellxgene_census.open_soma(census_version="stable", mirror="local-copy") as c:
        assert c.uri.rstrip("/") == f"file://{mirror_base}/{prefix}/{LTS_TAG}/soma"
        assert c["census_data"]["homo_sapiens"].obs.count == N_OBS
    set_default_mirror(root, "local-copy")
    with cellxgene_census.open_soma(census_version=WEEKLY_TAG) as c:
        assert c.uri.startswith(f"file://{mirror_base}/")
        adata = cellxgene_census.get_anndata(
            c, "Homo sapiens", obs_value_filter="cell_type == 'T cell'"
        )
        assert adata.n_obs == N_OBS // 3

    # the retracted build is hidden from version resolution
    with pytest.raises(ValueError, match="not valid"):
        cellxgene_census.open_soma(census_version=BAD_TAG, tiledb_config=cfg)

    # the absolute h5ads uri is what the client's source-h5ad look-up uses
    loc = cellxgene_census.get_source_h5ad_uri(
        "0a1b2c3d-0000-4000-8000-000000000001", census_version="latest"
    )
    assert loc["uri"] == (
        f"s3://public/{prefix}/{WEEKLY_TAG}/h5ads/0a1b2c3d-0000-4000-8000-000000000001.h5ad"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """``python -m http.server`` on 127.0.0.1 serving a fresh directory; yields (dir, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(served),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield served, url
    proc.terminate()
    proc.wait(timeout=10)


def test_official_client_with_a_directory_root_and_its_origin_file_mirror(
    census_build: Path, http_server: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    served, url = http_server
    root = LocalRoot(served / "cell-census")
    publish(census_build, root, tag=LTS_TAG, lts=True)
    publish(census_build, root, tag=WEEKLY_TAG)
    _point_client_at(
        monkeypatch, f"{url}/cell-census/release.json", f"{url}/cell-census/mirrors.json"
    )
    for version, tag in (("stable", LTS_TAG), ("latest", WEEKLY_TAG), (LTS_TAG, LTS_TAG)):
        with cellxgene_census.open_soma(census_version=version) as c:
            assert c.uri.rstrip("/") == f"file://{served}/cell-census/{tag}/soma"
            assert c["census_data"]["homo_sapiens"].obs.count == N_OBS
