"""Shared transfer machinery: parallel execution with progress, and test hooks.

Test hooks (documented; for tests only, never set them in production):

``CELLCENSUS_TEST_FAIL_AFTER_UPLOADS=N``
    ``publish`` kills its own process with SIGKILL right after the N-th object upload completes,
    which simulates a publisher killed mid-upload deterministically.
``CELLCENSUS_TEST_FAIL_AFTER_DOWNLOADS=N``
    The same for ``sync`` downloads.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, TypeVar

from cellcensus._progress import NoProgress, Progress
from cellcensus.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

__all__ = ["KillSwitch", "Stage", "run_parallel"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_JOBS = 8
UPLOAD_HOOK = "CELLCENSUS_TEST_FAIL_AFTER_UPLOADS"
DOWNLOAD_HOOK = "CELLCENSUS_TEST_FAIL_AFTER_DOWNLOADS"


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
