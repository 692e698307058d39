"""Embeddings on the builder's census: nearest neighbours (exact recall when every partition is
probed), metadata prediction on known neighbours, and the official client reading the same
embeddings from the S3 test server (its directory URLs redirected) with the same results."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - fixture annotations are resolved by pytest
from typing import TYPE_CHECKING, TypedDict

import anndata as ad
import cellxgene_census
import cellxgene_census._get_anndata as official_get_anndata
import cellxgene_census._release_directory as rd
import cellxgene_census.experimental as official
import cellxgene_census.experimental._embedding as official_embedding
import numpy as np
import pandas as pd
import pytest

import cellcensus
from cellcensus import experimental
from cellcensus.embeddings import EmbeddingInput, add_embedding
from cellcensus.release import publish
from cellcensus.release._s3 import S3Root
from cellcensus.settings import Settings

from .conftest import HUMAN, LTS_TAG

if TYPE_CHECKING:
    import numpy.typing as npt

    from cellcensus.embeddings import AttachResult
    from tests._s3server import S3Server

    #: ``indexed``: (root, obs, vectors, attach result)
    Indexed = tuple[Path, pd.DataFrame, npt.NDArray[np.float32], AttachResult]

DIMS = 8


def _clustered(obs: pd.DataFrame, seed: int = 0) -> npt.NDArray[np.float32]:
    """One vector per cell: its cell type's centre plus small noise (types are separable)."""
    rng = np.random.default_rng(seed)
    types = sorted(obs["cell_type"].astype(str).unique())
    centres = rng.normal(scale=10.0, size=(len(types), DIMS))
    codes: npt.NDArray[np.int64] = (
        obs["cell_type"].astype(str).map({t: i for i, t in enumerate(types)}).to_numpy()
    )
    return (centres[codes] + rng.normal(scale=0.5, size=(len(obs), DIMS))).astype(np.float32)


def _human_obs(release_root: Path) -> pd.DataFrame:
    with cellcensus.open_soma(census_version=LTS_TAG, release_root=release_root) as c:
        return cellcensus.get_obs(c, HUMAN, column_names=["soma_joinid", "cell_type"])


@pytest.fixture
def indexed(root_copy: Path) -> Indexed:
    """The copied root with a clustered, indexed embedding of every human cell; yields
    (root, obs, vectors, attach result)."""
    obs = _human_obs(root_copy)
    vectors = _clustered(obs)
    inp = EmbeddingInput(
        matrix=vectors, source="clustered", soma_joinids=obs["soma_joinid"].to_numpy()
    )
    res = add_embedding(root_copy, LTS_TAG, inp, name="clusters", organism=HUMAN, index=True)
    return root_copy, obs, vectors, res


