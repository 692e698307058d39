"""A release root in a local directory (see :mod:`cellcensus.release._root` for the CAS design)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import logging
import os
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING

from cellcensus._fs import mapped_fs_errors
from cellcensus._storage import sha256_file
from cellcensus._storage.uploads import upload_file
from cellcensus.errors import (
    BadInputError,
    CellCensusError,
    NotFoundError,
)
from cellcensus.release._root import (
    LOCK_NAME,
    TMP_MARK,
    Callback,
    ObjectInfo,
    PreconditionFailedError,
    ReleaseRoot,
    _check_key,
)
from cellcensus.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LocalRoot"]

logger = logging.getLogger(__name__)

_NO_HARDLINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV})


class LocalRoot(ReleaseRoot):
    """A release root in a local directory (created on first write)."""

    def __init__(self, path: Path, settings: Settings | None = None) -> None:
        self.path = Path(path).expanduser().resolve()
        if self.path == Path(self.path.anchor):
            msg = "a release root cannot be the file-system root '/'"
            raise BadInputError(msg)
        if self.path.exists() and not self.path.is_dir():
            msg = (
                f"release root {self.path} is a file, not a directory; give a directory (it is "
                "created on the first publish) or s3://bucket/prefix/"
            )
            raise BadInputError(msg)
        self.uri = self.path.as_uri() + "/"
        self.settings = settings or Settings()

    @property
    def is_s3(self) -> bool:
        """Always ``False``."""
        return False

    def _p(self, key: str) -> Path:
        return self.path / _check_key(key)

    def location(self, key: str) -> str:
        """The file's path."""
        return str(self._p(key))

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every file under ``prefix`` (temporary and lock files excluded), sorted by key."""
        base = self.path
        start = base / prefix if prefix.endswith("/") else (base / prefix).parent
        if prefix:
            _check_key(prefix)
        if not start.is_dir():
            return
        found: list[ObjectInfo] = []
        with mapped_fs_errors(f"listing {start}"):
            for dirpath, _dirnames, filenames in os.walk(start, onerror=_raise):
                for fn in filenames:
                    if TMP_MARK in fn or fn == LOCK_NAME:
                        continue
                    full = Path(dirpath) / fn
                    key = full.relative_to(base).as_posix()
                    if key.startswith(prefix):
                        try:
                            size = full.stat().st_size
                        except FileNotFoundError:
                            continue  # deleted while listing (a concurrent clean-up)
                        found.append(ObjectInfo(key, size, None))
        yield from sorted(found, key=lambda o: o.key)

    def remove_temporaries(self, prefix: str) -> int:
        """Delete temporary files a killed writer left under ``prefix``; returns the count.

        Called when a publish resumes (a concurrent writer of the same tag would lose its
        in-flight copy and fail, which is acceptable: re-running it resumes).
        """
        start = self.path / _check_key(prefix)
        n = 0
        if start.is_dir():
            with mapped_fs_errors(f"removing temporary files under {start}"):
                for dirpath, _dirs, names in os.walk(start):
                    for fn in names:
                        if TMP_MARK in fn:
                            (Path(dirpath) / fn).unlink(missing_ok=True)
                            n += 1
        return n

    def stat(self, key: str) -> ObjectInfo | None:
        """Size of a file, or ``None``."""
        p = self._p(key)
        try:
            st = p.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            from cellcensus._fs import fs_error

            raise fs_error(e, action=f"reading {p}") from e
        return ObjectInfo(key, st.st_size, None) if p.is_file() else None

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """Content and its sha256 (the local version token)."""
        p = self._p(key)
        try:
            data = p.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except IsADirectoryError:
            msg = f"{p} is a directory where cellcensus expects a file; move it away"
            raise BadInputError(msg) from None
        except OSError as e:
            from cellcensus._fs import fs_error

            raise fs_error(e, action=f"reading {p}") from e
        return data, hashlib.sha256(data).hexdigest()

    def _tmp_for(self, dest: Path) -> Path:
        # host and pid in the name: a later writer can tell a dead writer's leftover
        return dest.with_name(f"{dest.name}{TMP_MARK}{_HOST}.{os.getpid()}.{uuid.uuid4().hex}")

    @staticmethod
    def _sweep(dest: Path) -> None:
        """Delete temporary copies of ``dest`` left by writers of this host that were killed."""
        for tmp in dest.parent.glob(f"{glob.escape(dest.name)}{TMP_MARK}*"):
            host, _, rest = tmp.name.split(TMP_MARK, 1)[1].partition(".")
            pid = rest.partition(".")[0]
            if host == _HOST and pid.isdigit() and not _alive(int(pid)):
                tmp.unlink(missing_ok=True)

    def _write_tmp(self, dest: Path, data: bytes) -> Path:
        tmp = self._tmp_for(dest)
        with mapped_fs_errors(f"writing {dest}"):
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                with tmp.open("wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except BaseException:
                tmp.unlink(missing_ok=True)  # never leave a partial temporary file
                raise
        return tmp

    @contextlib.contextmanager
    def _locked(self, timeout: float = 120.0) -> Iterator[None]:
        lock_path = self.path / LOCK_NAME
        with mapped_fs_errors(f"locking {lock_path}"):
            self.path.mkdir(parents=True, exist_ok=True)
            f = lock_path.open("a+b")
        with f:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        msg = (
                            f"could not lock {lock_path} within {timeout:.0f} s: another "
                            "cellcensus process holds it; retry when it has finished"
                        )
                        raise CellCensusError(msg) from None
                    time.sleep(0.01)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def write_bytes(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> None:
        """Atomic write (temporary file + link/rename), optionally conditional."""
        dest = self._p(key)
        with mapped_fs_errors(f"writing {dest}"):
            if dest.parent.is_dir():
                self._sweep(dest)
        tmp = self._write_tmp(dest, data)
        try:
            with mapped_fs_errors(f"writing {dest}"):
                if if_none_match:
                    self._create_only(tmp, dest)
                elif if_match is not None:
                    with self._locked():
                        try:
                            current = sha256_file(dest)
                        except FileNotFoundError:
                            msg = f"{dest} no longer exists"
                            raise PreconditionFailedError(msg) from None
                        if current != if_match:
                            msg = f"{dest} changed since it was read"
                            raise PreconditionFailedError(msg)
                        tmp.replace(dest)
                else:
                    tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)

    def _create_only(self, tmp: Path, dest: Path) -> None:
        """Move ``tmp`` to ``dest`` only if ``dest`` does not exist (atomically)."""
        try:
            os.link(tmp, dest)
        except FileExistsError:
            msg = f"{dest} already exists"
            raise PreconditionFailedError(msg) from None
        except OSError as e:
            if e.errno not in _NO_HARDLINKS:
                raise
            # No hard links on this file system: check and rename under the root's lock.
            with self._locked():
                if dest.exists():
                    msg = f"{dest} already exists"
                    raise PreconditionFailedError(msg) from None
                tmp.replace(dest)

    def upload_file(
        self, path: Path, key: str, *, sha256: str, callback: Callback | None = None
    ) -> None:
        """Copy with :func:`cellcensus._storage.uploads.upload_file`: through a temporary file
        renamed into place when its sha256 matches (never a partial file)."""
        dest = self._p(key)
        upload_file(path, dest, sha256=sha256, callback=callback, tmp=self._tmp_for(dest))

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        """Open a file for reading."""
        p = self._p(key)
        try:
            f = p.open("rb")
        except (FileNotFoundError, NotADirectoryError):
            msg = f"{p} does not exist"
            raise NotFoundError(msg) from None
        except OSError as e:
            from cellcensus._fs import fs_error

            raise fs_error(e, action=f"reading {p}") from e
        with f:
            yield f

    def delete_keys(self, keys: list[str]) -> None:
        """Delete files, then remove directories left empty."""
        parents: set[Path] = set()
        for key in keys:
            p = self._p(key)
            with mapped_fs_errors(f"deleting {p}"):
                try:
                    p.unlink(missing_ok=True)
                except NotADirectoryError:
                    continue
            parents.add(p.parent)
        for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            d = parent
            while d != self.path and d.is_relative_to(self.path):
                try:
                    d.rmdir()
                except OSError:
                    break
                d = d.parent

    def delete_prefix(self, prefix: str) -> int:
        """Delete a directory tree."""
        n = super().delete_prefix(prefix)
        target = self._p(prefix.rstrip("/"))
        if target.is_dir():
            with mapped_fs_errors(f"deleting {target}"):
                _rmtree(target)
        return n

    def object_uri(self, key: str) -> str:
        """``file://`` URI of a key."""
        return self.uri + key

    @property
    def mirror_base_uri(self) -> str:
        """The parent directory of the root, as a ``file://`` URI with a trailing ``/``."""
        return self.path.parent.as_uri().rstrip("/") + "/"

    def relative_uri(self, key: str) -> str:
        """``<root directory name>/<key>``."""
        return f"{self.path.name}/{key}"


_HOST = socket.gethostname().replace(".", "-").replace("/", "-") or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _raise(e: OSError) -> None:
    raise e


def _rmtree(target: Path) -> None:
    """``shutil.rmtree``, where a file deleted meanwhile (a concurrent clean-up) is fine."""

    def ignore_missing(
        _fn: object, _path: str, exc_info: tuple[type, BaseException, object]
    ) -> None:
        if not isinstance(exc_info[1], FileNotFoundError):
            raise exc_info[1]

    if sys.version_info >= (3, 12):
        shutil.rmtree(
            target, onexc=lambda fn, path, e: ignore_missing(fn, path, (type(e), e, None))
        )
    else:
        shutil.rmtree(target, onerror=ignore_missing)
