"""Shared transfer machinery: hashing, parallel execution with progress, and test hooks.

Test hooks (documented; for tests only, never set them in production):

``CELLCENSUS_TEST_FAIL_AFTER_UPLOADS=N``
    ``publish`` kills its own process with SIGKILL right after the N-th object upload completes,
    which simulates a publisher killed mid-upload deterministically.
``CELLCENSUS_TEST_FAIL_AFTER_DOWNLOADS=N``
    The same for ``sync`` downloads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from s3transfer.utils import ChunksizeAdjuster

from cellcensus._progress import NoProgress, Progress
from cellcensus.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path

__all__ = [
    "FileDigest",
    "Readable",
    "Stage",
    "hash_file",
    "hash_stream",
    "run_parallel",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

BLOCK = 1024 * 1024
DEFAULT_JOBS = 8
UPLOAD_HOOK = "CELLCENSUS_TEST_FAIL_AFTER_UPLOADS"
DOWNLOAD_HOOK = "CELLCENSUS_TEST_FAIL_AFTER_DOWNLOADS"


class Readable(Protocol):
    """Anything with ``read(n) -> bytes``."""

    def read(self, n: int = -1, /) -> bytes:
        """Read up to ``n`` bytes."""
        ...


class Stage:
    """One stage of a :class:`cellcensus._progress.Progress` (bytes), as a context manager.

    ``advance`` may be called from worker threads (the CLI's rich bars are thread-safe).
    """

    def __init__(self, progress: Progress | None, name: str, total: int, unit: str = "B") -> None:
        self._p: Progress = progress if progress is not None else NoProgress()
        self.name = name
        self._total = total
        self._unit = unit

    def __enter__(self) -> Stage:
        self._p.start(self.name, self._total, self._unit)
        return self

    def __exit__(self, *exc: object) -> None:
        self._p.finish(self.name)

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more are done."""
        self._p.advance(self.name, nbytes)


@dataclass(frozen=True)
class FileDigest:
    """Size, sha256 and the S3 ETag an upload of this content will get."""

    size: int
    sha256: str
    s3_etag: str


def _chunksize_for(size: int, chunksize: int) -> int:
    return int(ChunksizeAdjuster().adjust_chunksize(chunksize, size))


def hash_stream(f: Readable, *, size_hint: int | None = None, chunksize: int) -> FileDigest:
    """Hash a stream: sha256, and the S3 ETag of an upload with the given multipart chunk size.

    Single-part uploads (size below ``chunksize``) get the content's MD5 as ETag; multipart ones
    ``md5(concat(md5(part_i)))-<parts>``, with boto3's chunk-size adjustment for huge files.
    """
    part_size = _chunksize_for(size_hint, chunksize) if size_hint else chunksize
    sha = hashlib.sha256()
    md5_all = hashlib.md5(usedforsecurity=False)
    part_md5s: list[bytes] = []
    part = hashlib.md5(usedforsecurity=False)
    in_part = 0
    total = 0
    while True:
        block = f.read(BLOCK)
        if not block:
            break
        sha.update(block)
        md5_all.update(block)
        total += len(block)
        view = memoryview(block)
        while view:
            take = min(len(view), part_size - in_part)
            part.update(view[:take])
            in_part += take
            view = view[take:]
            if in_part == part_size:
                part_md5s.append(part.digest())
                part = hashlib.md5(usedforsecurity=False)
                in_part = 0
    if in_part:
        part_md5s.append(part.digest())
    if total < chunksize:
        etag = md5_all.hexdigest()
    else:
        combined = hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest()
        etag = f"{combined}-{len(part_md5s)}"
    return FileDigest(size=total, sha256=sha.hexdigest(), s3_etag=etag)


def hash_file(path: Path, *, chunksize: int) -> FileDigest:
    """:func:`hash_stream` of a local file."""
    with path.open("rb") as f:
        return hash_stream(f, size_hint=path.stat().st_size, chunksize=chunksize)


class KillSwitch:
    """Counts completed transfers and SIGKILLs the process after N of them (test hook)."""

    def __init__(self, env_var: str) -> None:
        raw = os.environ.get(env_var)
        self.limit: int | None = None
        if raw:
            try:
                self.limit = int(raw)
            except ValueError:
                msg = f"{env_var}={raw!r} must be an integer (test hook)"
                raise ConfigError(msg) from None
            logger.warning("test hook %s=%s is set: the process will be killed", env_var, raw)
        self._count = 0
        self._lock = threading.Lock()

    def tick(self) -> None:
        """One more transfer completed."""
        if self.limit is None:
            return
        with self._lock:
            self._count += 1
            if self._count >= self.limit:
                os.kill(os.getpid(), signal.SIGKILL)


def run_parallel(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    jobs: int = DEFAULT_JOBS,
    on_done: Callable[[T, R], None] | None = None,
) -> list[R]:
    """Run ``fn`` over ``items`` on a thread pool; the first exception cancels the rest and is
    re-raised.

    Parameters
    ----------
    fn
        The work for one item (I/O bound: uploads, downloads, hashing).
    items
        The inputs.
    jobs
        Number of threads.
    on_done
        Called in the worker thread after each success.

    Returns
    -------
    list
        Results in input order.
    """
    todo: Sequence[T] = list(items)
    if not todo:
        return []

    def run(item: T) -> R:
        result = fn(item)
        if on_done is not None:
            on_done(item, result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(todo)))) as pool:
        futures: list[Future[R]] = [pool.submit(run, item) for item in todo]
        wait(futures, return_when=FIRST_EXCEPTION)
        for fut in futures:
            exc = fut.exception() if fut.done() and not fut.cancelled() else None
            if exc is not None:
                for other in futures:
                    other.cancel()
                raise exc
        return [f.result() for f in futures]
