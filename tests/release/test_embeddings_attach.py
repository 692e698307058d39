"""Attaching embeddings to published releases, on a directory root and on the S3 test server:
round trips through the read API, stable cell keys, bad input (nothing half-committed), races on
the embedding directory, list/show/remove, the CLI, and the ``obsm`` post-build step."""

from __future__ import annotations

import json
import threading
from pathlib import Path  # noqa: TC003 - fixture annotations are resolved by pytest
from typing import TYPE_CHECKING, Any

import anndata as ad
import cellxgene_census
import numpy as np
import pandas as pd
import pytest

import cellcensus
from cellcensus import experimental
from cellcensus.embeddings import (
    EmbeddingInput,
    EmbeddingMetadata,
    add_embedding,
    add_obsm_layer,
    find_orphans,
    list_embeddings,
    read_contributions,
    remove_embedding,
    show_embedding,
)
from cellcensus.errors import BadInputError, NotFoundError, PermissionDeniedError
from cellcensus.release import ReleaseRoot, publish
from cellcensus.release._local import LocalRoot
from cellcensus.release._s3 import S3Root
from tests._cli import run_cli
from tests._s3server import make_settings
from tests._tinybuild import DATASET_IDS, N_OBS, N_VAR

if TYPE_CHECKING:
    from cellcensus.settings import Settings
    from tests._s3server import S3Server

TAG = "2026-11-01"
DIMS = 6


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def published(
    request: pytest.FixtureRequest, tmp_path: Path, unique_prefix: str, census_build: Path
) -> tuple[ReleaseRoot, Settings | None]:
    """The tiny census published as ``TAG`` to a fresh root on each backend; yields (root,
    settings to read it with)."""
    if request.param == "local":
        root: ReleaseRoot = LocalRoot(tmp_path / "cell-census")
        reader = None
    else:
        server = request.getfixturevalue("s3_server")
        root = S3Root(f"s3://public/{unique_prefix}/", make_settings(server, "publisher"))
        reader = make_settings(server, "reader")
    publish(census_build, root, tag=TAG, lts=True)
    return root, reader


@pytest.fixture
def local_published(tmp_path: Path, census_build: Path) -> tuple[ReleaseRoot, None]:
    """The tiny census published as ``TAG`` to a fresh directory root."""
    root = LocalRoot(tmp_path / "cell-census")
    publish(census_build, root, tag=TAG, lts=True)
    return root, None


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIMS)).astype(np.float32)


def _root_arg(root: ReleaseRoot) -> str:
    return root.uri


def _nothing_stored(root: ReleaseRoot) -> None:
    assert not root.exists("contributions.json") or not read_contributions(root).entries
    assert list(root.list_objects("embeddings/")) == []


