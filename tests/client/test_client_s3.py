"""The same release on the S3 test server: parity with the official client (which reads the
directory over HTTP), S3 and HTTP roots, private buckets, source H5ADs from S3."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import cellxgene_census
import cellxgene_census._release_directory as rd
import pandas as pd
import pyarrow as pa
import pytest
import tiledbsoma

import cellcensus
from cellcensus.errors import PermissionDeniedError
from cellcensus.release import publish
from cellcensus.release._s3 import S3Root
from cellcensus.settings import Settings

from ._parity import CASES, assert_same, run_case
from .conftest import HUMAN, LTS_TAG, S3Release

# slow: the S3 release fixture publishes the census (19 s) and the private bucket gets another
# publish (18 s)
pytestmark = [pytest.mark.s3, pytest.mark.slow]


@pytest.fixture
def official_on_s3(s3_release: S3Release, monkeypatch: pytest.MonkeyPatch) -> S3Release:
    """The official client pointed at the release's directory (served by the S3 server)."""
    monkeypatch.setattr(
        rd, "CELL_CENSUS_RELEASE_DIRECTORY_URL", s3_release.http_url("release.json")
    )
    monkeypatch.setattr(
        rd, "CELL_CENSUS_MIRRORS_DIRECTORY_URL", s3_release.http_url("mirrors.json")
    )
    return s3_release


def test_directory_parity(official_on_s3: S3Release) -> None:
    s3 = official_on_s3
    for kw in ({}, {"lts": True}, {"lts": False}, {"retracted": None}):
        ours = cellcensus.get_census_version_directory(
            release_root=s3.root_uri, settings=s3.anon, **kw
        )
        assert ours == cellxgene_census.get_census_version_directory(**kw)
        assert list(ours) == list(cellxgene_census.get_census_version_directory(**kw))
    assert (
        cellcensus.get_census_mirror_directory(release_root=s3.root_uri, settings=s3.anon)
        == cellxgene_census.get_census_mirror_directory()
    )
    assert cellcensus.get_census_version_description(
        "stable", release_root=s3.root_uri, settings=s3.anon
    ) == cellxgene_census.get_census_version_description("stable")


def test_same_results_as_official_client_on_s3(official_on_s3: S3Release) -> None:
    s3 = official_on_s3
    theirs = cellxgene_census.open_soma(
        census_version="stable", tiledb_config=s3.anon.tiledb_config()
    )
    ours = cellcensus.open_soma(census_version="stable", release_root=s3.root_uri, settings=s3.anon)
    with ours, theirs:
        assert ours.uri == theirs.uri == f"{s3.root_uri}{LTS_TAG}/soma/"
        for case in sorted(CASES):
            assert_same(run_case(cellcensus, ours, case), run_case(cellxgene_census, theirs, case))


def test_http_root_with_s3_mirror(s3_release: S3Release) -> None:
    root = s3_release.http_url("")
    with cellcensus.open_soma(release_root=root, settings=s3_release.anon) as c:
        assert c.uri.startswith("s3://public/")
        assert cellcensus.get_obs(c, HUMAN, value_filter="sex == 'male'").shape[0] > 0


def test_source_h5ad_from_s3_with_resume(
    s3_release: S3Release, census_build: Path, tmp_path: Path
) -> None:
    with cellcensus.open_soma(release_root=s3_release.root_uri, settings=s3_release.anon) as c:
        did = str(c["census_info"]["datasets"].read().concat()["dataset_id"][0])
    loc = cellcensus.get_source_h5ad_uri(
        did, release_root=s3_release.root_uri, settings=s3_release.anon
    )
    assert loc["uri"] == f"{s3_release.root_uri}{LTS_TAG}/h5ads/{did}.h5ad"
    data = (census_build / "h5ads" / f"{did}.h5ad").read_bytes()
    dest = tmp_path / "s3.h5ad"
    Path(str(dest) + ".part").write_bytes(data[:1000])  # resumed with a ranged GET
    cellcensus.download_source_h5ad(
        did,
        str(dest),
        release_root=s3_release.root_uri,
        settings=s3_release.anon,
        progress_bar=False,
    )
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()


