"""Publish to the real S3 test server and read back with the official client and tiledbsoma."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cellxgene_census
import numpy as np
import pytest
import tiledbsoma

from cellcensus._storage.hashing import hash_file, hash_stream
from cellcensus.errors import BadInputError, IntegrityError, PermissionDeniedError
from cellcensus.release import publish, read_directory, read_manifest, sync, verify
from cellcensus.release._root import MULTIPART_CHUNKSIZE
from cellcensus.release._s3 import S3Root
from cellcensus.release.publish import _plan_uploads
from tests._cli import cli_env, publisher_env, run_cli, s3_cli_args
from tests._tinybuild import N_OBS

if TYPE_CHECKING:
    import pandas as pd

    from tests._s3server import S3Env, S3Server

pytestmark = pytest.mark.s3

TAG = "2026-11-01"


def _put_count(server: S3Server, bucket: str) -> int:
    """Successful PUT requests the server has answered for ``bucket`` (its own metrics)."""
    m = re.search(
        rf'SeaweedFS_s3_request_total\{{bucket="{bucket}",code="200",type="PUT"\}} (\d+)',
        server.metrics_text(),
    )
    return int(m.group(1)) if m else 0


def _read_x(census: tiledbsoma.Collection[Any]) -> pd.DataFrame:
    x = census["census_data"]["homo_sapiens"].ms["RNA"].X["raw"]
    table: pd.DataFrame = x.read().tables().concat().to_pandas()
    return table.sort_values(["soma_dim_0", "soma_dim_1"])


def _local_x(build: Path) -> pd.DataFrame:
    with tiledbsoma.Collection[Any].open(str(build / "soma")) as c:
        return _read_x(c)


def test_publish_list_and_open_anonymously_from_the_public_bucket(
    s3: S3Env, census_build: Path
) -> None:
    root_uri = f"s3://public/{s3.prefix}/"
    res = publish(census_build, root_uri, tag=TAG, settings=s3.publisher)
    assert res.uploaded == res.total_objects > 50
    assert res.soma_uri == f"{root_uri}{TAG}/soma/"

    # list, anonymously (library and CLI)
    d = read_directory(root_uri, s3.anon)
    assert d.resolve("latest") == TAG
    e = d.builds[TAG]
    assert e.soma.relative_uri == f"{s3.prefix}/{TAG}/soma/"
    assert e.soma.uri == res.soma_uri
    assert e.soma.s3_region == s3.anon.region
    proc = run_cli(
        "releases", "list", "--root", root_uri, "--no-sign-request", *s3_cli_args(s3.server)
    )
    assert proc.returncode == 0, proc.stderr
    assert TAG in proc.stdout
    assert "latest" in proc.stdout

    # official client, anonymous
    want = _local_x(census_build)
    with cellxgene_census.open_soma(uri=res.soma_uri, tiledb_config=s3.anon.tiledb_config()) as c:
        obs = c["census_data"]["homo_sapiens"].obs.read().concat().to_pandas()
        assert len(obs) == N_OBS
        assert set(obs["cell_type"]) == {"T cell", "B cell", "monocyte"}
        got = _read_x(c)
        adata = cellxgene_census.get_anndata(
            c, "Homo sapiens", obs_value_filter="cell_type == 'B cell'"
        )
    assert adata.n_obs == N_OBS // 3
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())

    # tiledbsoma directly, with a context built from the same settings
    ctx = tiledbsoma.SOMATileDBContext(tiledb_config={**s3.anon.tiledb_config()})
    with tiledbsoma.Collection[Any].open(res.soma_uri, context=ctx) as c:
        assert c["census_data"]["homo_sapiens"].obs.count == N_OBS


def test_private_bucket_needs_signed_requests(s3: S3Env, census_build: Path) -> None:
    root_uri = f"s3://private/{s3.prefix}/"
    res = publish(census_build, root_uri, tag=TAG, lts=True, settings=s3.publisher)

    # the seed's private-bucket config, plus endpoint settings and the reader's keys
    cfg: dict[str, str | float] = {
        "vfs.s3.no_sign_request": "false",
        "vfs.s3.region": s3.reader.region,
        "vfs.s3.endpoint_override": s3.server.endpoint_url,
        "vfs.s3.scheme": "http",
        "vfs.s3.use_virtual_addressing": "false",
        "vfs.s3.aws_access_key_id": s3.server.reader.access_key_id,
        "vfs.s3.aws_secret_access_key": s3.server.reader.secret_access_key,
    }
    assert s3.reader.tiledb_config() == cfg  # the settings object produces exactly that
    with cellxgene_census.open_soma(uri=res.soma_uri, tiledb_config=cfg) as c:
        assert c["census_data"]["homo_sapiens"].obs.count == N_OBS
    ctx = tiledbsoma.SOMATileDBContext(tiledb_config=cfg)
    with tiledbsoma.Collection[Any].open(res.soma_uri, context=ctx) as c:
        assert c["census_data"]["homo_sapiens"].ms["RNA"].var.count > 0
    assert read_directory(root_uri, s3.reader).resolve("stable") == TAG

    # anonymous: refused by TileDB and by cellcensus
    with pytest.raises(tiledbsoma.SOMAError):  # DoesNotExistError or an AccessDenied SOMAError
        cellxgene_census.open_soma(uri=res.soma_uri, tiledb_config=s3.anon.tiledb_config())
    with pytest.raises(PermissionDeniedError, match="refused"):
        read_directory(root_uri, s3.anon)
    with pytest.raises(PermissionDeniedError):
        sync(root_uri, TAG, Path("/nonexistent-never-created"), settings=s3.anon)


@pytest.mark.slow  # 19 s CPU measured (2026-12-02)
def test_publish_without_credentials_is_refused(
    s3: S3Env, census_build: Path, tmp_path: Path
) -> None:
    root_uri = f"s3://public/{s3.prefix}/"
    with pytest.raises(PermissionDeniedError, match="needs credentials"):
        publish(census_build, root_uri, tag=TAG, settings=s3.anon)
    # CLI with no credentials at all in the environment (isolated: no ~/.aws, no IMDS)
    proc = run_cli("publish", str(census_build), root_uri, "--tag", TAG, *s3_cli_args(s3.server))
    assert proc.returncode == 1
    assert "no S3 credentials were found" in proc.stderr
    assert "Traceback" not in proc.stderr
    # the reader identity may read but not write
    reader_env = cli_env(
        AWS_ACCESS_KEY_ID=s3.server.reader.access_key_id,
        AWS_SECRET_ACCESS_KEY=s3.server.reader.secret_access_key,
    )
    proc = run_cli(
        "publish",
        str(census_build),
        root_uri,
        "--tag",
        TAG,
        *s3_cli_args(s3.server),
        env=reader_env,
    )
    assert proc.returncode == 1
    assert "was refused" in proc.stderr
    assert list(S3Root(root_uri, s3.publisher).list_objects()) == []


@pytest.mark.slow  # 34 s CPU measured (2026-12-02)
def test_credentials_never_appear_in_logs_or_files(
    s3: S3Env,
    census_build: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = s3.server.publisher.secret_access_key
    root_uri = f"s3://public/{s3.prefix}/"
    with caplog.at_level(logging.DEBUG):
        publish(census_build, root_uri, tag=TAG, settings=s3.publisher)
        verify(root_uri, TAG, settings=s3.publisher)
        sync(root_uri, TAG, tmp_path / "lib-copy", settings=s3.publisher)
        logging.getLogger("cellcensus").info("settings: %r", s3.publisher)
    assert caplog.records, "debug logging was captured"
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert secret not in logged

    env = publisher_env(s3.server)
    outputs = []
    for args in (
        ["-v", "publish", str(census_build), root_uri, "--tag", "2026-11-02"],
        ["sync", root_uri, "latest", str(tmp_path / "cli-copy")],
        ["verify", root_uri, "latest"],
        ["releases", "show", "latest", "--root", root_uri],
        ["mirrors", "list", "--root", root_uri],
    ):
        proc = run_cli(*args, *s3_cli_args(s3.server), env=env, check=True)
        outputs.append(proc.stdout + proc.stderr)
    cap = capsys.readouterr()
    outputs.append(cap.out + cap.err)
    for text in outputs:
        assert secret not in text
        assert s3.server.publisher.access_key_id not in text or "Credential=" in text

    r = S3Root(root_uri, s3.publisher)
    files = {k.key: r.read_bytes(k.key) for k in r.list_objects() if k.key.endswith(".json")}
    assert {"release.json", "mirrors.json", f"{TAG}/manifest.json", f"{TAG}/build.json"} <= set(
        files
    )
    for key, data in files.items():
        assert secret.encode() not in data, key
        assert s3.server.publisher.access_key_id.encode() not in data, key
    for p in tmp_path.rglob("*.json"):
        assert secret.encode() not in p.read_bytes()


def test_build_json_containing_the_secret_is_not_published(s3: S3Env, build_copy: Path) -> None:
    bj = build_copy / "build.json"
    doc = json.loads(bj.read_text())
    doc["config"] = {"s3": {"secret": s3.publisher.secret_access_key}}
    bj.write_text(json.dumps(doc))
    with pytest.raises(BadInputError, match="contains the S3 secret key"):
        publish(build_copy, f"s3://public/{s3.prefix}/", tag=TAG, settings=s3.publisher)


@pytest.mark.slow  # 19 s CPU measured (2026-12-02)
def test_interrupted_publish_leaves_release_json_and_resumes(
    s3: S3Env, census_build: Path, tmp_path: Path
) -> None:
    root_uri = f"s3://public/{s3.prefix}/"
    first = publish(census_build, root_uri, tag="2026-10-01", settings=s3.publisher)
    r = S3Root(root_uri, s3.publisher)
    before = r.read_bytes("release.json")

    kill_after = 30
    proc = run_cli(
        "publish",
        str(census_build),
        root_uri,
        "--tag",
        TAG,
        *s3_cli_args(s3.server),
        # TMPDIR under tmp_path: the killed process leaves its staged report's temporary directory
        env=publisher_env(s3.server)
        | {"CELLCENSUS_TEST_FAIL_AFTER_UPLOADS": str(kill_after), "TMPDIR": str(tmp_path)},
    )
    assert proc.returncode == -9, proc.stderr  # SIGKILL, mid-upload
    s3.server.wait_idle()  # the server finishes requests whose body had fully arrived
    assert r.read_bytes("release.json") == before
    present = {o.key for o in r.list_objects(f"{TAG}/")} - {f"{TAG}/manifest.json"}
    total = first.total_objects
    assert kill_after <= len(present) < total

    puts_before = _put_count(s3.server, "public")
    res = publish(census_build, root_uri, tag=TAG, settings=s3.publisher)
    puts = _put_count(s3.server, "public") - puts_before
    assert res.skipped == len(present)
    assert res.uploaded == total - len(present)
    # the server saw exactly: the missing objects, and the release.json commit
    assert puts == res.uploaded + 1
    d = read_directory(root_uri, s3.publisher)
    assert set(d.builds) == {"2026-10-01", TAG}
    assert d.resolve("latest") == TAG
    assert verify(root_uri, TAG, settings=s3.publisher).ok


def test_published_tags_are_immutable(s3: S3Env, census_build: Path, build_copy: Path) -> None:
    root_uri = f"s3://public/{s3.prefix}/"
    publish(census_build, root_uri, tag=TAG, settings=s3.publisher)
    (build_copy / "build.json").write_text((build_copy / "build.json").read_text() + " ")
    proc = run_cli(
        "publish",
        str(build_copy),
        root_uri,
        "--tag",
        TAG,
        *s3_cli_args(s3.server),
        env=publisher_env(s3.server),
    )
    assert proc.returncode == 1
    assert "published tags are immutable" in proc.stderr


def test_two_concurrent_publishes_both_land(s3: S3Env, census_build: Path) -> None:
    root_uri = f"s3://public/{s3.prefix}/"
    env = publisher_env(s3.server)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cellcensus._cli",
                "publish",
                str(census_build),
                root_uri,
                "--tag",
                tag,
                *s3_cli_args(s3.server),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("2026-11-01", "2026-11-08")
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    d = read_directory(root_uri, s3.publisher)
    assert set(d.builds) == {"2026-11-01", "2026-11-08"}
    assert d.resolve("latest") == "2026-11-08"


@pytest.mark.slow  # 46 s CPU measured (2026-12-02)
def test_corrupted_object_is_reported_by_verify_and_refused_by_sync(
    s3: S3Env, census_build: Path, tmp_path: Path
) -> None:
    root_uri = f"s3://public/{s3.prefix}/"
    publish(census_build, root_uri, tag=TAG, settings=s3.publisher)
    m = read_manifest(S3Root(root_uri, s3.anon), TAG)
    victim = next(o for o in m.objects if o.path.startswith("h5ads/"))
    client = s3.publisher.boto3_client()
    key = f"{s3.prefix}/{TAG}/{victim.path}"
    original = client.get_object(Bucket="public", Key=key)["Body"].read()
    corrupted = bytes([original[0] ^ 0xFF]) + original[1:]  # same size, one byte changed
    client.put_object(Bucket="public", Key=key, Body=corrupted)

    report = verify(root_uri, TAG, settings=s3.anon)
    assert not report.ok
    assert [(p.path, p.kind) for p in report.problems] == [(victim.path, "sha256")]

    proc = run_cli("verify", root_uri, TAG, "--no-sign-request", *s3_cli_args(s3.server))
    assert proc.returncode == 1
    assert f"MISMATCH {victim.path}: sha256" in proc.stdout
    assert "do not match manifest.json" in proc.stderr

    dest = tmp_path / "copy"
    with pytest.raises(IntegrityError, match=re.escape(victim.path)):
        sync(root_uri, TAG, dest, settings=s3.anon)
    assert not (dest / victim.path).exists()
    assert not list(dest.rglob("*.cellcensus-part"))
    proc = run_cli(
        "sync", root_uri, TAG, str(tmp_path / "cli"), "--no-sign-request", *s3_cli_args(s3.server)
    )
    assert proc.returncode == 1
    assert "do not match manifest.json" in proc.stderr

    # missing and unexpected objects are reported too
    client.put_object(Bucket="public", Key=key, Body=original)
    client.delete_object(Bucket="public", Key=f"{s3.prefix}/{TAG}/build.json")
    client.put_object(Bucket="public", Key=f"{s3.prefix}/{TAG}/soma/stray.bin", Body=b"x")
    kinds = {(p.path, p.kind) for p in verify(root_uri, TAG, settings=s3.anon).problems}
    assert kinds == {("build.json", "missing"), ("soma/stray.bin", "unexpected")}


def test_sync_is_resumable_and_verified(s3: S3Env, census_build: Path, tmp_path: Path) -> None:
    root_uri = f"s3://public/{s3.prefix}/"
    pub = publish(census_build, root_uri, tag=TAG, lts=True, settings=s3.publisher)
    dest = tmp_path / "copy"
    kill_after = 40
    proc = run_cli(
        "sync",
        root_uri,
        "stable",
        str(dest),
        "--no-sign-request",
        *s3_cli_args(s3.server),
        env=cli_env(CELLCENSUS_TEST_FAIL_AFTER_DOWNLOADS=str(kill_after)),
    )
    assert proc.returncode == -9, proc.stderr
    manifest = read_manifest(S3Root(root_uri, s3.anon), TAG).by_path()
    complete = {
        p.relative_to(dest).as_posix(): p.stat().st_mtime_ns
        for p in dest.rglob("*")
        if p.is_file() and ".cellcensus-part" not in p.name and p.name != ".cellcensus-sync.json"
    }
    assert kill_after <= len(complete) < pub.total_objects
    for rel in complete:  # whatever is in place is complete and correct
        assert hash_file(dest / rel, chunksize=MULTIPART_CHUNKSIZE).sha256 == manifest[rel].sha256

    res = sync(root_uri, "stable", dest, settings=s3.anon)
    assert res.skipped == len(complete)
    assert res.downloaded == pub.total_objects - len(complete)
    for rel, mtime in complete.items():  # not downloaded again
        assert (dest / rel).stat().st_mtime_ns == mtime
    assert (dest / "manifest.json").is_file()
    with cellxgene_census.open_soma(uri=str(dest / "soma")) as c:
        assert c["census_data"]["homo_sapiens"].obs.count == N_OBS
    again = sync(root_uri, "stable", dest, settings=s3.anon)
    assert (again.downloaded, again.skipped) == (0, pub.total_objects)

    only = sync(root_uri, TAG, tmp_path / "h5ads-only", only="h5ads", settings=s3.anon)
    assert {p.split("/")[0] for p in manifest if p.startswith("h5ads/")} == {"h5ads"}
    assert not (tmp_path / "h5ads-only" / "soma").exists()
    # the build's top-level files (build.json, the release report) come with either part
    assert only.total_objects == sum("/" not in p or p.startswith("h5ads/") for p in manifest)


def test_plain_aws_s3_sync_fetches_an_openable_release(
    s3: S3Env, census_build: Path, tmp_path: Path
) -> None:
    root_uri = f"s3://public/{s3.prefix}/"
    publish(census_build, root_uri, tag=TAG, settings=s3.publisher)
    aws = Path(sys.executable).parent / "aws"
    proc = subprocess.run(
        [
            str(aws),
            "s3",
            "sync",
            "--no-sign-request",
            "--endpoint-url",
            s3.server.endpoint_url,
            f"s3://public/{s3.prefix}/{TAG}/soma/",
            "./soma/",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=cli_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    # A fresh Python in that directory, as a user would do: TileDB resolves relative paths
    # against the working directory it saw first, so a chdir inside this test process would not do.
    code = (
        "import cellxgene_census\n"
        "with cellxgene_census.open_soma(uri='./soma/') as c:\n"
        "    e = c['census_data']['homo_sapiens']\n"
        "    x = e.ms['RNA'].X['raw'].read().tables().concat()\n"
        "    print(e.obs.count, len(x), float(x['soma_data'].to_numpy().sum()))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=cli_env(),
    )
    assert proc.returncode == 0, proc.stderr
    want = _local_x(census_build)
    n_obs, nnz, total = proc.stdout.split()
    assert (int(n_obs), int(nnz)) == (N_OBS, len(want))
    assert float(total) == pytest.approx(float(want["soma_data"].sum()))


def test_multipart_etag_is_predicted_and_a_resume_skips_the_object(
    s3: S3Env, tmp_path: Path
) -> None:
    """A file above the multipart threshold: the ETag we predict is the one the server computes,
    so publish verifies it without downloading it, and a resumed publish does not send it again."""
    big = tmp_path / "big.bin"
    rng = np.random.default_rng(3)
    big.write_bytes(rng.bytes(MULTIPART_CHUNKSIZE + 5 * 1024 * 1024))
    digest = hash_file(big, chunksize=MULTIPART_CHUNKSIZE)
    assert digest.s3_etag.endswith("-2")
    r = S3Root(f"s3://private/{s3.prefix}/", s3.publisher)
    key = f"{TAG}/h5ads/big.h5ad"
    r.upload_file(big, key, sha256=digest.sha256)
    info = r.stat(key)
    assert info is not None
    assert info.etag == digest.s3_etag
    assert r.head_sha256(key) == digest.sha256
    with r.open_read(key) as f:
        assert hash_stream(f, chunksize=MULTIPART_CHUNKSIZE).sha256 == digest.sha256
    files = [("h5ads/big.h5ad", big)]
    todo, stale = _plan_uploads(r, TAG, files, {"h5ads/big.h5ad": digest})
    assert (todo, stale) == ([], [])
    other = hash_file(big, chunksize=MULTIPART_CHUNKSIZE // 2)  # different chunking, same bytes
    assert other.s3_etag != digest.s3_etag
    todo, _ = _plan_uploads(r, TAG, files, {"h5ads/big.h5ad": other})
    assert todo == []  # recognised by the sha256 metadata instead