# ---------------------------------------------------------------------------- round trip
def test_attach_discover_read_remove(
    published: tuple[ReleaseRoot, Settings | None], tmp_path: Path
) -> None:
    root, reader = published
    subset = np.sort(np.random.default_rng(1).choice(N_OBS, size=40, replace=False))
    vectors = _vectors(len(subset))
    np.save(tmp_path / "emb.npy", vectors[::-1])  # any row order: keys say which cell
    np.save(tmp_path / "ids.npy", subset[::-1])
    res = add_embedding(
        root,
        "stable",
        tmp_path / "emb.npy",
        joinids=tmp_path / "ids.npy",
        name="scvi",
        organism="Homo sapiens",
    )
    e = res.entry
    assert (e.census_version, e.experiment_name, e.data_type) == (
        TAG,
        "homo_sapiens",
        "obs_embedding",
    )
    assert (e.n_embeddings, e.n_features) == (40, DIMS)
    assert res.uri == root.object_uri(f"embeddings/{TAG}/{e.id}/")
    assert read_contributions(root).entries[e.id] == e
    assert root.exists(f"embeddings/{TAG}/{e.id}.manifest.json")

    # discover
    kw: dict[str, Any] = {"release_root": _root_arg(root), "settings": reader}
    listed = experimental.get_all_available_embeddings("stable", **kw)
    assert [d["id"] for d in listed] == [e.id]
    md = experimental.get_embedding_metadata_by_name("scvi", "homo_sapiens", TAG, **kw)
    assert md == e.to_dict()
    assert experimental.get_all_census_versions_with_embedding("scvi", "Homo sapiens", **kw) == [
        TAG
    ]
    assert experimental.get_embedding_metadata(md["uri"], settings=reader) == e.to_dict()
    with pytest.raises(ValueError, match="No embeddings found"):
        experimental.get_embedding_metadata_by_name(
            "scvi", "homo_sapiens", TAG, "var_embedding", **kw
        )

    # read: equal to the input, NaN for cells without a vector
    expected = np.full((N_OBS, DIMS), np.nan, dtype=np.float32)
    expected[subset] = vectors
    ids = np.arange(N_OBS, dtype=np.int64)[::-1].copy()
    got = experimental.get_embedding(TAG, md["uri"], ids, **kw)
    np.testing.assert_array_equal(got, expected[ids])

    with cellcensus.open_soma(census_version=TAG, **kw) as census:
        adata = cellcensus.get_anndata(
            census, "Homo sapiens", obs_embeddings=["scvi"], obs_column_names=["cell_type"]
        )
    assert list(adata.obs.columns) == ["cell_type"]
    np.testing.assert_array_equal(adata.obsm["scvi"], expected)

    # list, show, remove (entry first, then data)
    assert [x.id for x in list_embeddings(root, tag="latest")] == [e.id]
    det = show_embedding(root, "scvi")
    assert det.objects > 0
    assert det.total_bytes > 0
    assert remove_embedding(root, e.id) > 0
    assert read_contributions(root).entries == {}
    _nothing_stored(root)
    cellcensus.client.clear_cache()  # remote directory files are cached for a minute
    assert experimental.get_all_available_embeddings(TAG, **kw) == []


def test_stable_cell_keys_from_a_parquet_table(
    published: tuple[ReleaseRoot, Settings | None], tmp_path: Path
) -> None:
    root, reader = published
    rng = np.random.default_rng(2)
    joinids = rng.permutation(N_OBS)[:30]
    vectors = _vectors(30, seed=3)
    # the tiny census: cell i is observation obs<i> of dataset i % 2
    table = pd.DataFrame(
        {
            "dataset_id": [DATASET_IDS[j % 2] for j in joinids],
            "observation_joinid": [f"obs{j:04d}" for j in joinids],
            "embedding": list(vectors.astype(np.float64)),
        }
    )
    table.to_parquet(tmp_path / "emb.parquet")
    res = add_embedding(
        root, TAG, tmp_path / "emb.parquet", name="geneformer", organism="homo_sapiens"
    )
    got = experimental.get_embedding(
        TAG, res.uri, joinids.astype(np.int64), release_root=root.uri, settings=reader
    )
    np.testing.assert_array_equal(got, vectors)


def test_anndata_obsm_source_keyed_by_soma_joinid(
    published: tuple[ReleaseRoot, Settings | None], tmp_path: Path
) -> None:
    root, reader = published
    vectors = _vectors(N_OBS, seed=4)
    a = ad.AnnData(
        obs=pd.DataFrame({"soma_joinid": np.arange(N_OBS)}, index=[str(i) for i in range(N_OBS)])
    )
    a.obsm["X_umap_like"] = vectors.astype(np.float64)
    a.write_h5ad(tmp_path / "q.h5ad")
    res = add_embedding(
        root, TAG, tmp_path / "q.h5ad", obsm_key="X_umap_like", name="umap", organism="homo_sapiens"
    )
    assert res.entry.n_embeddings == N_OBS
    with cellcensus.open_soma(census_version=TAG, release_root=root.uri, settings=reader) as c:
        adata = cellcensus.get_anndata(
            c, "homo_sapiens", obs_coords=slice(10, 19), obs_embeddings=["umap"]
        )
    np.testing.assert_array_equal(adata.obsm["umap"], vectors[10:20])