@pytest.fixture(scope="module")
def private_release(s3_release: S3Release, census_build: Path) -> str:
    """The census published to the private bucket."""
    server = s3_release.server
    publisher = Settings(
        endpoint_url=server.endpoint_url,
        path_style=True,
        access_key_id=server.publisher.access_key_id,
        secret_access_key=server.publisher.secret_access_key,
    )
    root = "s3://private/client-census/"
    publish(census_build, S3Root(root, publisher), tag=LTS_TAG, lts=True)
    return root


def test_private_bucket(s3_release: S3Release, private_release: str) -> None:
    # signed requests with the reader's keys: directory through boto3, data through TileDB
    with cellcensus.open_soma(release_root=private_release, settings=s3_release.reader) as c:
        assert c.uri.startswith("s3://private/")
        assert len(cellcensus.get_var(c, HUMAN, value_filter="feature_name == 'MXRA8'")) == 1
    with pytest.raises(PermissionDeniedError, match="unsigned request: set credentials"):
        cellcensus.open_soma(release_root=private_release, settings=s3_release.anon)
    wrong = s3_release.reader.replace(secret_access_key="not-the-key")  # noqa: S106
    with pytest.raises(PermissionDeniedError, match="denied"):
        cellcensus.open_soma(release_root=private_release, settings=wrong)
    # the directory readable, the data not (TileDB gets other keys): a clear 403 as well
    with pytest.raises(cellcensus.AccessDeniedError, match="HTTP 403") as e:
        cellcensus.open_soma(
            release_root=private_release,
            settings=s3_release.reader,
            tiledb_config={"vfs.s3.aws_secret_access_key": "not-the-key"},
        )
    assert isinstance(e.value, tiledbsoma.SOMAError)


def test_root_and_endpoint_from_the_environment(
    s3_release: S3Release, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No arguments at all: CELLCENSUS_RELEASE_ROOT and CELLCENSUS_S3_ENDPOINT_URL; anonymous
    reads because no credentials are configured."""
    monkeypatch.setenv("CELLCENSUS_RELEASE_ROOT", s3_release.root_uri)
    monkeypatch.setenv("CELLCENSUS_S3_ENDPOINT_URL", s3_release.server.endpoint_url)
    assert set(cellcensus.get_census_version_directory()) == {"stable", "latest", LTS_TAG}
    with cellcensus.open_soma() as c:
        assert c.uri == f"{s3_release.root_uri}{LTS_TAG}/soma/"
        assert cellcensus.get_obs(c, HUMAN, value_filter="sex == 'female'").shape[0] > 0


def test_gene_query_on_s3_reads_obs_from_the_obs_copy(
    s3_release: S3Release,
    soma_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A gene query of every cell and obs column of a release in object storage fetches the obs copy
    (with the census's storage settings: anonymous here) and answers as the local release."""
    from cellcensus import _obscopy
    from cellcensus.client import _genemajor

    sources: list[object] = []
    real = _obscopy.read_obs_copy

    def spy(source: Path | pa.Buffer, columns: list[str] | None) -> pa.Table:
        sources.append(source)
        return real(source, columns)

    monkeypatch.setattr(_genemajor, "read_obs_copy", spy)
    kwargs: dict[str, Any] = {
        "var_value_filter": "feature_name in ['CD4', 'TSPAN6']",
        "x_layout": "gene-major",
    }
    with (
        cellcensus.open_soma(release_root=s3_release.root_uri, settings=s3_release.anon) as c,
        caplog.at_level("WARNING"),
    ):
        got = cellcensus.get_anndata(c, "Homo sapiens", **kwargs)
        # a column list reads obs itself: the copy is one object, fetched whole or not at all
        few = cellcensus.get_anndata(c, "Homo sapiens", obs_column_names=["cell_type"], **kwargs)
        absent = _genemajor._fetch(f"{c.uri}cellcensus_genes/{HUMAN}/absent.arrow", c.context)
    assert len(sources) == 1
    assert list(few.obs.columns) == ["cell_type"]
    assert few.obs["cell_type"].equals(got.obs["cell_type"])
    assert isinstance(sources[0], pa.Buffer)  # fetched, not a local path
    assert absent is None
    assert not [r for r in caplog.records if "obs copy" in r.getMessage()]
    with cellcensus.open_soma(uri=str(soma_path)) as local:
        want = cellcensus.get_anndata(local, "Homo sapiens", **kwargs)
    assert got.n_obs == want.n_obs > 0
    pd.testing.assert_frame_equal(got.obs, want.obs)
    pd.testing.assert_frame_equal(got.var, want.var)
    assert (got.X != want.X).nnz == 0
