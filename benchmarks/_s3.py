"""The benchmarks' S3 server: the tests' SeaweedFS helper with publisher and anonymous settings."""

from __future__ import annotations

import contextlib
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _s3server import S3Server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cellcensus.settings import Settings


@dataclass(frozen=True)
class LocalS3:
    endpoint_url: str
    publisher: Settings  # may write the public bucket
    anonymous: Settings  # reads the public bucket without credentials


@contextlib.contextmanager
def local_s3(workdir: Path) -> Iterator[LocalS3]:
    """A fresh SeaweedFS server on 127.0.0.1 (state under ``workdir/seaweedfs``), stopped after."""
    from cellcensus.settings import Settings

    shutil.rmtree(workdir / "seaweedfs", ignore_errors=True)
    with S3Server(workdir / "seaweedfs") as server:
        yield LocalS3(
            endpoint_url=server.endpoint_url,
            publisher=Settings(
                endpoint_url=server.endpoint_url,
                path_style=True,
                access_key_id=server.publisher.access_key_id,
                secret_access_key=server.publisher.secret_access_key,
            ),
            anonymous=Settings(endpoint_url=server.endpoint_url, path_style=True, anonymous=True),
        )