def test_gene_embedding_as_varm(local_published: tuple[ReleaseRoot, None], tmp_path: Path) -> None:
    root, _ = local_published
    vectors = _vectors(N_VAR, seed=7)
    add_embedding(
        root,
        TAG,
        _npy(tmp_path, vectors),
        name="gene2vec",
        organism="homo_sapiens",
        data_type="var_embedding",
    )
    with cellcensus.open_soma(census_version=TAG, release_root=root.uri) as c:
        adata = cellcensus.get_anndata(
            c,
            "homo_sapiens",
            var_coords=[3, 1],
            var_embeddings=["gene2vec"],
            var_column_names=["feature_id"],
        )
        with pytest.raises(ValueError, match="both `varm_layers` and `var_embeddings`"):
            cellcensus.get_anndata(
                c, "homo_sapiens", varm_layers=["gene2vec"], var_embeddings=["gene2vec"]
            )
    np.testing.assert_array_equal(adata.varm["gene2vec"], vectors[[1, 3]])
    assert list(adata.var.columns) == ["feature_id"]


# ---------------------------------------------------------------------------- bad input
def _npy(tmp_path: Path, array: np.ndarray, name: str = "m.npy") -> Path:
    np.save(tmp_path / name, array)
    return tmp_path / name


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_CASES = [
    # (id, build the input, kwargs, error type, message fragment)
    (
        "one-dimensional",
        lambda p: _npy(p, np.zeros(N_OBS, np.float32)),
        {},
        BadInputError,
        "2-D matrix",
    ),
    (
        "more rows than cells",
        lambda p: _npy(p, np.zeros((N_OBS + 1, 3), np.float32)),
        {},
        BadInputError,
        "not cells",
    ),
    ("strings", lambda p: _npy(p, np.full((4, 2), "a")), {}, BadInputError, "real numbers"),
    (
        "nan row",
        lambda p: _npy(p, np.where(np.eye(N_OBS, 3) == 1, np.nan, 0.0)),
        {},
        BadInputError,
        "NaN",
    ),
    ("inf row", lambda p: _npy(p, np.full((3, 2), np.inf)), {}, BadInputError, "NaN or infinite"),
    (
        "keys and rows differ",
        lambda p: _npy(p, np.zeros((5, 2), np.float32)),
        {"joinids": "ids4"},
        BadInputError,
        "5 vectors but 4 keys",
    ),
    (
        "unknown joinids",
        lambda p: _npy(p, np.zeros((2, 2), np.float32)),
        {"joinids": "ids_unknown"},
        BadInputError,
        "not cells of homo_sapiens",
    ),
    (
        "duplicate joinids",
        lambda p: _npy(p, np.zeros((2, 2), np.float32)),
        {"joinids": "ids_dup"},
        BadInputError,
        "more than once",
    ),
    (
        "unknown organism",
        lambda p: _npy(p, np.zeros((3, 2), np.float32)),
        {"organism": "Danio rerio"},
        NotFoundError,
        "organisms: homo_sapiens",
    ),
    (
        "unknown release",
        lambda p: _npy(p, np.zeros((3, 2), np.float32)),
        {"tag": "2020-01-01"},
        NotFoundError,
        "not in release.json",
    ),
    (
        "unsafe name",
        lambda p: _npy(p, np.zeros((3, 2), np.float32)),
        {"name": "../x"},
        BadInputError,
        "path separator",
    ),
    ("missing file", lambda p: p / "nope.npy", {}, NotFoundError, "does not exist"),
    (
        "h5ad without key",
        lambda p: _write(p / "x.h5ad", b"not read"),
        {},
        BadInputError,
        "obsm key",
    ),
]


