"""The in-process executors of the builder: results, errors, and what runs after an error."""

from __future__ import annotations

import threading
import time

import pytest

from cellcensus.builder import _executor
from cellcensus.builder._executor import (
    AUTO_PROCESSES,
    AUTO_THREADS,
    DENSE_VALUES_PER_CELL,
    PROCESS_MIN_SOURCE_BYTES,
    ProcessExecutor,
    SerialExecutor,
    ThreadExecutor,
    band_processes,
    band_threads,
    usable_cpus,
)


def test_thread_executor_yields_every_result_and_runs_tasks_at_once() -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def task(x: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return x * x

    assert sorted(ThreadExecutor(3).imap_unordered(task, list(range(9)))) == [
        x * x for x in range(9)
    ]
    assert most == 3
    assert list(SerialExecutor().imap_unordered(task, [1, 2])) == [1, 4]
    assert list(ThreadExecutor(2).imap_unordered(task, [])) == []


def test_thread_executor_error_stops_the_rest_and_waits_for_running_tasks() -> None:
    started: list[int] = []
    finished: list[int] = []
    lock = threading.Lock()

    def task(x: int) -> int:
        with lock:
            started.append(x)
        if x == 0:
            msg = "band 0 failed"
            raise RuntimeError(msg)
        time.sleep(0.2)
        with lock:
            finished.append(x)
        return x

    with pytest.raises(RuntimeError, match="band 0 failed"):
        list(ThreadExecutor(2).imap_unordered(task, list(range(20))))
    # the task running beside the failed one finished before the error reached the caller;
    # none of the queued ones started after it
    assert sorted(finished) == sorted(x for x in started if x != 0)
    assert len(started) <= 3


def test_band_threads_by_default_follow_the_density_of_the_census(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dense = {"n_cells": 1_000, "n_values": 1_000 * DENSE_VALUES_PER_CELL, "n_tasks": 4}
    sparse = {**dense, "n_values": 1_000 * DENSE_VALUES_PER_CELL - 1}
    monkeypatch.setattr(_executor, "usable_cpus", lambda: 8)
    assert band_threads(None, **dense) == AUTO_THREADS == 2
    assert band_threads(None, **sparse) == 1
    assert band_threads(None, **{**dense, "n_tasks": 1}) == 1  # nothing to run beside it
    assert band_threads(None, **{**dense, "n_cells": 0, "n_values": 0}) == 1
    # a number given is used as given, dense or not
    assert band_threads(3, **sparse) == 3
    assert band_threads(1, **dense) == 1
    # never more threads than the CPUs this process may use
    monkeypatch.setattr(_executor, "usable_cpus", lambda: 1)
    assert band_threads(None, **dense) == 1


def test_usable_cpus_is_this_process_affinity() -> None:
    import os

    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)


def test_band_processes_by_default_follow_the_size_of_the_sources(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_executor, "usable_cpus", lambda: 8)
    assert band_processes(None, source_bytes=PROCESS_MIN_SOURCE_BYTES) == AUTO_PROCESSES == 2
    assert band_processes(None, source_bytes=PROCESS_MIN_SOURCE_BYTES - 1) == 1
    assert band_processes(3, source_bytes=0) == 3  # a number given is used as given
    assert band_processes(1, source_bytes=10 * PROCESS_MIN_SOURCE_BYTES) == 1
    monkeypatch.setattr(_executor, "usable_cpus", lambda: 1)  # never more than the CPUs
    assert band_processes(None, source_bytes=PROCESS_MIN_SOURCE_BYTES) == 1


def _fail_on_three(x: int) -> int:
    if x == 3:
        msg = f"band {x} failed"
        raise ValueError(msg)
    return x * x


def test_process_executor_yields_results_of_other_processes_and_their_errors() -> None:
    import os

    assert sorted(ProcessExecutor(2).imap_unordered(abs, [-1, 2, -3])) == [1, 2, 3]
    pids = set(ProcessExecutor(2).imap_unordered(_pid, list(range(4))))
    assert os.getpid() not in pids
    with pytest.raises(ValueError, match="band 3 failed"):
        list(ProcessExecutor(2).imap_unordered(_fail_on_three, list(range(6))))


def _bad_input(x: int) -> int:
    from cellcensus.errors import BadInputError

    msg = "raw counts must be non-negative whole numbers"
    raise BadInputError(msg, dataset_id=f"ds-{x}", field="X")


def test_a_bad_input_error_of_a_worker_process_keeps_its_dataset_and_field() -> None:
    from cellcensus.errors import BadInputError

    with pytest.raises(BadInputError, match="dataset 'ds-0': field 'X': raw counts") as info:
        list(ProcessExecutor(2).imap_unordered(_bad_input, [0]))
    assert (info.value.dataset_id, info.value.field) == ("ds-0", "X")


def _pid(_: int) -> int:
    import os

    time.sleep(0.05)
    return os.getpid()


def _die(x: int) -> int:
    import os
    import signal

    if x == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_a_worker_process_that_dies_is_a_clear_error() -> None:
    with pytest.raises(_executor.WorkerDiedError, match="worker process died"):
        list(ProcessExecutor(2).imap_unordered(_die, [0, 1, 2]))
