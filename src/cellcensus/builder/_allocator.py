"""How the builder's processes use the C allocator (glibc only; a no-op elsewhere).

A build allocates and frees large numpy, Arrow and TileDB buffers chunk after chunk. With glibc's
defaults two things make a process hold far more memory than it uses, and more the longer it runs:

- the *dynamic mmap threshold*: a freed block larger than the threshold (128 KiB at start) raises
  the threshold to its size, up to 32 MiB, so later buffers of a few MiB come from the heap instead
  of their own mappings and leave holes there when freed;
- one *arena* per thread, up to 8 per core: TileDB's and Arrow's thread pools fragment their own.

:func:`tune_allocator` fixes the mmap threshold at 256 KiB (buffers above it are mapped and
returned to the operating system when freed) and caps the arenas at 2, once per process, before the
process's first build work; :func:`release_free_memory` hands what the heap keeps back after a
stage or a task. Measured with the scale benchmark (benchmarks/RESULTS.md, "Allocator settings"):
the peak RSS of a build fell by 0.07-0.19 GiB and stopped growing from 250 k to 1 M cells with 64
datasets. A parameter the user set through glibc's own environment variables
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_ARENA_MAX``) is left as they set it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from functools import cache
from typing import Any

logger = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 256 * 1024
ARENA_MAX = 2

_SETTINGS: tuple[tuple[str, int, int], ...] = (
    ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MMAP_THRESHOLD),
    ("MALLOC_ARENA_MAX", M_ARENA_MAX, ARENA_MAX),
)


@cache
def _libc() -> Any:  # noqa: ANN401 - a ctypes library, or None
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:  # pragma: no cover - no C library to load
        return None


def _is_glibc() -> bool:
    libc = _libc()
    return libc is not None and hasattr(libc, "gnu_get_libc_version")


@cache
def tune_allocator() -> dict[str, int]:
    """Set glibc's mmap threshold and arena cap for this process (once); what was set.

    Returns the parameters set, by their environment-variable names; empty when the C library is
    not glibc. Parameters given in the environment are not changed.
    """
    if not _is_glibc():
        return {}
    done: dict[str, int] = {}
    for env, param, value in _SETTINGS:
        if env in os.environ:
            continue
        if _libc().mallopt(param, value) == 1:
            done[env] = value
        else:  # pragma: no cover - glibc accepts both parameters
            logger.debug("mallopt(%d, %d) was refused", param, value)
    return done


def release_free_memory() -> None:
    """Give memory freed by a finished task or stage back to the operating system (glibc only).

    After large numpy and Arrow buffers are freed, glibc keeps much of the heap they came from; a
    process running many tasks then looks as if it held memory it no longer uses.
    """
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is not None:
        trim(0)