@pytest.mark.parametrize(
    ("source", "kwargs", "error", "fragment"),
    [c[1:] for c in BAD_CASES],
    ids=[c[0] for c in BAD_CASES],
)
def test_bad_input_is_refused_and_nothing_is_written(  # noqa: PLR0917 - parametrized
    local_published: tuple[ReleaseRoot, None],
    tmp_path: Path,
    source: Any,
    kwargs: dict[str, Any],
    error: type[Exception],
    fragment: str,
) -> None:
    root, _ = local_published
    np.save(tmp_path / "ids4.npy", np.arange(4))
    np.save(tmp_path / "ids_unknown.npy", np.array([0, N_OBS + 5]))
    np.save(tmp_path / "ids_dup.npy", np.array([3, 3]))
    kw: dict[str, Any] = {"name": "e", "organism": "homo_sapiens", "tag": TAG, **kwargs}
    if "joinids" in kw:
        kw["joinids"] = tmp_path / f"{kw['joinids']}.npy"
    tag = kw.pop("tag")
    with pytest.raises(error, match=fragment):
        add_embedding(root, tag, source(tmp_path), **kw)
    _nothing_stored(root)


@pytest.mark.s3
def test_bad_input_on_s3_leaves_nothing(
    s3_server: S3Server, census_build: Path, unique_prefix: str, tmp_path: Path
) -> None:
    root = S3Root(f"s3://public/{unique_prefix}/", make_settings(s3_server, "publisher"))
    publish(census_build, root, tag=TAG)
    with pytest.raises(BadInputError, match="NaN"):
        add_embedding(
            root,
            TAG,
            _npy(tmp_path, np.full((N_OBS, 2), np.nan)),
            name="a",
            organism="homo_sapiens",
        )
    np.save(tmp_path / "ids.npy", np.array([N_OBS]))
    with pytest.raises(BadInputError, match="not cells"):
        add_embedding(
            root,
            TAG,
            _npy(tmp_path, np.zeros((1, 2))),
            joinids=tmp_path / "ids.npy",
            name="a",
            organism="homo_sapiens",
        )
    with pytest.raises(PermissionDeniedError, match="needs credentials"):
        add_embedding(
            S3Root(root.uri, make_settings(s3_server, "anonymous")),
            TAG,
            _npy(tmp_path, np.zeros((N_OBS, 2))),
            name="a",
            organism="homo_sapiens",
        )
    _nothing_stored(root)


def test_duplicate_name_is_refused_and_the_first_is_kept(
    published: tuple[ReleaseRoot, Settings | None], tmp_path: Path
) -> None:
    root, _ = published
    first = add_embedding(
        root, TAG, _npy(tmp_path, _vectors(N_OBS)), name="scvi", organism="homo_sapiens"
    )
    before = list(root.list_objects("embeddings/"))
    with pytest.raises(BadInputError, match="already exists"):
        add_embedding(
            root,
            TAG,
            _npy(tmp_path, _vectors(N_OBS, 9), "b.npy"),
            name="scvi",
            organism="Homo sapiens",
        )
    assert list(read_contributions(root).entries) == [first.entry.id]
    assert list(root.list_objects("embeddings/")) == before
    # the same name as a var embedding, or under another name, is fine
    add_embedding(root, TAG, _npy(tmp_path, _vectors(N_OBS)), name="scvi2", organism="homo_sapiens")
    assert len(read_contributions(root).entries) == 2


