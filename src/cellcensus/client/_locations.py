"""Reading small objects and byte ranges from local paths, ``file://``, ``s3://`` and ``http(s)://``.

Every remote call has a connect and a read timeout and a few retries with back-off on transient
failures (refused or reset connections, timeouts, HTTP 5xx); failures are mapped by type to
:mod:`cellcensus.errors` classes whose messages name the URI.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore
import botocore.exceptions
import requests
from botocore.config import Config

from cellcensus.errors import (
    BadInputError,
    CellCensusError,
    NotFoundError,
    PermissionDeniedError,
    ReleaseRootUnreachableError,
)
from cellcensus.settings import ENV_PREFIX, Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mypy_boto3_s3 import S3Client

__all__ = [
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "RETRIES",
    "is_local",
    "iter_bytes",
    "local_path",
    "read_bytes",
    "read_settings",
    "s3_client",
    "size_of",
    "uri_join",
]

logger = logging.getLogger(__name__)

#: Seconds to wait for a TCP connection to a remote root, mirror or HTTP server.
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for data once connected.
READ_TIMEOUT = 30.0
#: Attempts for a remote read (the first try included).
RETRIES = 3
_BACKOFF = 0.25
_BLOCK = 1024 * 1024

T = TypeVar("T")


def _headers() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("cellcensus")
    except PackageNotFoundError:  # pragma: no cover - source tree
        v = "0"
    return {"User-Agent": f"cellcensus/{v}"}


def read_settings(settings: Settings | None) -> Settings:
    """Storage settings for *reading*: the given ones, else resolved from the environment.

    When nothing in the environment gives credentials (no keys, no profile) and
    ``CELLCENSUS_S3_NO_SIGN_REQUEST`` is not set, reads are anonymous — as the official client's
    are — instead of signing with an empty credential chain.
    """
    if settings is not None:
        return settings
    resolved = Settings.resolve()
    if (
        not resolved.anonymous
        and resolved.access_key_id is None
        and resolved.profile is None
        and ENV_PREFIX + "NO_SIGN_REQUEST" not in os.environ
    ):
        resolved = resolved.replace(anonymous=True)
    return resolved


def uri_join(base: str, relative: str) -> str:
    """Join a mirror's base URI and a locator's relative URI.

    Unlike ``urllib.parse.urljoin`` (and the official client), a leading ``/`` in ``relative``
    does not drop the path of ``base``: ``file:///data/mirror/`` + ``/cell-census/x/soma/`` is
    ``file:///data/mirror/cell-census/x/soma/``. An absolute ``relative`` (with a scheme) is
    returned as is.

    Examples
    --------
    >>> uri_join("s3://bucket/", "/cell-census/2024-07-01/soma/")
    's3://bucket/cell-census/2024-07-01/soma/'
    >>> uri_join("file:///data/mirror", "cell-census/2024-07-01/soma/")
    'file:///data/mirror/cell-census/2024-07-01/soma/'
    """
    if urllib.parse.urlparse(relative).scheme:
        return relative
    if not base:
        return relative
    return base.rstrip("/") + "/" + relative.lstrip("/")


def is_local(uri: str) -> bool:
    """Whether ``uri`` is a local path or a ``file://`` URI."""
    scheme = urllib.parse.urlparse(uri).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def local_path(uri: str) -> Path:
    """The local path of a path or ``file://`` URI.

    Raises
    ------
    BadInputError
        For a ``file://`` URI that names a host.
    """
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            msg = f"file URI {uri!r} names a host; use file:///absolute/path"
            raise BadInputError(msg)
        return Path(urllib.parse.unquote(parsed.path))
    return Path(uri).expanduser()


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urllib.parse.urlparse(uri)
    if not parsed.netloc:
        msg = f"{uri!r} names no bucket; use s3://bucket/key"
        raise BadInputError(msg)
    return parsed.netloc, parsed.path.lstrip("/")


