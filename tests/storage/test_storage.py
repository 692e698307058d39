"""The storage layer: one shared test class run against a directory, the real S3 server, and
the same server's objects read as plain ``http://`` URLs (anonymous GETs of the public bucket).

Every backend must read, stat and stream an object, download it (fresh, resumed from a partial
file, through the parallel path), refuse a size or sha256 mismatch with a clear error that
leaves the destination untouched, and report a missing object as ``NotFoundError``; and upload
a file verified against its sha256, leaving nothing behind when refused or interrupted.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import botocore
import pytest

from cellcensus._storage import (
    READ,
    TRANSFER,
    DownloadMismatchError,
    UploadMismatchError,
    download,
    iter_bytes,
    map_s3_error,
    read_bytes,
    s3_client,
    sha256_file,
    stat,
    upload_file,
)
from cellcensus._storage import downloads as storage_downloads
from cellcensus._storage.hashing import hash_file, md5_file
from cellcensus.errors import (
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    ReleaseRootUnreachableError,
)
from cellcensus.settings import Settings
from tests._s3server import make_settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests._s3server import S3Server

DATA = bytes(range(256)) * 4099  # ~1 MB, not a multiple of the stream block


@dataclass(frozen=True)
class Backend:
    """Where test objects live and how to reach them."""

    name: str
    base: str
    settings: Settings | None
    writer: Settings | None
    tmp: Path
    #: where objects are written when ``base`` is read-only (http: the bucket behind the URLs)
    store: str | None = None

    def writable(self, name: str) -> str:
        """The URI that ``name`` is written to (its read URI is ``base + name``)."""
        return (self.store or self.base) + name

    def put(self, name: str, data: bytes) -> str:
        """Store ``data`` as ``name``; returns its (read) URI."""
        uri = self.writable(name)
        if self.writer is None:
            path = Path(uri.removeprefix("file://"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            s3_client(self.writer).put_object(Bucket=bucket, Key=key, Body=data)
        return self.base + name


@pytest.fixture(
    params=[
        "dir",
        "file-uri",
        pytest.param("s3", marks=pytest.mark.s3),
        pytest.param("http", marks=pytest.mark.s3),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path, unique_prefix: str) -> Backend:
    """A directory (as a path and as ``file://``), a prefix of the SeaweedFS server, or the
    same server's public bucket read over plain HTTP."""
    if request.param == "dir":
        return Backend("dir", f"{tmp_path}/objects/", None, None, tmp_path)
    if request.param == "file-uri":
        return Backend("file-uri", f"{(tmp_path / 'objects').as_uri()}/", None, None, tmp_path)
    server: S3Server = request.getfixturevalue("s3_server")
    if request.param == "http":
        return Backend(
            "http",
            f"{server.endpoint_url}/public/{unique_prefix}/",
            None,
            make_settings(server, "publisher"),
            tmp_path,
            store=f"s3://public/{unique_prefix}/",
        )
    return Backend(
        "s3",
        f"s3://private/{unique_prefix}/",
        make_settings(server, "reader"),
        make_settings(server, "publisher"),
        tmp_path,
    )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _names(backend: Backend, prefix: str) -> list[str]:
    """Names of the objects (and stray files) under ``prefix`` of a backend."""
    uri = backend.writable(prefix)
    if backend.writer is None:
        path = Path(uri.removeprefix("file://"))
        return sorted(p.name for p in path.iterdir()) if path.is_dir() else []
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    r = s3_client(backend.writer).list_objects_v2(Bucket=bucket, Prefix=key)
    return sorted(o["Key"][len(key) :] for o in r.get("Contents", []))


class TestStorage:
    def test_read_stat_and_stream(self, backend: Backend) -> None:
        uri = backend.put("a/obj.bin", DATA)
        assert read_bytes(uri, backend.settings) == DATA
        assert stat(uri, backend.settings).size == len(DATA)
        assert b"".join(iter_bytes(uri, settings=backend.settings)) == DATA
        assert b"".join(iter_bytes(uri, start=12345, settings=backend.settings)) == DATA[12345:]

    @pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
    def test_download_verified(
        self, backend: Backend, monkeypatch: pytest.MonkeyPatch, *, parallel: bool
    ) -> None:
        """Sequential reads, and large objects downloaded from the start (S3: boto3's transfer
        manager)."""
        if parallel:
            monkeypatch.setattr(storage_downloads, "PARALLEL_THRESHOLD", 1)
        uri = backend.put("obj.bin", DATA)
        dest = backend.tmp / "out" / "obj.bin"
        dest.parent.mkdir()
        seen: list[int] = []
        done = download(
            uri,
            dest,
            settings=backend.settings,
            role=TRANSFER if parallel else READ,
            size=len(DATA),
            sha256=_sha(DATA),
            progress=seen.append,
        )
        assert dest.read_bytes() == DATA
        assert (done.size, done.sha256, done.resumed_from) == (len(DATA), _sha(DATA), 0)
        assert sum(seen) == len(DATA)
        assert not dest.with_name("obj.bin.part").exists()

    def test_empty_object(self, backend: Backend) -> None:
        uri = backend.put("empty.bin", b"")
        dest = backend.tmp / "empty.bin"
        done = download(uri, dest, settings=backend.settings, size=0, sha256=_sha(b""))
        assert dest.read_bytes() == b""
        assert done.sha256 == _sha(b"")

    def test_download_without_expectations_hashes_anyway(self, backend: Backend) -> None:
        uri = backend.put("obj.bin", DATA)
        dest = backend.tmp / "obj.bin"
        done = download(uri, dest, settings=backend.settings)
        assert done.sha256 == _sha(DATA) == sha256_file(dest)

    def test_resume_after_an_interrupted_partial(
        self, backend: Backend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        uri = backend.put("obj.bin", DATA)
        dest = backend.tmp / "obj.bin"
        third = len(DATA) // 3
        dest.with_name("obj.bin.part").write_bytes(DATA[:third])
        starts: list[int] = []
        real = iter_bytes

        def spy(uri: str, *, start: int = 0, **kw: object) -> Iterator[bytes]:
            starts.append(start)
            return real(uri, start=start, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr("cellcensus._storage.downloads.iter_bytes", spy)
        seen: list[int] = []
        done = download(
            uri,
            dest,
            settings=backend.settings,
            size=len(DATA),
            sha256=_sha(DATA),
            progress=seen.append,
        )
        assert starts == [third]  # only the rest was read
        assert done.resumed_from == third
        assert sum(seen) == len(DATA)
        assert dest.read_bytes() == DATA
        # resume=False starts over
        dest.with_name("obj.bin.part").write_bytes(b"garbage")
        starts.clear()
        download(uri, dest, settings=backend.settings, sha256=_sha(DATA), resume=False)
        assert starts == [0]
        assert dest.read_bytes() == DATA

    @pytest.mark.parametrize(
        ("size_delta", "sha256", "words"),
        [
            (1, None, "expected"),
            (0, "0" * 64, "sha256"),
        ],
        ids=["size", "sha256"],
    )
    def test_mismatch_is_refused_and_leaves_dest_untouched(
        self, backend: Backend, size_delta: int, sha256: str | None, words: str
    ) -> None:
        uri = backend.put("obj.bin", DATA)
        dest = backend.tmp / "obj.bin"
        dest.write_bytes(b"the previous content")
        with pytest.raises(DownloadMismatchError, match=words) as e:
            download(
                uri, dest, settings=backend.settings, size=len(DATA) + size_delta, sha256=sha256
            )
        assert isinstance(e.value, IntegrityError)
        assert uri in str(e.value)
        assert "run again" in str(e.value)
        assert dest.read_bytes() == b"the previous content"
        assert not dest.with_name("obj.bin.part").exists()

    def test_corrupt_partial_is_caught_then_redone(self, backend: Backend) -> None:
        uri = backend.put("obj.bin", DATA)
        dest = backend.tmp / "obj.bin"
        part = dest.with_name("obj.bin.part")
        part.write_bytes(b"\0" * (len(DATA) // 2))  # right length so far, wrong bytes
        with pytest.raises(DownloadMismatchError, match="sha256"):
            download(uri, dest, settings=backend.settings, size=len(DATA), sha256=_sha(DATA))
        assert not part.exists()
        assert not dest.exists()
        download(uri, dest, settings=backend.settings, size=len(DATA), sha256=_sha(DATA))
        assert dest.read_bytes() == DATA

    def test_missing_object(self, backend: Backend) -> None:
        uri = backend.base + "nope.bin"
        dest = backend.tmp / "nope.bin"
        with pytest.raises(NotFoundError, match=r"nope\.bin"):
            stat(uri, backend.settings)
        with pytest.raises(NotFoundError):
            read_bytes(uri, backend.settings)
        with pytest.raises(NotFoundError):
            download(uri, dest, settings=backend.settings, resume=False)
        assert not dest.exists()
        assert not dest.with_name("nope.bin.part").exists()

    def test_hashing(self, backend: Backend) -> None:
        path = backend.tmp / "h.bin"
        path.write_bytes(DATA)
        assert sha256_file(path) == _sha(DATA)
        assert md5_file(path) == hashlib.md5(DATA, usedforsecurity=False).hexdigest()
        digest = hash_file(path, chunksize=8 * 1024 * 1024)
        assert (digest.size, digest.sha256) == (len(DATA), _sha(DATA))
        assert digest.s3_etag == md5_file(path)  # single part: the MD5
        empty = backend.tmp / "empty"
        empty.write_bytes(b"")
        assert sha256_file(empty) == _sha(b"")

    def test_upload_round_trip(self, backend: Backend) -> None:
        src = backend.tmp / "src.bin"
        src.write_bytes(DATA)
        uri = backend.base + "up/obj.bin"
        seen: list[int] = []
        done = upload_file(
            src,
            backend.writable("up/obj.bin"),
            sha256=_sha(DATA),
            callback=seen.append,
            settings=backend.writer,
        )
        assert (done.size, done.sha256) == (len(DATA), _sha(DATA))
        assert sum(seen) == len(DATA)
        assert read_bytes(uri, backend.settings) == DATA
        assert _names(backend, "up/") == ["obj.bin"]  # no temporary file left
        # replaced by a second upload
        src.write_bytes(DATA[::-1])
        upload_file(
            src, backend.writable("up/obj.bin"), sha256=_sha(DATA[::-1]), settings=backend.writer
        )
        assert read_bytes(uri, backend.settings) == DATA[::-1]

    def test_upload_of_a_changed_file_is_refused(self, backend: Backend) -> None:
        src = backend.tmp / "src.bin"
        src.write_bytes(DATA)
        expected = _sha(DATA)
        src.write_bytes(DATA[:-1] + b"x")  # changed since it was hashed
        uri = backend.base + "up/obj.bin"
        with pytest.raises(UploadMismatchError, match="sha256") as e:
            upload_file(
                src, backend.writable("up/obj.bin"), sha256=expected, settings=backend.writer
            )
        assert isinstance(e.value, IntegrityError)
        assert "nothing was written" in str(e.value)
        assert _names(backend, "up/") == []
        with pytest.raises(NotFoundError):
            stat(uri, backend.settings)

    def test_interrupted_upload_leaves_nothing(self, backend: Backend) -> None:
        """Local: the temporary file is removed. (S3 has no partial object: an interrupted
        transfer never completes; the transfer manager runs callbacks in its threads.)"""
        if backend.writer is not None:
            pytest.skip("local destinations only")
        src = backend.tmp / "src.bin"
        src.write_bytes(DATA)
        uri = backend.base + "up/obj.bin"

        def interrupt(_n: int) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            upload_file(src, uri, sha256=_sha(DATA), callback=interrupt, settings=backend.writer)
        assert _names(backend, "up/") == []


# ---------------------------------------------------------------------------- S3 only
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_one_client_per_settings_and_role(s3_server: S3Server) -> None:
    reader = make_settings(s3_server, "reader")
    assert s3_client(reader) is s3_client(reader)
    assert s3_client(reader.replace()) is s3_client(reader)  # equal settings, same client
    assert s3_client(reader, READ) is not s3_client(reader)
    assert s3_client(make_settings(s3_server, "publisher")) is not s3_client(reader)
    anon = s3_client(make_settings(s3_server, "anonymous"))
    assert anon.meta.config.signature_version is botocore.UNSIGNED  # type: ignore[attr-defined]
    pool = s3_client(reader).meta.config.max_pool_connections  # type: ignore[attr-defined]
    assert pool >= 32


@pytest.mark.s3
@pytest.mark.parametrize(
    ("who", "error", "words"),
    [
        ("anonymous", PermissionDeniedError, "unsigned request: set credentials"),
        ("wrong-key", PermissionDeniedError, "check the credentials"),
        ("no-credentials", PermissionDeniedError, "no S3 credentials were found"),
        ("no-bucket", NotFoundError, "the bucket does not exist"),
        ("closed-port", ReleaseRootUnreachableError, "cannot connect to the S3 endpoint"),
    ],
)
def test_errors_are_mapped_by_type_with_one_advice(
    s3_server: S3Server,
    unique_prefix: str,
    who: str,
    error: type[Exception],
    words: str,
) -> None:
    publisher = make_settings(s3_server, "publisher")
    uri = f"s3://private/{unique_prefix}/obj.bin"
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3_client(publisher).put_object(Bucket=bucket, Key=key, Body=b"x")
    secret = "not-the-secret-" + os.urandom(4).hex()
    settings = {
        "anonymous": make_settings(s3_server, "anonymous"),
        "wrong-key": publisher.replace(secret_access_key=secret),
        "no-credentials": Settings(endpoint_url=s3_server.endpoint_url, path_style=True),
        "no-bucket": publisher,
        "closed-port": Settings(
            endpoint_url=f"http://127.0.0.1:{_closed_port()}", path_style=True, anonymous=True
        ),
    }[who]
    if who == "no-bucket":
        uri = f"s3://no-such-bucket-{os.urandom(3).hex()}/obj.bin"
    with pytest.raises(error, match=words) as e:
        read_bytes(uri, settings)
    assert uri in str(e.value)
    assert secret not in str(e.value)
    assert publisher.secret_access_key not in str(e.value)  # type: ignore[operator]


def test_map_leaves_other_errors_alone() -> None:
    e = ValueError("x")
    assert map_s3_error(e, action="reading", uri="s3://b/k", settings=Settings()) is e
