"""Where build tasks run: in this process (on its threads or its worker processes), or on a Dask
cluster (local or given by address)."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager, suppress
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from cellcensus.errors import CellCensusError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from multiprocessing.connection import Connection

    from distributed import Client

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs a function over items; results come back as each finishes (order not guaranteed)."""

    def imap_unordered(
        self, fn: Callable[[T], R], items: Sequence[T]
    ) -> Iterator[R]:  # pragma: no cover - protocol
        """Yield ``fn(item)`` for every item, as each completes."""
        ...


#: Mean stored values a cell from which ``threads=None`` runs band tasks on threads: at ~170
#: values a cell their time is TileDB writes, zstd and numba kernels, which release the GIL; at
#: 20 it is per-cell Python work, which holds it (``benchmarks/RESULTS.md``, "Band threads").
DENSE_VALUES_PER_CELL = 100
#: Threads ``threads=None`` uses on dense data (the chunk budget is split between them).
AUTO_THREADS = 2


#: Staged source bytes from which ``processes=None`` runs band tasks on worker processes. The
#: fork server they start from imports the builder (about 1.5 s) while the driver scans; a smaller
#: census has too little band work to pay for it, and the test suite's builds stay in-process.
PROCESS_MIN_SOURCE_BYTES = 64 * 2**20
#: Processes ``processes=None`` uses (at most the usable CPUs); the chunk budget is split between
#: them.
AUTO_PROCESSES = 2
#: Modules the fork server imports once for every worker process it forks.
_PRELOAD = ["cellcensus.builder._band"]


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def band_threads(threads: int | None, *, n_cells: int, n_values: int, n_tasks: int) -> int:
    """Threads the band stage of an in-process build uses.

    ``threads`` as given, or with ``None``: :data:`AUTO_THREADS` (at most the usable CPUs) when
    the census averages at least :data:`DENSE_VALUES_PER_CELL` stored values a cell and there
    are several tasks, else 1.
    """
    if threads is not None:
        return threads
    if n_tasks < 2 or n_cells == 0 or n_values / n_cells < DENSE_VALUES_PER_CELL:
        return 1
    return max(1, min(AUTO_THREADS, usable_cpus()))


def band_processes(processes: int | None, *, source_bytes: int) -> int:
    """Worker processes the band stage of an in-process build uses.

    ``processes`` as given, or with ``None``: :data:`AUTO_PROCESSES` (at most the usable CPUs)
    when the staged sources hold at least :data:`PROCESS_MIN_SOURCE_BYTES`, else 1 (the bands
    run in this process).
    """
    if processes is not None:
        return processes
    if source_bytes < PROCESS_MIN_SOURCE_BYTES:
        return 1
    return max(1, min(AUTO_PROCESSES, usable_cpus()))


def _start_method() -> str:
    import multiprocessing as mp

    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def start_fork_server() -> None:
    """Start the fork server worker processes are forked from, importing the builder in it.

    Returns at once: the import runs in the server (on another CPU) while this process goes
    on; the first worker started waits for it. A no-op where there is no fork server (Windows:
    workers are spawned and import the builder themselves) or when it already runs (it serves
    every later build of this process).
    """
    if _start_method() != "forkserver":  # pragma: no cover - Windows
        return
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(_PRELOAD)
    forkserver.ensure_running()


class WorkerDiedError(CellCensusError, RuntimeError):
    """A worker process of the build died (killed, out of memory, a crash in native code)."""


class SerialExecutor:
    """Runs tasks one after another in this process (no start-up cost; the default)."""

    def imap_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        """Yield results in item order."""
        for item in items:
            yield fn(item)


class ThreadExecutor:
    """Runs tasks on ``threads`` threads of this process (tasks that release the GIL: I/O,
    compression, numba kernels). Leaving the iteration early cancels the tasks not started and
    waits for the running ones, so none is still writing when the caller handles the error."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def imap_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        """Yield results as tasks complete."""
        from concurrent.futures import ThreadPoolExecutor, as_completed

        if not items:
            return
        with ThreadPoolExecutor(self.threads, thread_name_prefix="cellcensus-build") as pool:
            futures = [pool.submit(fn, item) for item in items]
            try:
                for future in as_completed(futures):
                    yield future.result()
            finally:
                for f in futures:
                    f.cancel()


def _worker_loop(conn: Connection) -> None:
    """A worker process: run each ``(fn, item)`` received, send back ``(ok, result or error)``;
    stop at ``None`` or when the driver's end of the pipe closes."""
    from cellcensus.builder._allocator import tune_allocator

    tune_allocator()
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        fn, item = job
        try:
            reply: tuple[bool, object] = (True, fn(item))
        except BaseException as e:  # every error goes back to the driver
            reply = (False, e)
        try:
            conn.send(reply)
        except Exception as e:  # an error (or a result) that does not pickle
            conn.send((False, RuntimeError(f"{type(e).__name__}: {e} (sending {reply[1]!r})")))