def _brute_force(
    vectors: npt.NDArray[np.float32],
    ids: npt.NDArray[np.int64],
    queries: npt.NDArray[np.float32],
    k: int,
) -> npt.NDArray[np.int64]:
    d = ((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(axis=2)
    return ids[np.argsort(d, axis=1, kind="stable")[:, :k]]


def test_find_nearest_obs_is_exact_when_every_partition_is_probed(indexed: Indexed) -> None:
    root, obs, vectors, _res = indexed
    ids = obs["soma_joinid"].to_numpy()
    rng = np.random.default_rng(1)
    queries = vectors[rng.choice(len(vectors), 25, replace=False)] + rng.normal(
        scale=0.3, size=(25, DIMS)
    ).astype(np.float32)
    query = ad.AnnData(obs=pd.DataFrame(index=[f"q{i}" for i in range(25)]))
    query.obsm["clusters"] = queries
    partitions = int(np.ceil(np.sqrt(len(vectors))))
    got = experimental.find_nearest_obs(
        "clusters", "Homo sapiens", LTS_TAG, query, k=10, nprobe=partitions, release_root=root
    )
    assert isinstance(got, official.NeighborObs)
    expected = _brute_force(vectors, ids, queries, 10)
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(got.neighbor_ids, expected, strict=True)]
    )
    assert recall == 1.0
    exact_d = ((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_allclose(got.distances, np.sort(exact_d, axis=1)[:, :10], rtol=1e-4)

    bad = ad.AnnData(obs=pd.DataFrame(index=["a"]))
    bad.obsm["clusters"] = np.zeros((1, DIMS + 1), np.float32)
    with pytest.raises(ValueError, match="features, expected"):
        experimental.find_nearest_obs("clusters", HUMAN, LTS_TAG, bad, release_root=root)


def test_predict_obs_metadata_on_known_neighbours(indexed: Indexed) -> None:
    root, obs, _vectors, _res = indexed
    by_type = obs.groupby(obs["cell_type"].astype(str))["soma_joinid"].apply(list)
    types = sorted(by_type.index)[:2]
    a, b = types
    # query 0: 3 of type a, 1 of type b -> a (0.75); query 1: 2 and 2 -> the first type (0.5)
    neighbor_ids = np.array(
        [
            [by_type[a][0], by_type[a][1], by_type[a][2], by_type[b][0]],
            [by_type[b][1], by_type[a][3], by_type[b][2], by_type[a][4]],
        ],
        dtype=np.int64,
    )
    neighbors = experimental.NeighborObs(
        distances=np.zeros(neighbor_ids.shape, np.float32), neighbor_ids=neighbor_ids
    )
    ours = experimental.predict_obs_metadata(
        HUMAN, LTS_TAG, neighbors, ["cell_type"], release_root=root
    )
    assert list(ours["cell_type"]) == [a, a]
    assert list(ours["cell_type_confidence"]) == [0.75, 0.5]
    with cellcensus.open_soma(census_version=LTS_TAG, release_root=root) as c:
        exp = c["census_data"][HUMAN]
        theirs = official.predict_obs_metadata(HUMAN, LTS_TAG, neighbors, ["cell_type"], exp)
    pd.testing.assert_frame_equal(ours, theirs)


def test_search_then_predict_recovers_the_cell_type(indexed: Indexed) -> None:
    root, obs, vectors, _res = indexed
    rng = np.random.default_rng(2)
    picks = rng.choice(len(vectors), 30, replace=False)
    query = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in picks]))
    query.obsm["clusters"] = vectors[picks]
    nn = experimental.find_nearest_obs("clusters", HUMAN, LTS_TAG, query, k=5, release_root=root)
    pred = experimental.predict_obs_metadata(HUMAN, LTS_TAG, nn, ["cell_type"], release_root=root)
    assert list(pred["cell_type"]) == list(obs["cell_type"].astype(str).to_numpy()[picks])


def test_find_nearest_obs_needs_an_index(root_copy: Path) -> None:
    obs = _human_obs(root_copy)
    inp = EmbeddingInput(
        matrix=_clustered(obs), source="x", soma_joinids=obs["soma_joinid"].to_numpy()
    )
    add_embedding(root_copy, LTS_TAG, inp, name="plain", organism=HUMAN)
    query = ad.AnnData(obs=pd.DataFrame(index=["a"]))
    query.obsm["plain"] = np.zeros((1, DIMS), np.float32)
    with pytest.raises(ValueError, match="No suitable embedding index"):
        experimental.find_nearest_obs("plain", HUMAN, LTS_TAG, query, release_root=root_copy)