def test_concurrent_attaches_of_one_name_commit_exactly_one(
    published: tuple[ReleaseRoot, Settings | None], tmp_path: Path
) -> None:
    """Two writers pass the early duplicate check at once; the compare-and-swap commit lets one
    win, and the loser deletes what it uploaded (no orphans)."""
    root, _ = published
    barrier = threading.Barrier(2)
    results: list[object] = []
    inp = EmbeddingInput(matrix=_vectors(N_OBS), source="mem", soma_joinids=np.arange(N_OBS))

    def attach() -> None:
        barrier.wait()
        try:
            results.append(add_embedding(root, TAG, inp, name="race", organism="homo_sapiens"))
        except BadInputError as e:
            results.append(e)

    threads = [threading.Thread(target=attach) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results if isinstance(r, BadInputError)]
    assert len(results) == 2
    assert len(read_contributions(root).entries) == 1
    if errors:  # both raced past the early check: the loser cleaned up
        assert "already exists" in str(errors[0])
    assert find_orphans(root) == []


def test_a_commit_that_loses_to_a_concurrent_writer_deletes_its_upload(
    local_published: tuple[ReleaseRoot, None], tmp_path: Path
) -> None:
    """Deterministically the losing side of the race above: the name is taken between the early
    check and the commit; the compare-and-swap refuses the entry and the upload is deleted."""
    import datetime as dt

    from cellcensus._formats.manifest import ManifestObject
    from cellcensus.embeddings._attach import _claim_upload_commit, _hash, _make_entry, _stage
    from cellcensus.embeddings._census import KeyedMatrix, open_census, resolve_keys
    from cellcensus.release import Manifest

    root, _ = local_published
    inp = EmbeddingInput(matrix=_vectors(N_OBS), source="mem", soma_joinids=np.arange(N_OBS))
    with open_census(root, TAG) as census:
        km: KeyedMatrix = resolve_keys(census, "homo_sapiens", inp)
    entry = _make_entry(
        root,
        TAG,
        km,
        name="late",
        exp_name="homo_sapiens",
        data_type="obs_embedding",
        measurement_name="RNA",
        index=False,
        metadata=EmbeddingMetadata(),
        today=dt.date(2026, 12, 1),
    )
    staged = tmp_path / "staged"
    staged.mkdir()
    files, _ = _stage(staged, entry, km, index=False, partitions=None)
    digests = _hash(files, 2, None)
    manifest = Manifest(
        tag=TAG,
        objects=tuple(
            ManifestObject(path=p, size=d.size, sha256=d.sha256) for p, d in digests.items()
        ),
    )
    winner = add_embedding(root, TAG, inp, name="late", organism="homo_sapiens")  # wins the name
    with pytest.raises(BadInputError, match="already exists"):
        _claim_upload_commit(root, entry, files, digests, manifest, jobs=2, progress=None)
    assert list(read_contributions(root).entries) == [winner.entry.id]
    assert find_orphans(root) == []
    assert not root.exists(f"embeddings/{TAG}/{entry.id}.manifest.json")


def test_removing_an_unknown_embedding(published: tuple[ReleaseRoot, Settings | None]) -> None:
    root, _ = published
    with pytest.raises(NotFoundError, match="no embedding"):
        remove_embedding(root, "nope")
    with pytest.raises(NotFoundError, match="no embedding data"):
        remove_embedding(root, f"{TAG}/nope-1")
    with pytest.raises(BadInputError, match=r"contains '\.\.'"):
        remove_embedding(root, "../x/nope-1")


def test_orphans_are_found_and_removed(
    published: tuple[ReleaseRoot, Settings | None], tmp_path: Path
) -> None:
    """Data an interrupted attach left behind is invisible to readers and removable."""
    root, _ = published
    res = add_embedding(
        root, TAG, _npy(tmp_path, _vectors(N_OBS)), name="o", organism="homo_sapiens"
    )
    # simulate the state after a crash between upload and commit: the entry is gone, data stays
    from cellcensus.embeddings._attach import _update

    _update(root, lambda d: d.without(res.entry.id))
    assert find_orphans(root) == [f"{TAG}/{res.entry.id}"]
    assert remove_embedding(root, f"{TAG}/{res.entry.id}") > 0
    _nothing_stored(root)


