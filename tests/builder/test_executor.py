"""The in-process executors of the builder: results, errors, and what runs after an error."""

from __future__ import annotations

import threading
import time

import pytest

from cellcensus.builder._executor import SerialExecutor, ThreadExecutor


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