class _Worker:
    """One worker process and the driver's end of its pipe."""

    def __init__(self, context: Any) -> None:  # noqa: ANN401 - a multiprocessing context
        self.conn, theirs = context.Pipe()
        self.proc = context.Process(target=_worker_loop, args=(theirs,), daemon=True)
        self.busy = False
        try:
            self.proc.start()
        except (OSError, EOFError) as e:  # it died before it was handed its start-up data
            self.conn.close()
            raise self.died() from e
        finally:
            theirs.close()

    def send(self, job: object) -> None:
        """Hand the worker a task."""
        try:
            self.conn.send(job)
        except OSError as e:
            raise self.died() from e
        self.busy = True

    def reply(self) -> tuple[bool, object]:
        """The finished task's ``(ok, result or error)``; its death if the pipe closed."""
        try:
            ok, value = self.conn.recv()
        except (EOFError, OSError):
            raise self.died() from None
        self.busy = False
        return ok, value

    def died(self) -> WorkerDiedError:
        """The error that says this worker died."""
        with suppress(ValueError, AssertionError):  # not started
            self.proc.join(timeout=5)
        msg = (
            f"a build worker process died (exit code {self.proc.exitcode}: killed, out of "
            "memory, or a crash in native code); the tasks it finished are kept: run the build "
            "again with --resume, or with --processes 1"
        )
        return WorkerDiedError(msg)

    def stop(self) -> None:
        """Ask an idle worker to exit; kill a busy (or unresponsive) one."""
        if not self.busy and self.proc.is_alive():
            with suppress(OSError):
                self.conn.send(None)
            self.proc.join(timeout=5)
        with suppress(ValueError, AssertionError):  # not started
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()
        self.conn.close()


def _replies(
    workers: list[_Worker], ready: list[Any]
) -> tuple[list[tuple[bool, object]], WorkerDiedError | None]:
    """The replies of the workers ``wait`` found ready, and the death of one found dead."""
    out = []
    dead = None
    for w in workers:
        try:
            if w.busy and w.conn in ready:
                out.append(w.reply())
            elif w.proc.sentinel in ready and not w.proc.is_alive():
                dead = w.died()
        except WorkerDiedError as e:
            dead = e
    return out, dead


class ProcessExecutor:
    """Runs tasks on ``processes`` worker processes of this machine (forked from the fork
    server of :func:`start_fork_server`, so they start with the builder imported).

    Each worker has its own pipe: the driver hands a task to an idle worker and waits for any
    reply or any worker's exit, so no lock is shared that a dying worker could leave held. Tasks
    and results are pickled; a task's exception is re-raised here once the running tasks have
    finished (none is started after it). A worker that dies raises :class:`WorkerDiedError`
    and the others are stopped. Leaving the iteration early stops every worker.
    """

    def __init__(self, processes: int) -> None:
        self.processes = processes

    def imap_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        """Yield results as tasks complete."""
        import multiprocessing as mp
        from multiprocessing.connection import wait

        if not items:
            return
        start_fork_server()
        context = mp.get_context(_start_method())
        todo = list(items)
        workers: list[_Worker] = []
        failure: BaseException | None = None
        try:
            for _ in range(min(self.processes, len(todo))):
                workers.append(_Worker(context))
            while True:
                for w in workers:  # after a failure, only the running tasks finish
                    if not w.busy and todo and failure is None:
                        w.send((fn, todo.pop(0)))
                busy = [w for w in workers if w.busy]
                if not busy:
                    break
                ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in workers])
                replies, dead = _replies(workers, ready)
                for ok, value in replies:  # results of tasks that finished first are kept
                    if ok:
                        yield cast("R", value)
                    failure = failure or (None if ok else cast("BaseException", value))
                if dead is not None:
                    raise dead
            if failure is not None:
                raise failure
        finally:
            for w in workers:
                w.stop()


def _tuned(fn: Callable[[T], R], item: T) -> R:
    """Run a task in a worker process whose allocator is set up as the driver's is."""
    from cellcensus.builder._allocator import tune_allocator

    tune_allocator()
    return fn(item)


class DaskExecutor:
    """Runs tasks on a dask.distributed client; a failing task's error is re-raised here."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def imap_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        """Submit every item, then yield results as they complete."""
        from distributed import as_completed

        if not items:
            return
        futures = self.client.map(partial(_tuned, fn), list(items), pure=False)
        try:
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                yield future.result()
        finally:
            for f in futures:
                f.cancel()


@contextmanager
def open_executor(
    *, workers: int, scheduler: str | None, memory_per_worker: str | None = None
) -> Iterator[Executor]:
    """An executor for a build.

    ``scheduler`` connects to an existing Dask cluster; otherwise ``workers`` > 1 starts a
    LocalCluster of that many single-threaded worker processes, and 1 runs in this process.
    """
    if scheduler is None and workers <= 1:
        yield SerialExecutor()
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        logger.info("connecting to Dask scheduler %s", scheduler)
        with Client(scheduler) as client:  # type: ignore[no-untyped-call]
            yield DaskExecutor(client)
        return
    logger.info("starting a Dask LocalCluster with %d workers", workers)
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_per_worker or "auto",
            dashboard_address="127.0.0.1:0",  # no fixed port: never collides
            host="127.0.0.1",
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield DaskExecutor(client)