def s3_client(settings: Settings) -> S3Client:
    """A boto3 S3 client for reads: short timeouts, few retries (a dead endpoint fails fast)."""
    config = Config(
        region_name=settings.region,
        signature_version=botocore.UNSIGNED if settings.anonymous else None,
        s3={"addressing_style": "path" if settings.path_style else "virtual"},
        retries={"max_attempts": RETRIES, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )
    kwargs: dict[str, Any] = {}
    if not settings.anonymous and settings.access_key_id is not None:
        kwargs = {
            "aws_access_key_id": settings.access_key_id,
            "aws_secret_access_key": settings.secret_access_key,
            "aws_session_token": settings.session_token,
        }
    session = (
        boto3.Session(profile_name=settings.profile)
        if settings.profile and not kwargs and not settings.anonymous
        else boto3.Session()
    )
    client: S3Client = session.client(
        "s3", endpoint_url=settings.endpoint_url, config=config, **kwargs
    )
    return client


def _map_s3(e: Exception, uri: str, settings: Settings) -> Exception:
    if isinstance(e, botocore.exceptions.ClientError):
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if status == 404 or code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            return NotFoundError(f"{uri} does not exist ({code or status})")
        if status == 403 or code in ("403", "AccessDenied", "InvalidAccessKeyId"):
            how = (
                "unsigned request: set credentials (CELLCENSUS_S3_ACCESS_KEY_ID / "
                "AWS_ACCESS_KEY_ID, or a profile) for a private bucket"
                if settings.anonymous
                else "check the access keys / profile and the bucket policy"
            )
            return PermissionDeniedError(f"access to {uri} was denied ({code}); {how}")
        return CellCensusError(f"reading {uri} failed: {code or status}: {err.get('Message', '')}")
    if isinstance(
        e,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectTimeoutError
        | botocore.exceptions.ReadTimeoutError
        | botocore.exceptions.ConnectionClosedError,
    ):
        where = settings.endpoint_url or "AWS S3"
        return ReleaseRootUnreachableError(
            f"cannot reach {where} to read {uri} ({type(e).__name__}) after {RETRIES} attempts; "
            "check the endpoint URL (CELLCENSUS_S3_ENDPOINT_URL) and the network"
        )
    if isinstance(e, botocore.exceptions.NoCredentialsError):
        return PermissionDeniedError(
            f"reading {uri} needs credentials but none were found; set access keys or "
            "CELLCENSUS_S3_NO_SIGN_REQUEST=true for a public bucket"
        )
    return e


def _http_retry(uri: str, call: Callable[[], T]) -> T:
    """Run ``call`` with retries on connection errors, timeouts and 5xx answers."""
    last: Exception | None = None
    for attempt in range(RETRIES):
        if attempt:
            time.sleep(_BACKOFF * 2 ** (attempt - 1))
        try:
            return call()
        except (requests.ConnectionError, requests.Timeout) as e:
            last = e
            logger.debug("GET %s failed (%s), attempt %d/%d", uri, e, attempt + 1, RETRIES)
        except requests.HTTPError as e:
            status = e.response.status_code if e.response is not None else 0
            if status == 404:
                msg = f"{uri} does not exist (HTTP 404)"
                raise NotFoundError(msg) from e
            if status in (401, 403):
                msg = f"access to {uri} was denied (HTTP {status})"
                raise PermissionDeniedError(msg) from e
            if status < 500:
                msg = f"GET {uri} failed: HTTP {status}"
                raise CellCensusError(msg) from e
            last = e
            logger.debug("GET %s: HTTP %d, attempt %d/%d", uri, status, attempt + 1, RETRIES)
    msg = (
        f"cannot reach {uri} after {RETRIES} attempts "
        f"({type(last).__name__}: {last}); check the URL and the network"
    )
    raise ReleaseRootUnreachableError(msg) from last


def read_bytes(uri: str, settings: Settings | None = None) -> bytes:
    """The whole content of a (small) object.

    Raises
    ------
    NotFoundError
        When the object does not exist.
    PermissionDeniedError
        When access is refused.
    ReleaseRootUnreachableError
        When the server cannot be reached (after retries).
    """
    scheme = urllib.parse.urlparse(uri).scheme
    if is_local(uri):
        path = local_path(uri)
        try:
            return path.read_bytes()
        except FileNotFoundError as e:
            msg = f"{path} does not exist"
            raise NotFoundError(msg) from e
        except IsADirectoryError as e:
            msg = f"{path} is a directory, not a file"
            raise BadInputError(msg) from e
        except PermissionError as e:
            msg = f"cannot read {path}: permission denied"
            raise PermissionDeniedError(msg) from e
    if scheme in ("http", "https"):

        def get() -> bytes:
            r = requests.get(uri, headers=_headers(), timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            r.raise_for_status()
            return r.content

        return _http_retry(uri, get)
    if scheme == "s3":
        s = read_settings(settings)
        bucket, key = _split_s3(uri)
        try:
            body = s3_client(s).get_object(Bucket=bucket, Key=key)["Body"]
            data: bytes = body.read()
        except Exception as e:
            raise _map_s3(e, uri, s) from e
        return data
    msg = f"unsupported URI scheme {scheme!r} in {uri!r}; use a path, file://, s3:// or http(s)://"
    raise BadInputError(msg)


def size_of(uri: str, settings: Settings | None = None) -> int:
    """Size in bytes of an object.

    Raises
    ------
    NotFoundError
        When the object does not exist.
    """
    scheme = urllib.parse.urlparse(uri).scheme
    if is_local(uri):
        path = local_path(uri)
        try:
            return path.stat().st_size
        except FileNotFoundError as e:
            msg = f"{path} does not exist"
            raise NotFoundError(msg) from e
    if scheme in ("http", "https"):

        def head() -> int:
            r = requests.head(
                uri,
                headers=_headers(),
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                allow_redirects=True,
            )
            r.raise_for_status()
            return int(r.headers.get("Content-Length", "-1"))

        return _http_retry(uri, head)
    if scheme == "s3":
        s = read_settings(settings)
        bucket, key = _split_s3(uri)
        try:
            return int(s3_client(s).head_object(Bucket=bucket, Key=key)["ContentLength"])
        except Exception as e:
            raise _map_s3(e, uri, s) from e
    msg = f"unsupported URI scheme {scheme!r} in {uri!r}"
    raise BadInputError(msg)


def iter_bytes(
    uri: str, *, start: int = 0, settings: Settings | None = None, block: int = _BLOCK
) -> Iterator[bytes]:
    """Stream an object's bytes from offset ``start`` (for resumable downloads).

    Raises
    ------
    NotFoundError
        When the object does not exist.
    """
    scheme = urllib.parse.urlparse(uri).scheme
    if is_local(uri):
        path = local_path(uri)
        try:
            f = path.open("rb")
        except FileNotFoundError as e:
            msg = f"{path} does not exist"
            raise NotFoundError(msg) from e
        with f:
            f.seek(start)
            while chunk := f.read(block):
                yield chunk
        return
    rng = f"bytes={start}-"
    if scheme in ("http", "https"):
        headers = {**_headers(), "Range": rng} if start else _headers()

        def get() -> requests.Response:
            r = requests.get(
                uri, headers=headers, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)
            )
            r.raise_for_status()
            return r

        resp = _http_retry(uri, get)
        with resp:
            if start and resp.status_code != 206:
                msg = f"{uri}: the server ignored the byte range; cannot resume from {start}"
                raise CellCensusError(msg)
            yield from resp.iter_content(block)
        return
    if scheme == "s3":
        s = read_settings(settings)
        bucket, key = _split_s3(uri)
        try:
            kwargs: dict[str, Any] = {"Range": rng} if start else {}
            body = s3_client(s).get_object(Bucket=bucket, Key=key, **kwargs)["Body"]
            while chunk := body.read(block):
                yield chunk
        except CellCensusError:
            raise
        except Exception as e:
            raise _map_s3(e, uri, s) from e
        return
    msg = f"unsupported URI scheme {scheme!r} in {uri!r}"
    raise BadInputError(msg)
