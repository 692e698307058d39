"""A release root on S3 (AWS or any S3-compatible server), with boto3 errors mapped by type."""

from __future__ import annotations

import contextlib
import logging
import urllib.parse
from pathlib import PurePosixPath
from typing import IO, TYPE_CHECKING, Any, cast

import botocore.exceptions
import urllib3.exceptions

from cellcensus._storage import is_missing_key, map_s3_error, s3_client
from cellcensus._storage.uploads import upload_file
from cellcensus.errors import BadInputError, PermissionDeniedError
from cellcensus.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef
from cellcensus.release._root import (
    Callback,
    ObjectInfo,
    ReleaseRoot,
    _check_key,
)

__all__ = ["S3Root"]

logger = logging.getLogger(__name__)

#: Content types of uploaded objects that browsers and clients open directly.
_CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json"}


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
            self._client = s3_client(self.settings)
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
            if is_missing_key(e):
                return None
            raise self._err(e, "reading", key) from e
        return ObjectInfo(key, int(r["ContentLength"]), str(r.get("ETag", "")).strip('"'))

    def head_sha256(self, key: str) -> str | None:
        """The ``sha256`` user metadata cellcensus stores on uploads, if present."""
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except Exception as e:
            if is_missing_key(e):
                return None
            raise self._err(e, "reading", key) from e
        return r.get("Metadata", {}).get("sha256")

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """GET an object with its ETag (quoted, as S3 expects it back in ``IfMatch``)."""
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=self._k(key))
            data = r["Body"].read()
        except Exception as e:
            if is_missing_key(e):
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

    def upload_file(
        self, path: Path, key: str, *, sha256: str, callback: Callback | None = None
    ) -> None:
        """Upload with :func:`cellcensus._storage.uploads.upload_file` (the sha256 is checked
        and stored as user metadata); pages (``report.html``) and JSON get their content type,
        so a browser shows them."""
        upload_file(
            path,
            self.object_uri(_check_key(key)),
            sha256=sha256,
            callback=callback,
            settings=self.settings,
            client=self.client,
            content_type=_CONTENT_TYPES.get(PurePosixPath(key).suffix),
        )

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        """Stream an object's body."""
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=self._k(key))
        except Exception as e:
            raise self._err(e, "reading", key) from e
        body = r["Body"]
        try:
            yield cast("IO[bytes]", _MappedBody(body, lambda e: self._err(e, "reading", key)))
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


class _MappedBody:
    """A streaming body whose read errors (connection lost mid-object) are CellCensusErrors."""

    def __init__(self, body: Any, mapper: Callable[[Exception], Exception]) -> None:  # noqa: ANN401
        self._body = body
        self._map = mapper

    def read(self, n: int = -1, /) -> bytes:
        try:
            data: bytes = self._body.read(n if n >= 0 else None)
        except (botocore.exceptions.BotoCoreError, urllib3.exceptions.HTTPError) as e:
            raise self._map(e) from e
        except (ConnectionError, TimeoutError) as e:
            raise self._map(urllib3.exceptions.ProtocolError(str(e))) from e
        return data

    def close(self) -> None:
        self._body.close()
