"""Release roots: one shared test class over the local directory and S3 backends, including the
conditional writes (compare-and-swap) that concurrent publishers rely on."""

from __future__ import annotations

import threading
from pathlib import Path  # noqa: TC003 - fixture annotations are resolved by pytest
from typing import TYPE_CHECKING, NoReturn

import pytest

from cellcensus._storage import sha256_file
from cellcensus.errors import NotFoundError, PermissionDeniedError
from cellcensus.release import ReleaseRoot  # noqa: TC001 - fixtures annotate with it
from cellcensus.release._cas import cas_update
from cellcensus.release._local import LocalRoot
from cellcensus.release._root import PreconditionFailedError
from cellcensus.release._s3 import S3Root
from cellcensus.release.directory import read_directory, update_directory
from tests._s3server import make_settings

if TYPE_CHECKING:
    from tests._s3server import S3Server


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def root(request: pytest.FixtureRequest, tmp_path: Path, unique_prefix: str) -> ReleaseRoot:
    """An empty release root on each backend."""
    if request.param == "local":
        return LocalRoot(tmp_path / "root")
    server = request.getfixturevalue("s3_server")
    return S3Root(f"s3://private/{unique_prefix}/", make_settings(server, "publisher"))


class TestReleaseRoot:
    def test_write_read_list_stat_delete(self, root: ReleaseRoot, tmp_path: Path) -> None:
        assert root.read_versioned("a/b.txt") is None
        assert root.stat("a/b.txt") is None
        root.write_bytes("a/b.txt", b"hello")
        root.write_bytes("a/c/d.txt", b"x" * 10)
        root.write_bytes("z.txt", b"")
        assert root.read_bytes("a/b.txt") == b"hello"
        info = root.stat("a/c/d.txt")
        assert info is not None
        assert info.size == 10
        assert [o.key for o in root.list_objects("a/")] == ["a/b.txt", "a/c/d.txt"]
        assert {o.key for o in root.list_objects()} == {"a/b.txt", "a/c/d.txt", "z.txt"}

        src = tmp_path / "up.bin"
        src.write_bytes(b"0123456789" * 1000)
        seen: list[int] = []
        root.upload_file(src, "up/f.bin", sha256=sha256_file(src), callback=seen.append)
        assert sum(seen) == 10_000
        dest = tmp_path / "down.bin"
        root.download_file("up/f.bin", dest)
        assert dest.read_bytes() == src.read_bytes()
        with root.open_read("up/f.bin") as f:
            assert f.read() == src.read_bytes()

        assert root.delete_prefix("a/") == 2
        assert list(root.list_objects("a/")) == []
        assert root.read_bytes("z.txt") == b""
        with pytest.raises(NotFoundError):
            root.read_bytes("a/b.txt")

    def test_create_only_write(self, root: ReleaseRoot) -> None:
        root.write_bytes("k", b"first", if_none_match=True)
        with pytest.raises(PreconditionFailedError):
            root.write_bytes("k", b"second", if_none_match=True)
        assert root.read_bytes("k") == b"first"

    def test_replace_if_unchanged(self, root: ReleaseRoot) -> None:
        root.write_bytes("k", b"v1")
        got = root.read_versioned("k")
        assert got is not None
        _, etag1 = got
        root.write_bytes("k", b"v2", if_match=etag1)
        with pytest.raises(PreconditionFailedError):
            root.write_bytes("k", b"v3", if_match=etag1)  # stale version
        assert root.read_bytes("k") == b"v2"
        with pytest.raises(PreconditionFailedError):
            root.write_bytes("missing", b"x", if_match=etag1)

    def test_keys_cannot_escape_the_root(self, root: ReleaseRoot) -> None:
        from cellcensus.errors import BadInputError

        for key in ("../x", "/abs", "a/../../b", "a//b"):
            with pytest.raises(BadInputError):
                root.write_bytes(key, b"x")

    def test_concurrent_cas_updates_lose_nothing(self, root: ReleaseRoot) -> None:
        """8 threads x 6 read-modify-write updates of one file: every change survives."""
        n_threads, per_thread = 8, 6
        start = threading.Barrier(n_threads)
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            try:
                start.wait()
                for j in range(per_thread):

                    def change(items: list[str], i: int = i, j: int = j) -> list[str]:
                        return [*items, f"{i}:{j}"]

                    cas_update(
                        root,
                        "counter.txt",
                        parse=lambda b: b.decode().split(),
                        dump=lambda items: " ".join(items).encode(),
                        empty=list,
                        change=change,
                    )
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        items = root.read_bytes("counter.txt").decode().split()
        assert sorted(items) == sorted(
            f"{i}:{j}" for i in range(n_threads) for j in range(per_thread)
        )

    def test_concurrent_alias_updates_of_release_json(self, root: ReleaseRoot) -> None:
        def add(name: str) -> None:
            update_directory(
                root,
                lambda d: d.with_alias(name, "x"),  # aliases need no target for this test
            )

        threads = [threading.Thread(target=add, args=(f"A{i}",)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert set(read_directory(root).aliases) == {f"A{i}" for i in range(10)}


@pytest.mark.s3
class TestS3Access:
    """Access control as seen through the release root (S3 port only)."""

    def test_anonymous_read_of_the_private_bucket_is_refused(
        self, s3_server: S3Server, unique_prefix: str
    ) -> None:
        pub = S3Root(f"s3://private/{unique_prefix}/", make_settings(s3_server, "publisher"))
        pub.write_bytes("release.json", b"{}")
        anon = S3Root(f"s3://private/{unique_prefix}/", make_settings(s3_server, "anonymous"))
        with pytest.raises(PermissionDeniedError, match=r"refused .*needs credentials"):
            anon.read_bytes("release.json")
        with pytest.raises(PermissionDeniedError):
            list(anon.list_objects())
        reader = S3Root(f"s3://private/{unique_prefix}/", make_settings(s3_server, "reader"))
        assert reader.read_bytes("release.json") == b"{}"
        with pytest.raises(PermissionDeniedError):
            reader.write_bytes("x", b"x")

    def test_anonymous_can_read_but_not_write_the_public_bucket(
        self, s3_server: S3Server, unique_prefix: str
    ) -> None:
        pub = S3Root(f"s3://public/{unique_prefix}/", make_settings(s3_server, "publisher"))
        pub.write_bytes("f", b"data")
        anon = S3Root(f"s3://public/{unique_prefix}/", make_settings(s3_server, "anonymous"))
        assert anon.read_bytes("f") == b"data"
        with pytest.raises(PermissionDeniedError):
            anon.write_bytes("g", b"x")

    def test_wrong_keys_are_a_permission_error(
        self, s3_server: S3Server, unique_prefix: str
    ) -> None:
        bad = make_settings(s3_server, "publisher").replace(secret_access_key="wrong")  # noqa: S106
        r = S3Root(f"s3://private/{unique_prefix}/", bad)
        with pytest.raises(PermissionDeniedError, match="check the credentials"):
            r.read_bytes("release.json")

    def test_missing_bucket_is_not_found(self, s3_server: S3Server) -> None:
        r = S3Root("s3://no-such-bucket-x/", make_settings(s3_server, "reader"))
        with pytest.raises((NotFoundError, PermissionDeniedError)):
            r.read_bytes("release.json")


@pytest.mark.parametrize("errno_name", ["EPERM", "ENOTSUP"])
def test_local_create_only_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errno_name: str
) -> None:
    """File systems without hard links fall back to check-and-rename under the lock."""
    import errno
    import os

    def no_link(src: str, dst: str) -> NoReturn:
        raise OSError(getattr(errno, errno_name), "hard links not supported")

    monkeypatch.setattr(os, "link", no_link)
    root = LocalRoot(tmp_path / "r")
    root.write_bytes("k", b"first", if_none_match=True)
    with pytest.raises(PreconditionFailedError):
        root.write_bytes("k", b"second", if_none_match=True)
    assert root.read_bytes("k") == b"first"
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [".cellcensus.lock", "k"]
