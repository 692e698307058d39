"""Storage: every access to local paths, ``file://``, ``s3://`` and ``http(s)://`` in one place.

Modules by concept:

- :mod:`~cellcensus._storage.uri`: what a location is (local, S3, HTTP), joining and splitting;
- :mod:`~cellcensus._storage.s3`: the one boto3 client factory (cached per settings and
  credentials identity, pooled connections, retries, refreshing credentials);
- :mod:`~cellcensus._storage.http`: the one ``requests`` session (connection reuse, urllib3
  retries, timeouts);
- :mod:`~cellcensus._storage.errors`: boto/botocore failures mapped by type and S3 code to
  :mod:`cellcensus.errors`, one advice per situation;
- :mod:`~cellcensus._storage.read`: whole objects, sizes and byte streams from any location;
- :mod:`~cellcensus._storage.downloads`: the one resumable, verified download;
- :mod:`~cellcensus._storage.uploads`: the one verified upload (local: atomic; S3: multipart);
- :mod:`~cellcensus._storage.hashing`: ``sha256_file`` (``hashlib.file_digest``) and the S3
  ETag of an upload.

Private: the builder, the client and the release machinery import from here; users do not.
"""

from __future__ import annotations

from cellcensus._storage.downloads import PART_SUFFIX, Downloaded, DownloadMismatchError, download
from cellcensus._storage.errors import is_missing_key, map_s3_error
from cellcensus._storage.hashing import sha256_file
from cellcensus._storage.read import (
    ObjectStat,
    iter_bytes,
    read_bytes,
    read_settings,
    size_of,
    stat,
)
from cellcensus._storage.s3 import READ, TRANSFER, s3_client
from cellcensus._storage.uploads import Uploaded, UploadMismatchError, upload_file
from cellcensus._storage.uri import is_local, is_s3, local_path, split_s3, uri_join

__all__ = [
    "PART_SUFFIX",
    "READ",
    "TRANSFER",
    "DownloadMismatchError",
    "Downloaded",
    "ObjectStat",
    "UploadMismatchError",
    "Uploaded",
    "download",
    "is_local",
    "is_missing_key",
    "is_s3",
    "iter_bytes",
    "local_path",
    "map_s3_error",
    "read_bytes",
    "read_settings",
    "s3_client",
    "sha256_file",
    "size_of",
    "split_s3",
    "stat",
    "upload_file",
    "uri_join",
]
