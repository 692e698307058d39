"""Release roots: a local directory or an S3 prefix, behind one small object-store interface.

Keys are ``/``-separated paths relative to the root (``release.json``, ``2024-07-01/soma/...``).

Conditional writes (the compare-and-swap that keeps concurrent publishers from losing each
other's ``release.json`` entries):

- **S3**: ``PutObject`` with ``IfNoneMatch="*"`` (create only) or ``IfMatch=<etag>`` (replace only
  the version that was read); the server answers 412 when the condition fails.
- **Local directory**: create-only is ``os.link`` of a fully written temporary file onto the final
  name (atomic; fails if the name exists). Replace-if-unchanged takes an exclusive ``fcntl.flock``
  on ``<root>/.cellcensus.lock``, compares the current content's sha256 (the local "etag") with the
  expected one, and ``os.replace``-s a fully written temporary file. The kernel drops the lock when
  the holder dies, so a killed publisher never leaves a stale lock. The lock needs a file system
  with working ``flock`` (local disks; NFS only with lockd): use S3 for multi-host publishing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import time
import urllib.parse
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from cellcensus.errors import (
    BadInputError,
    CellCensusError,
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
)
from cellcensus.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

__all__ = [
    "LocalRoot",
    "ObjectInfo",
    "PreconditionFailedError",
    "ReleaseRoot",
    "S3Root",
    "open_root",
]

logger = logging.getLogger(__name__)

TMP_MARK = ".cellcensus-tmp-"
LOCK_NAME = ".cellcensus.lock"
MiB = 1024 * 1024
#: Multipart threshold and part size for S3 uploads (also used to predict multipart ETags).
MULTIPART_CHUNKSIZE = 64 * MiB

Callback = Callable[[int], None]


class PreconditionFailedError(CellCensusError):
    """A conditional write lost: the object exists (create-only) or changed (replace-if-match)."""


@dataclass(frozen=True)
class ObjectInfo:
    """An object under a root: key relative to the root, size, and ETag (S3 only)."""

    key: str
    size: int
    etag: str | None = None


def _check_key(key: str) -> str:
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or any(seg in ("", ".", "..") for seg in key.rstrip("/").split("/"))
    ):
        msg = f"invalid object key {key!r}: must be a relative '/'-separated path"
        raise BadInputError(msg)
    return key


class ReleaseRoot(ABC):
    """A place releases are published to: a local directory or an S3 prefix."""

    #: Canonical URI of the root, with a trailing ``/`` (``s3://bucket/prefix/`` or ``file:///``).
    uri: str
    settings: Settings

    @property
    @abstractmethod
    def is_s3(self) -> bool:
        """Whether the root is on S3."""

    @abstractmethod
    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (recursive)."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Size (and ETag) of one object, or ``None`` if it does not exist."""

    @abstractmethod
    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """Content and version token (ETag) of an object, or ``None`` if missing."""

    @abstractmethod
    def write_bytes(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> None:
        """Write an object atomically.

        Parameters
        ----------
        key
            Object key.
        data
            Content.
        if_match
            Only replace the version with this token (from :meth:`read_versioned`).
        if_none_match
            Only create: fail if the object exists.

        Raises
        ------
        PreconditionFailedError
            When a condition does not hold.
        """

    @abstractmethod
    def upload_file(
        self, path: Path, key: str, *, sha256: str, callback: Callback | None = None
    ) -> None:
        """Copy a local file to ``key`` (multipart and parallel for large files on S3)."""

    @abstractmethod
    def download_file(self, key: str, path: Path, *, callback: Callback | None = None) -> None:
        """Copy ``key`` to a local file (overwritten)."""

    @abstractmethod
    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        """A binary stream of an object's content."""

    @abstractmethod
    def delete_keys(self, keys: list[str]) -> None:
        """Delete objects (missing ones are ignored)."""

    @abstractmethod
    def object_uri(self, key: str) -> str:
        """Absolute URI of a key (``s3://...`` or ``file:///...``)."""

    @property
    @abstractmethod
    def mirror_base_uri(self) -> str:
        """Base URI of this root's origin mirror (``relative_uri`` values are relative to it)."""

    @abstractmethod
    def relative_uri(self, key: str) -> str:
        """``key`` relative to :attr:`mirror_base_uri` (no leading ``/``)."""

    # ------------------------------------------------------------------ shared helpers
    def read_bytes(self, key: str) -> bytes:
        """Content of an object.

        Raises
        ------
        NotFoundError
            When it does not exist.
        """
        got = self.read_versioned(key)
        if got is None:
            msg = f"{self.object_uri(key)} does not exist"
            raise NotFoundError(msg)
        return got[0]

    def exists(self, key: str) -> bool:
        """Whether an object exists."""
        return self.stat(key) is not None

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (which must end with ``/``); returns the count."""
        if not prefix.endswith("/"):
            msg = f"delete_prefix needs a prefix ending with '/', got {prefix!r}"
            raise BadInputError(msg)
        _check_key(prefix)
        keys = [o.key for o in self.list_objects(prefix)]
        self.delete_keys(keys)
        return len(keys)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


# ============================================================================ local directory
class LocalRoot(ReleaseRoot):
    """A release root in a local directory (created on first write)."""

    def __init__(self, path: Path, settings: Settings | None = None) -> None:
        self.path = Path(path).expanduser().resolve()
        if self.path == Path(self.path.anchor):
            msg = "a release root cannot be the file-system root '/'"
            raise BadInputError(msg)
        self.uri = self.path.as_uri() + "/"
        self.settings = settings or Settings()

    @property
    def is_s3(self) -> bool:
        """Always ``False``."""
        return False

    def _p(self, key: str) -> Path:
        return self.path / _check_key(key)

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every file under ``prefix`` (temporary and lock files excluded), sorted by key."""
        base = self.path
        start = base / prefix if prefix.endswith("/") else (base / prefix).parent
        if prefix:
            _check_key(prefix)
        if not start.is_dir():
            return
        found: list[ObjectInfo] = []
        for dirpath, _dirnames, filenames in os.walk(start):
            for fn in filenames:
                if TMP_MARK in fn or fn == LOCK_NAME:
                    continue
                full = Path(dirpath) / fn
                key = full.relative_to(base).as_posix()
                if key.startswith(prefix):
                    found.append(ObjectInfo(key, full.stat().st_size, None))
        yield from sorted(found, key=lambda o: o.key)

    def remove_temporaries(self, prefix: str) -> int:
        """Delete temporary files a killed writer left under ``prefix``; returns the count.

        Called when a publish resumes (a concurrent writer of the same tag would lose its
        in-flight copy and fail, which is acceptable: re-running it resumes).
        """
        start = self.path / _check_key(prefix)
        n = 0
        if start.is_dir():
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
        except FileNotFoundError:
            return None
        return ObjectInfo(key, st.st_size, None) if p.is_file() else None

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """Content and its sha256 (the local version token)."""
        try:
            data = self._p(key).read_bytes()
        except FileNotFoundError:
            return None
        except PermissionError as e:
            msg = f"cannot read {self._p(key)}: {e.strerror}"
            raise PermissionDeniedError(msg) from e
        return data, hashlib.sha256(data).hexdigest()

    def _tmp_for(self, dest: Path) -> Path:
        return dest.with_name(f"{dest.name}{TMP_MARK}{uuid.uuid4().hex}")

    def _write_tmp(self, dest: Path, data: bytes) -> Path:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._tmp_for(dest)
            with tmp.open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except PermissionError as e:
            msg = (
                f"cannot write under {dest.parent}: {e.strerror}; check the directory's permissions"
            )
            raise PermissionDeniedError(msg) from e
        return tmp

    @contextlib.contextmanager
    def _locked(self, timeout: float = 120.0) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / LOCK_NAME
        with lock_path.open("a+b") as f:
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
        tmp = self._write_tmp(dest, data)
        try:
            if if_none_match:
                try:
                    os.link(tmp, dest)
                except FileExistsError:
                    msg = f"{dest} already exists"
                    raise PreconditionFailedError(msg) from None
            elif if_match is not None:
                with self._locked():
                    try:
                        current = hashlib.sha256(dest.read_bytes()).hexdigest()
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

    def upload_file(
        self, path: Path, key: str, *, sha256: str, callback: Callback | None = None
    ) -> None:
        """Copy through a temporary file renamed into place (never a partial file)."""
        del sha256  # content is verified by re-hashing after the copy
        dest = self._p(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp_for(dest)
        try:
            _copy_stream_file(path, tmp, callback)
            tmp.replace(dest)
        finally:
            tmp.unlink(missing_ok=True)

    def download_file(self, key: str, path: Path, *, callback: Callback | None = None) -> None:
        """Copy a file out of the root."""
        src = self._p(key)
        if not src.is_file():
            msg = f"{src} does not exist"
            raise NotFoundError(msg)
        _copy_stream_file(src, path, callback)

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        """Open a file for reading."""
        p = self._p(key)
        try:
            f = p.open("rb")
        except FileNotFoundError:
            msg = f"{p} does not exist"
            raise NotFoundError(msg) from None
        with f:
            yield f

    def delete_keys(self, keys: list[str]) -> None:
        """Delete files, then remove directories left empty."""
        parents: set[Path] = set()
        for key in keys:
            p = self._p(key)
            p.unlink(missing_ok=True)
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
            shutil.rmtree(target)
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


def _copy_stream_file(src: Path, dest: Path, callback: Callback | None) -> None:
    with src.open("rb") as fi, dest.open("wb") as fo:
        while True:
            block = fi.read(4 * MiB)
            if not block:
                break
            fo.write(block)
            if callback is not None:
                callback(len(block))
        fo.flush()
        os.fsync(fo.fileno())


# ============================================================================ S3
def _client_error_code(e: botocore.exceptions.ClientError) -> tuple[str, int]:
    err = e.response.get("Error", {})
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(err.get("Code", "")), int(status)


def _is_missing_key(e: Exception) -> bool:
    """A 404 for the object itself (not for a missing bucket)."""
    if not isinstance(e, botocore.exceptions.ClientError):
        return False
    code, status = _client_error_code(e)
    return code != "NoSuchBucket" and (code in ("NoSuchKey", "404", "NotFound") or status == 404)


def map_s3_error(  # noqa: PLR0911 - one return per error class is the clearest form
    e: Exception, *, action: str, uri: str, settings: Settings
) -> Exception:
    """Translate a boto/botocore exception into a :class:`CellCensusError` (by type and code)."""
    if isinstance(e, CellCensusError):
        return e
    if isinstance(
        e, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return PermissionDeniedError(
            f"{action} {uri}: no S3 credentials were found; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or CELLCENSUS_S3_ACCESS_KEY_ID/..., or AWS_PROFILE), or use "
            "--no-sign-request for anonymous reads of a public bucket"
        )
    if isinstance(e, botocore.exceptions.EndpointConnectionError):
        return ConfigError(
            f"{action} {uri}: cannot connect to the S3 endpoint "
            f"{settings.endpoint_url or 'AWS'}; check --endpoint-url / AWS_ENDPOINT_URL and that "
            "the server is running"
        )
    if isinstance(e, botocore.exceptions.ClientError):
        code, status = _client_error_code(e)
        if code in ("PreconditionFailed", "412") or status == 412:
            return PreconditionFailedError(f"{action} {uri}: precondition failed")
        if code == "NoSuchBucket":
            return NotFoundError(f"{action} {uri}: the bucket does not exist; create it first")
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            return NotFoundError(f"{action} {uri}: no such object")
        if status == 403 or code in (
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AllAccessDisabled",
            "403",
        ):
            how = (
                "requests were unsigned (--no-sign-request): this needs credentials"
                if settings.anonymous
                else "check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE) and that they may perform this action on the bucket"
            )
            return PermissionDeniedError(f"{action} {uri} was refused ({code or status}): {how}")
        return CellCensusError(f"{action} {uri} failed: S3 error {code or status}")
    if isinstance(e, botocore.exceptions.BotoCoreError):
        return CellCensusError(f"{action} {uri} failed: {type(e).__name__}")
    return e


class S3Root(ReleaseRoot):
    """A release root at ``s3://bucket/prefix/``."""

    def __init__(self, uri: str, settings: Settings | None = None) -> None:
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            msg = f"{uri!r} is not an s3://bucket/prefix/ URI"
            raise BadInputError(msg)
        if parsed.query or parsed.fragment or parsed.params:
            msg = f"S3 release root {uri!r} must not contain '?', '#' or ';'"
            raise BadInputError(msg)
        self.bucket = parsed.netloc
        prefix = parsed.path.lstrip("/")
        if prefix:
            prefix = prefix.rstrip("/") + "/"
            _check_key(prefix)
        self.prefix = prefix
        self.uri = f"s3://{self.bucket}/{self.prefix}"
        self.settings = settings or Settings.resolve()
        self._client: S3Client | None = None

    @property
    def is_s3(self) -> bool:
        """Always ``True``."""
        return True

    @property
    def client(self) -> S3Client:
        """The boto3 client (created on first use; thread-safe)."""
        if self._client is None:
            self._client = self.settings.boto3_client(max_pool_connections=64)
        return self._client

    def _k(self, key: str) -> str:
        return self.prefix + _check_key(key)

    def _err(self, e: Exception, action: str, key: str) -> Exception:
        return map_s3_error(e, action=action, uri=self.object_uri(key), settings=self.settings)

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` (paginated), sorted by key."""
        if prefix:
            _check_key(prefix)
        full = self.prefix + prefix
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            )
            for page in pages:
                for o in page.get("Contents", []):
                    key = o["Key"][len(self.prefix) :]
                    yield ObjectInfo(key, int(o["Size"]), str(o.get("ETag", "")).strip('"'))
        except Exception as e:
            raise self._err(e, "listing", prefix or "") from e

    def stat(self, key: str) -> ObjectInfo | None:
        """HEAD an object."""
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except Exception as e:
            if _is_missing_key(e):
                return None
            raise self._err(e, "reading", key) from e
        return ObjectInfo(key, int(r["ContentLength"]), str(r.get("ETag", "")).strip('"'))

    def head_sha256(self, key: str) -> str | None:
        """The ``sha256`` user metadata cellcensus stores on uploads, if present."""
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except Exception as e:
            if _is_missing_key(e):
                return None
            raise self._err(e, "reading", key) from e
        return r.get("Metadata", {}).get("sha256")

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """GET an object with its ETag (quoted, as S3 expects it back in ``IfMatch``)."""
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=self._k(key))
            data = r["Body"].read()
        except Exception as e:
            if _is_missing_key(e):
                return None
            raise self._err(e, "reading", key) from e
        return data, str(r["ETag"])

    def write_bytes(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> None:
        """PutObject, with ``IfMatch`` / ``IfNoneMatch`` when asked."""
        try:
            if if_none_match:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._k(key), Body=data, IfNoneMatch="*"
                )
            elif if_match is not None:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._k(key), Body=data, IfMatch=if_match
                )
            else:
                self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data)
        except Exception as e:
            raise self._err(e, "writing", key) from e

    def transfer_config(self) -> TransferConfig:
        """The boto3 TransferConfig used for uploads and downloads."""
        return TransferConfig(
            multipart_threshold=MULTIPART_CHUNKSIZE,
            multipart_chunksize=MULTIPART_CHUNKSIZE,
            max_concurrency=4,
            use_threads=True,
        )

    def upload_file(
        self, path: Path, key: str, *, sha256: str, callback: Callback | None = None
    ) -> None:
        """Upload with boto3's transfer manager; the sha256 is stored as user metadata."""
        try:
            self.client.upload_file(
                str(path),
                self.bucket,
                self._k(key),
                ExtraArgs={"Metadata": {"sha256": sha256}},
                Config=self.transfer_config(),
                Callback=callback,
            )
        except Exception as e:
            cause = e.__context__ if isinstance(e.__context__, Exception) else e
            raise self._err(cause, "uploading to", key) from e

    def download_file(self, key: str, path: Path, *, callback: Callback | None = None) -> None:
        """Download with boto3's transfer manager."""
        try:
            self.client.download_file(
                self.bucket,
                self._k(key),
                str(path),
                Config=self.transfer_config(),
                Callback=callback,
            )
        except Exception as e:
            raise self._err(e, "downloading", key) from e

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        """Stream an object's body."""
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=self._k(key))
        except Exception as e:
            raise self._err(e, "reading", key) from e
        body = r["Body"]
        try:
            yield body  # type: ignore[misc]
        finally:
            body.close()

    def delete_keys(self, keys: list[str]) -> None:
        """DeleteObjects in batches of 1000."""
        for i in range(0, len(keys), 1000):
            batch: list[ObjectIdentifierTypeDef] = [{"Key": self._k(k)} for k in keys[i : i + 1000]]
            try:
                r = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except Exception as e:
                raise self._err(e, "deleting under", keys[i]) from e
            errors = r.get("Errors", [])
            if errors:
                first = errors[0]
                msg = (
                    f"deleting {len(errors)} objects under {self.uri} failed; first: "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )
                raise PermissionDeniedError(msg)

    def object_uri(self, key: str) -> str:
        """``s3://bucket/prefix/key``."""
        return f"s3://{self.bucket}/{self.prefix}{key}"

    @property
    def mirror_base_uri(self) -> str:
        """``s3://bucket/``: locators are relative to the bucket, like the Census's own."""
        return f"s3://{self.bucket}/"

    def relative_uri(self, key: str) -> str:
        """``prefix/key`` (bucket-relative, no leading ``/``)."""
        return self.prefix + key


def open_root(root: str | Path | ReleaseRoot, settings: Settings | None = None) -> ReleaseRoot:
    """Open a release root from a URI or path.

    Parameters
    ----------
    root
        ``s3://bucket/prefix/``, ``file:///abs/dir``, or a local path (created on first write).
    settings
        Storage settings for S3 (resolved from the environment when omitted).

    Returns
    -------
    ReleaseRoot
        A :class:`S3Root` or :class:`LocalRoot`.

    Raises
    ------
    BadInputError
        For an unsupported scheme or a malformed URI.
    """
    if isinstance(root, ReleaseRoot):
        return root
    s = str(root)
    parsed = urllib.parse.urlparse(s)
    if parsed.scheme == "s3":
        return S3Root(s, settings)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            msg = f"file URI {s!r} names a host; use file:///absolute/path"
            raise BadInputError(msg)
        path = urllib.parse.unquote(parsed.path)
        if ".." in Path(path).parts:
            msg = f"release root {s!r} contains '..'; give a plain absolute path"
            raise BadInputError(msg)
        return LocalRoot(Path(path), settings)
    if parsed.scheme and len(parsed.scheme) > 1:
        msg = (
            f"release root {s!r} has unsupported scheme {parsed.scheme!r}; use a local "
            "directory, file:///path or s3://bucket/prefix/"
        )
        raise BadInputError(msg)
    return LocalRoot(Path(s), settings)