# ---------------------------------------------------------------------------- CLI
@pytest.mark.slow  # five CLI processes: ~45 s on a shared 2-core machine
def test_cli_add_list_show_remove(census_build: Path, tmp_path: Path) -> None:
    root = tmp_path / "cell-census"
    publish(census_build, root, tag=TAG, lts=True)
    src = _npy(tmp_path, _vectors(N_OBS))
    proc = run_cli(
        "embeddings",
        "add",
        str(root),
        TAG,
        str(src),
        "--name",
        "scvi",
        "--organism",
        "Homo sapiens",
        "--title",
        "t",
        check=True,
    )
    assert "attached homo_sapiens-scvi-" in proc.stdout
    proc = run_cli("embeddings", "list", str(root), "--json", check=True)
    [entry] = json.loads(proc.stdout)
    assert entry["title"] == "t"
    assert entry["n_features"] == DIMS
    proc = run_cli("embeddings", "show", str(root), "scvi", check=True)
    assert json.loads(proc.stdout)["entry"]["id"] == entry["id"]
    bad = run_cli(
        "embeddings",
        "add",
        str(root),
        TAG,
        str(src),
        "--name",
        "scvi",
        "--organism",
        "homo_sapiens",
    )
    assert bad.returncode == 1
    assert "already exists" in bad.stderr
    assert "Traceback" not in bad.stderr
    proc = run_cli("embeddings", "remove", str(root), entry["id"], check=True)
    assert json.loads((root / "contributions.json").read_text()) == {}


# ---------------------------------------------------------------------------- obsm
def test_obsm_post_build_step_then_publish(build_copy: Path, tmp_path: Path) -> None:
    vectors = _vectors(N_OBS, seed=5)
    res = add_obsm_layer(build_copy, _npy(tmp_path, vectors), name="scvi", organism="homo_sapiens")
    assert res.n_embeddings == N_OBS
    with pytest.raises(BadInputError, match="already has an obsm layer"):
        add_obsm_layer(build_copy, _npy(tmp_path, vectors), name="scvi", organism="homo_sapiens")
    steps = json.loads((build_copy / "build.json").read_text())["post_build_steps"]
    assert [s["name"] for s in steps] == ["scvi"]
    root = tmp_path / "cell-census"
    publish(build_copy, root, tag=TAG)
    with cellxgene_census.open_soma(uri=str(root / TAG / "soma")) as census:
        adata = cellxgene_census.get_anndata(census, "Homo sapiens", obsm_layers=["scvi"])
    np.testing.assert_array_equal(adata.obsm["scvi"], vectors)


@pytest.mark.slow  # three CLI processes: ~30 s on a shared 2-core machine
def test_cli_add_with_obsm_publishes_a_new_build(build_copy: Path, tmp_path: Path) -> None:
    root = tmp_path / "cell-census"
    vectors = _vectors(N_OBS, seed=6)
    src = _npy(tmp_path, vectors)
    args = (
        "embeddings",
        "add",
        str(root),
        TAG,
        str(src),
        "--name",
        "scvi",
        "--organism",
        "homo_sapiens",
        "--obsm",
    )
    bad = run_cli(*args)
    assert bad.returncode == 1
    assert "--build-dir" in bad.stderr
    run_cli(*args, "--build-dir", str(build_copy), "--lts", check=True)
    with cellcensus.open_soma(census_version="stable", release_root=root) as census:
        a = cellcensus.get_anndata(census, "homo_sapiens", obsm_layers=["scvi"])
        b = cellcensus.get_anndata(census, "homo_sapiens", obs_embeddings=["scvi"])
    np.testing.assert_array_equal(a.obsm["scvi"], vectors)
    np.testing.assert_array_equal(b.obsm["scvi"], vectors)
    again = run_cli(*args, "--build-dir", str(build_copy))
    assert again.returncode == 1
    assert "already published" in again.stderr
