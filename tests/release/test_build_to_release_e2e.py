"""End to end with the real builder: S3 sources → build → publish → official client reads it."""

from __future__ import annotations

import csv
import hashlib
from typing import TYPE_CHECKING, Any

import cellxgene_census
import pytest
import tiledbsoma

from cellcensus.builder import BuildOptions, BuildResult, build_census
from cellcensus.builder._stage import stage_source
from cellcensus.builder.manifest import ManifestEntry
from cellcensus.errors import BadInputError, IntegrityError
from cellcensus.release import publish, read_directory, sync, verify

if TYPE_CHECKING:
    from pathlib import Path

    from cellcensus.synth import SynthCorpus
    from tests._s3server import S3Env

pytestmark = pytest.mark.s3


@pytest.mark.slow  # 55 s CPU measured (2026-12-02)
def test_real_build_published_to_s3_reads_with_the_official_client(
    small_build: BuildResult, s3: S3Env, tmp_path: Path
) -> None:
    root = s3.root_uri("public")
    res = publish(small_build.out_dir, root, tag="2026-11-01", settings=s3.publisher)
    assert read_directory(root, settings=s3.anon).resolve("latest") == "2026-11-01"
    assert verify(root, "2026-11-01", settings=s3.anon).ok
    with cellxgene_census.open_soma(uri=res.soma_uri, tiledb_config=s3.anon.tiledb_config()) as c:
        n_human = c["census_data"]["homo_sapiens"].obs.count
        obs = (
            c["census_data"]["homo_sapiens"]
            .obs.read(value_filter="is_primary_data == True", column_names=["soma_joinid"])
            .concat()
        )
        assert obs.num_rows > 0
        adata = cellxgene_census.get_anndata(
            c, "Mus musculus", obs_value_filter="sex == 'female'", obs_column_names=["sex"]
        )
        assert adata.n_obs > 0
        assert set(adata.obs["sex"]) == {"female"}
        datasets = c["census_info"]["datasets"].read().concat().to_pandas()
        assert len(datasets) == len([d for d in small_build.datasets if d["status"] == "included"])
    ctx = tiledbsoma.SOMATileDBContext(tiledb_config={**s3.anon.tiledb_config()})
    with tiledbsoma.Collection[Any].open(res.soma_uri, context=ctx) as census:
        assert "mus_musculus" in census["census_data"]
    dest = tmp_path / "copy"
    sync(root, "2026-11-01", dest, settings=s3.anon)
    with cellxgene_census.open_soma(uri=str(dest / "soma")) as c:
        assert c["census_data"]["homo_sapiens"].obs.count == n_human


def _upload_corpus(small_corpus: SynthCorpus, s3: S3Env, prefix: str) -> Path:
    client = s3.publisher.boto3_client()
    with small_corpus.manifest_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        key = f"{prefix}/{row['dataset_id']}.h5ad"
        client.upload_file(row["dataset_asset_h5ad_uri"], "private", key)
        row["dataset_asset_h5ad_uri"] = f"s3://private/{key}"
    manifest = small_corpus.manifest_path.parent.parent / f"s3-manifest-{prefix}.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


@pytest.mark.slow  # 29 s CPU measured (2026-12-02)
def test_build_from_s3_sources_equals_local_build(
    small_corpus: SynthCorpus, small_build: BuildResult, s3: S3Env, tmp_path: Path
) -> None:
    manifest = _upload_corpus(small_corpus, s3, s3.prefix)
    result = build_census(
        manifest,
        tmp_path / "from-s3",
        options=BuildOptions(tag="2026-11-01", chunk_nnz=50_000, validation_sample_cells=16),
        settings=s3.reader,
    )
    local = {d["dataset_id"]: d["sha256"] for d in small_build.datasets}
    remote = {d["dataset_id"]: d["sha256"] for d in result.datasets}
    assert remote == local  # byte-identical staged copies
    assert result.total_cell_count == small_build.total_cell_count
    # anonymous access to the private bucket is refused, with the dataset named
    with pytest.raises(BadInputError, match=r"cannot (read|download)"):
        build_census(manifest, tmp_path / "anon", settings=s3.anon)
    assert not (tmp_path / "anon").exists()


def test_s3_staging_resumes_a_partial_download_and_verifies_it(
    small_corpus: SynthCorpus, s3: S3Env, tmp_path: Path
) -> None:
    source = next(iter(small_corpus.paths.values()))
    data = source.read_bytes()
    key = f"{s3.prefix}/one.h5ad"
    s3.publisher.boto3_client().upload_file(str(source), "private", key)
    entry = ManifestEntry(dataset_id="one", uri=f"s3://private/{key}")
    h5ads = tmp_path / "h5ads"
    h5ads.mkdir()
    # an interrupted earlier download left the first half
    (h5ads / "one.h5ad.part").write_bytes(data[: len(data) // 2])
    staged = stage_source(entry, h5ads, settings=s3.reader)
    assert staged.path.read_bytes() == data
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    # a partial file that does not match the object is caught by the MD5 check and removed
    (h5ads / "one.h5ad").unlink()
    (h5ads / "one.h5ad.part").write_bytes(b"\0" * (len(data) // 2))
    with pytest.raises(IntegrityError, match="MD5"):
        stage_source(entry, h5ads, settings=s3.reader)
    assert not (h5ads / "one.h5ad.part").exists()