# ---------------------------------------------------------------------------- official client
@pytest.mark.s3
@pytest.mark.slow  # publishes the census to S3: ~35 s on a shared 2-core machine
def test_official_client_reads_our_embeddings_on_s3(
    s3_server: S3Server, census_build: Path, unique_s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = s3_server.endpoint_url
    publisher = Settings(
        endpoint_url=endpoint,
        path_style=True,
        access_key_id=s3_server.publisher.access_key_id,
        secret_access_key=s3_server.publisher.secret_access_key,
    )
    anon = Settings(endpoint_url=endpoint, path_style=True, anonymous=True)
    root_uri = f"s3://public/{unique_s3_prefix}/"
    root = S3Root(root_uri, publisher)
    publish(census_build, root, tag=LTS_TAG, lts=True)
    with cellcensus.open_soma(census_version=LTS_TAG, release_root=root_uri, settings=anon) as c:
        obs = cellcensus.get_obs(c, HUMAN, column_names=["soma_joinid", "cell_type"])
    keep = obs["soma_joinid"].to_numpy()[::2]  # half the cells: the rest read as NaN
    vectors = _clustered(obs)[::2]
    res = add_embedding(
        root,
        LTS_TAG,
        EmbeddingInput(matrix=vectors, source="x", soma_joinids=keep),
        name="scvi",
        organism=HUMAN,
        index=True,
    )

    # the official client: directory, mirrors and contributions over HTTP (the S3 server), the
    # embeddings base at our prefix; TileDB finds the endpoint in its TILEDB_* variables
    def url(key: str) -> str:
        return s3_server.http_url("public", f"{unique_s3_prefix}/{key}")

    monkeypatch.setattr(rd, "CELL_CENSUS_RELEASE_DIRECTORY_URL", url("release.json"))
    monkeypatch.setattr(rd, "CELL_CENSUS_MIRRORS_DIRECTORY_URL", url("mirrors.json"))
    monkeypatch.setattr(
        official_embedding, "CELL_CENSUS_EMBEDDINGS_MANIFEST_URL", url("contributions.json")
    )
    monkeypatch.setattr(
        official_get_anndata, "CENSUS_EMBEDDINGS_LOCATION_BASE_URI", f"{root_uri}embeddings/"
    )
    for key, value in anon.tiledb_config().items():
        if key != "vfs.s3.region":
            monkeypatch.setenv("TILEDB_" + key.upper().replace(".", "_"), value)

    kw: _Where = {"release_root": root_uri, "settings": anon}
    assert official.get_all_available_embeddings(
        LTS_TAG
    ) == experimental.get_all_available_embeddings(LTS_TAG, **kw)
    theirs_md = official.get_embedding_metadata_by_name("scvi", HUMAN, LTS_TAG)
    assert theirs_md == experimental.get_embedding_metadata_by_name("scvi", HUMAN, LTS_TAG, **kw)
    assert official.get_all_census_versions_with_embedding("scvi", HUMAN) == [LTS_TAG]

    ids = obs["soma_joinid"].to_numpy().astype(np.int64)
    ctx = cellxgene_census.get_default_soma_context(tiledb_config=anon.tiledb_config())
    theirs = official.get_embedding(LTS_TAG, res.uri, ids, context=ctx)
    ours = experimental.get_embedding(LTS_TAG, res.uri, ids, **kw)
    np.testing.assert_array_equal(theirs, ours)
    assert np.isnan(ours[1::2]).all()
    np.testing.assert_array_equal(ours[::2], vectors)

    with cellxgene_census.open_soma(
        census_version=LTS_TAG, tiledb_config=anon.tiledb_config()
    ) as c:
        theirs_ad = cellxgene_census.get_anndata(c, HUMAN, obs_embeddings=["scvi"])
    with cellcensus.open_soma(census_version=LTS_TAG, **kw) as c:
        ours_ad = cellcensus.get_anndata(c, HUMAN, obs_embeddings=["scvi"])
    np.testing.assert_array_equal(theirs_ad.obsm["scvi"], ours_ad.obsm["scvi"])
    pd.testing.assert_frame_equal(theirs_ad.obs, ours_ad.obs)

    query = ad.AnnData(obs=pd.DataFrame(index=[f"q{i}" for i in range(12)]))
    query.obsm["scvi"] = vectors[:12] + np.float32(0.1)
    theirs_nn = official.find_nearest_obs("scvi", HUMAN, LTS_TAG, query, k=5, nprobe=4)
    ours_nn = experimental.find_nearest_obs("scvi", HUMAN, LTS_TAG, query, k=5, nprobe=4, **kw)
    np.testing.assert_array_equal(theirs_nn.neighbor_ids, ours_nn.neighbor_ids)
    np.testing.assert_array_equal(theirs_nn.distances, ours_nn.distances)


@pytest.fixture
def unique_s3_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix unique to the test (one path segment, as the official client needs)."""
    import os

    return f"emb-{request.node.name[:30]}-{os.urandom(3).hex()}".replace("_", "-")


class _Where(TypedDict):
    """Where our functions read the release (keywords of every ``experimental`` call)."""

    release_root: str
    settings: Settings


def test_the_official_embedding_names_and_signatures() -> None:
    """Every public name of ``cellxgene_census.experimental`` (and ``experimental.util``) is in
    ``cellcensus.experimental``, with the official parameters in the official order and kinds
    and defaults; ours only add keyword-only ``release_root`` / ``settings``."""
    import inspect

    import cellxgene_census.experimental.util as official_util

    from cellcensus.experimental import util

    assert set(official.__all__) <= set(experimental.__all__)
    assert experimental.NeighborObs is official.NeighborObs
    assert [n for n in dir(official_util) if not n.startswith("_")] == util.__all__ == []
    for name in official.__all__:
        if name == "NeighborObs":
            continue
        theirs = inspect.signature(getattr(official, name)).parameters
        ours = inspect.signature(getattr(experimental, name)).parameters
        fixed = [n for n, p in theirs.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        assert list(ours)[: len(fixed)] == fixed, name
        for pname in fixed:
            assert ours[pname].kind == theirs[pname].kind, (name, pname)
            assert ours[pname].default == theirs[pname].default, (name, pname)
        extras = [n for n in ours if n not in theirs]
        assert all(ours[n].kind is inspect.Parameter.KEYWORD_ONLY for n in extras), name
        assert set(extras) <= {"release_root", "settings"}, name
